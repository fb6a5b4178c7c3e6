//! Values the whole fleet accepts once: a login's OIDC state. The first use
//! is recorded with a conditional put of `OIDC#<value>` / `USED` (its
//! `expires_at` the value's lifetime, the table's TTL), so a replay on any
//! instance is refused; in this instance's memory without a table, and when
//! the table cannot be reached.

use std::time::Duration;

use moka::sync::Cache;

use crate::clock::Clock;
use crate::table::{epoch_secs, is_condition_failure, n, s, Table};

/// Values remembered in memory at most (each for its lifetime).
const MAX_REMEMBERED: u64 = 100_000;

pub struct SingleUse {
    table: Option<Table>,
    memory: Cache<String, ()>,
    lifetime: Duration,
    clock: Clock,
}

impl SingleUse {
    /// Values that live `lifetime`: remembered that long.
    pub fn new(table: Option<Table>, lifetime: Duration, clock: Clock) -> Self {
        Self {
            table,
            memory: Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(lifetime)
                .build(),
            lifetime,
            clock,
        }
    }

    /// Records the use of `value`: false when it was used before.
    pub async fn first_use(&self, value: &str) -> bool {
        if let Some(table) = &self.table {
            let until = epoch_secs(self.clock.now()).saturating_add(self.lifetime.as_secs());
            let put = table
                .client
                .put_item()
                .table_name(&table.name)
                .item("pk", s(format!("OIDC#{value}")))
                .item("sk", s("USED"))
                .item("expires_at", n(until))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => return true,
                Err(error) if is_condition_failure(&error) => return false,
                Err(error) => {
                    let error = crate::table::DynamoError::from_sdk("PutItem", &error);
                    tracing::warn!(%error, "single-use values: the table is unreachable; this instance's memory applies");
                }
            }
        }
        self.memory
            .entry(value.to_string())
            .or_insert_with(|| ())
            .is_fresh()
    }
}
