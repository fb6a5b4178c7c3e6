//! Login and API-credential failures, counted per client address and
//! tenant (10 in 5 minutes) and per client address across tenants (30): in
//! the table when there is one, so the limits hold for the whole fleet
//! however many instances a guesser's requests are spread over; in this
//! instance's memory otherwise, and whenever the table cannot be reached.
//!
//! An attempt is counted as a failure when it starts, so that concurrent
//! attempts cannot slip past a limit together; a success takes its count
//! back (and forgets the client's failures on that tenant). An attempt over
//! a limit is refused without being counted or looked at.

mod memory;
mod table;

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::metrics::{self, Metric};
use crate::table::{DynamoError, Table};

/// Failures of one client on one tenant within [`WINDOW`].
pub const PER_TENANT: u32 = 10;
/// Failures of one client on all tenants within [`WINDOW`].
pub const PER_CLIENT: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// What became of an attempt's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted; it may go on.
    Allowed,
    /// Over a limit: refused until the window has passed.
    Refused { retry_after: Duration },
}

/// One counter: a client's failures on a tenant, or on every tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Counter {
    client: String,
    /// `None`: every tenant.
    tenant: Option<String>,
}

impl Counter {
    /// The client's counter across tenants, and its counter on `tenant`.
    fn pair(client: &str, tenant: &str) -> (Counter, Counter) {
        let all = Counter {
            client: client.to_string(),
            tenant: None,
        };
        let one = Counter {
            tenant: Some(tenant.to_string()),
            ..all.clone()
        };
        (all, one)
    }

    fn max(&self) -> u32 {
        match self.tenant {
            Some(_) => PER_TENANT,
            None => PER_CLIENT,
        }
    }
}

pub struct FailureLimits {
    table: Option<Table>,
    memory: memory::Memory,
    clock: Clock,
}

impl FailureLimits {
    pub fn new(table: Option<Table>, clock: Clock) -> Self {
        Self {
            table,
            memory: memory::Memory::default(),
            clock,
        }
    }

    /// Starts an attempt by `client` on `tenant`.
    pub async fn begin(&self, client: &str, tenant: &str) -> Attempt {
        let (all, one) = Counter::pair(client, tenant);
        let attempt = match self.count(&all).await {
            Attempt::Allowed => match self.count(&one).await {
                Attempt::Allowed => Attempt::Allowed,
                refused => {
                    // Refused attempts are not counted anywhere.
                    self.take_back(&all).await;
                    refused
                }
            },
            refused => refused,
        };
        if let Attempt::Refused { .. } = attempt {
            metrics::record(Metric::LoginRefused {
                reason: "too_many_failures",
            });
        }
        attempt
    }

    /// The attempt succeeded: its count is taken back, and the client's
    /// failures on `tenant` are forgotten.
    pub async fn succeeded(&self, client: &str, tenant: &str) {
        let (all, one) = Counter::pair(client, tenant);
        self.take_back(&all).await;
        self.forget(&one).await;
    }

    async fn count(&self, counter: &Counter) -> Attempt {
        let now = self.clock.now();
        match self
            .in_table(|table| table::count(table, counter, now))
            .await
        {
            Some(attempt) => attempt,
            None => self.memory.count(counter, now),
        }
    }

    async fn take_back(&self, counter: &Counter) {
        if self
            .in_table(|table| table::take_back(table, counter))
            .await
            .is_none()
        {
            self.memory.take_back(counter);
        }
    }

    async fn forget(&self, counter: &Counter) {
        if self
            .in_table(|table| table::forget(table, counter))
            .await
            .is_none()
        {
            self.memory.forget(counter);
        }
    }

    /// The table's answer to `call`; `None` without a table, or when it
    /// cannot be reached (then this instance's memory counts instead).
    async fn in_table<'a, T, Call, Answer>(&'a self, call: Call) -> Option<T>
    where
        Call: FnOnce(&'a Table) -> Answer,
        Answer: Future<Output = Result<T, DynamoError>>,
    {
        let answer = call(self.table.as_ref()?).await;
        answer
            .inspect_err(|error| {
                tracing::warn!(%error, "failure limits: the table is unreachable; this instance's own counters apply");
            })
            .ok()
    }
}

/// When a window that started at `start` ends.
fn window_end(start: SystemTime) -> SystemTime {
    start.checked_add(WINDOW).unwrap_or(start)
}
