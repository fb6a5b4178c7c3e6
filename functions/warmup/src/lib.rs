//! The warmup function (`docs/events.md`, `docs/operations.md`): keeps the
//! runtime config of every host in the table fresh ahead of expiry, so that
//! web and publish instances find it there, and checks that each tenant's
//! credentials resolve to the provider their role needs, within a ceiling
//! on its orchestrator calls per second.
//!
//! A scheduled run refreshes the hosts whose copy will be stale before the
//! next run (`plan`), oldest first, and checks the credentials that are due
//! (`checks`); when they do not fit one invocation, it hands them to the
//! queue instead (`queue`), whose batches the same function warms. Hosts
//! the event names are refreshed and checked whatever is due. Each host is
//! warmed inside its own guard (`warm`).
//!
//! The handler is plain async code over [`App`]; `main` wraps it in
//! `lambda_runtime`.

mod checks;
mod plan;
mod queue;
mod warm;

pub use queue::Queue;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use publisher::app::App;
use publisher::metrics::{self, Metric};
use publisher::source::Orchestrated;
use serde::Serialize;
use serde_json::Value;

use plan::{plan, Budget, Job};
use warm::{warm_all, Limits};

/// Hosts warmed at a time (each with up to four credential checks at once);
/// the throttle, not this, sets the pace of the orchestrator calls, and
/// lets this many go at once after a pause.
pub const CONCURRENCY: usize = 16;
/// Time kept before the invocation's deadline to answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);
/// The share of the interval a scheduled run may take: its hosts are
/// refreshed again about one interval later, before their copies expire.
const WINDOW_SHARE: f64 = 0.8;

#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    #[error("warmup event: {0}")]
    BadEvent(&'static str),
    #[error("the warmup needs the orchestrator (ORCHESTRATOR_BASE_URL is not set)")]
    Standalone,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    /// The hosts this invocation warmed (those that needed nothing are not
    /// listed).
    pub results: Vec<HostResult>,
    /// Hosts handed to the queue.
    #[serde(skip_serializing_if = "is_zero")]
    pub queued: usize,
    /// Hosts the run had no time or no calls left for, or could not queue.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_refreshed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
pub struct HostResult {
    pub host: String,
    /// The envelope's tenant; the host-derived one when there is no config.
    pub tenant: String,
    pub status: Status,
    pub config_version_changed: bool,
    /// By role checked in this run: `ok`, `not_found`, `unauthorized`,
    /// `unavailable`, `provider_mismatch`.
    pub credentials: BTreeMap<&'static str, String>,
    /// Not refreshed for want of time or calls (the status is `unavailable`).
    #[serde(skip)]
    pub out_of_time: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    NotFound,
    Unavailable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotFound => "not_found",
            Status::Unavailable => "unavailable",
        }
    }
}

/// The hosts an event names: `{"hosts": [...]}` or `{"host": "..."}`, at the
/// top or in an EventBridge envelope's `detail`. An event naming none
/// (`{}`, `null`, a plain schedule) is fine.
pub fn event_hosts(event: &Value) -> Result<Vec<String>, WarmupError> {
    let fields = match event.get("detail") {
        Some(detail) if event.get("detail-type").is_some() => detail,
        _ => event,
    };
    let mut hosts = Vec::new();
    match fields.get("hosts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let host = item
                    .as_str()
                    .ok_or(WarmupError::BadEvent("hosts must be an array of strings"))?;
                hosts.push(host.to_string());
            }
        }
        Some(_) => return Err(WarmupError::BadEvent("hosts must be an array of strings")),
    }
    match fields.get("host") {
        None | Some(Value::Null) => {}
        Some(Value::String(host)) => hosts.push(host.clone()),
        Some(_) => return Err(WarmupError::BadEvent("host must be a string")),
    }
    Ok(hosts)
}

/// Any event the function receives: a batch of the queue's messages
/// (answered with the messages to deliver again), or a run (scheduled, or
/// naming hosts) answered with its [`Answer`].
pub async fn handle_event(
    app: &App,
    queue: Option<&Queue>,
    event: &Value,
    request_id: &str,
    deadline: Option<SystemTime>,
) -> Result<Value, WarmupError> {
    let answer = match queue::sqs_batch(event) {
        Some(batch) => serde_json::to_value(consume(app, batch, request_id, deadline).await?),
        None => serde_json::to_value(handle_with(app, queue, event, request_id, deadline).await?),
    };
    // Both answers are plain data: serializing them cannot fail.
    Ok(answer.unwrap_or(Value::Null))
}

/// One run without a queue: every host that needs it is warmed here.
pub async fn handle(
    app: &App,
    event: &Value,
    request_id: &str,
    deadline: Option<SystemTime>,
) -> Result<Answer, WarmupError> {
    handle_with(app, None, event, request_id, deadline).await
}

async fn handle_with(
    app: &App,
    queue: Option<&Queue>,
    event: &Value,
    request_id: &str,
    deadline: Option<SystemTime>,
) -> Result<Answer, WarmupError> {
    let started = Instant::now();
    let forced = event_hosts(event)?;
    let orchestrated = orchestrated(app)?;
    let settings = &app.settings.warmup;
    let copies = match orchestrated.tier() {
        Some(tier) => tier.copies().await.unwrap_or_else(|error| {
            tracing::warn!(request_id, %error, "cannot list the table's hosts; warming the others");
            Vec::new()
        }),
        None => Vec::new(),
    };
    let now = app.clock.now();
    let jobs = plan(
        &forced,
        &app.settings.warmup_hosts,
        copies,
        now,
        settings.interval,
    );
    let limits = limits(app, deadline, request_id);
    // The calls this invocation may make: the ceiling over its time.
    let time = limits
        .window_end
        .and_then(|end| end.duration_since(now).ok())
        .unwrap_or_default();
    let calls = (settings.max_orchestrator_rps * time.as_secs_f64()) as u64;
    let (jobs, queued, unsent) = match queue {
        // A lookup and a credential check per host must fit, or the queue's
        // consumers share the work.
        Some(queue) if jobs.len() as u64 * 2 > calls => {
            let (forced, due): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.forced);
            let hosts: Vec<String> = due.into_iter().map(|j| j.host).collect();
            let sent = queue.send(&hosts, now, request_id).await;
            metrics::record(Metric::WarmupQueued { hosts: sent as u64 });
            (forced, sent, hosts.len() - sent)
        }
        _ => (jobs, 0, 0),
    };
    orchestrated
        .throttle()
        .set_rate(settings.max_orchestrator_rps, CONCURRENCY as u32);
    let budget = Budget::new(Some(calls), jobs.len());
    let results = warm_all(app, &orchestrated, jobs, &budget, limits, request_id).await;
    warm::record(&results);
    let results: Vec<HostResult> = results.into_iter().flatten().collect();
    let not_refreshed = unsent + results.iter().filter(|r| r.out_of_time).count();
    if not_refreshed > 0 {
        tracing::warn!(
            request_id,
            not_refreshed,
            max_orchestrator_rps = settings.max_orchestrator_rps,
            "warmup: hosts could not be refreshed (or queued) within the run's time under the orchestrator ceiling"
        );
        metrics::record(Metric::WarmupNotRefreshed {
            hosts: not_refreshed as u64,
        });
    }
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let failed_checks: usize = results
        .iter()
        .map(|r| r.credentials.values().filter(|s| *s != "ok").count())
        .sum();
    tracing::info!(
        request_id,
        hosts = results.len(),
        queued,
        ok = count(Status::Ok),
        not_found = count(Status::NotFound),
        unavailable = count(Status::Unavailable),
        not_refreshed,
        failed_checks,
        latency_ms = started.elapsed().as_millis() as u64,
        "warmup done"
    );
    Ok(Answer {
        results,
        queued,
        not_refreshed,
    })
}

/// A batch of the queue: each host warmed unless its copy was fetched since
/// it was handed out; the messages of hosts that could not be warmed
/// (`unavailable`) are delivered again later, each alone.
async fn consume(
    app: &App,
    batch: SqsEvent,
    request_id: &str,
    deadline: Option<SystemTime>,
) -> Result<SqsBatchResponse, WarmupError> {
    let orchestrated = orchestrated(app)?;
    let settings = &app.settings.warmup;
    // Each of the queue's concurrent consumers keeps its share of the ceiling.
    orchestrated.throttle().set_rate(
        settings.max_orchestrator_rps / f64::from(settings.queue_concurrency),
        CONCURRENCY as u32,
    );
    let mut ids = Vec::new();
    let mut jobs = Vec::new();
    for record in batch.records {
        let id = record.message_id.unwrap_or_default();
        let message = record
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str::<queue::Message>(body).ok());
        let Some(message) = message else {
            // Delivering it again would not make it readable.
            tracing::warn!(request_id, message_id = %id, "warmup: unreadable queue message dropped");
            continue;
        };
        ids.push(id);
        jobs.push(Job {
            dispatched_at: message.dispatched_at(),
            host: message.host,
            forced: false,
        });
    }
    let limits = Limits {
        window_end: None,
        ..limits(app, deadline, request_id)
    };
    let budget = Budget::new(None, jobs.len());
    let results = warm_all(app, &orchestrated, jobs, &budget, limits, request_id).await;
    warm::record(&results);
    let failed: Vec<String> = ids
        .into_iter()
        .zip(&results)
        .filter(|(_, r)| r.as_ref().is_some_and(|r| r.status == Status::Unavailable))
        .map(|(id, _)| id)
        .collect();
    tracing::info!(
        request_id,
        hosts = results.len(),
        warmed = results.iter().flatten().count(),
        failed = failed.len(),
        "warmup batch done"
    );
    Ok(queue::failures(failed))
}

fn orchestrated(app: &App) -> Result<Arc<Orchestrated>, WarmupError> {
    app.source
        .orchestrated()
        .cloned()
        .ok_or(WarmupError::Standalone)
}

/// The run's limits: the invocation's deadline (hosts still running
/// shortly before it answer `unavailable`, so that the run always answers;
/// a deadline already past is not a real one and is ignored), and its share
/// of the interval on the app's clock.
fn limits(app: &App, deadline: Option<SystemTime>, request_id: &str) -> Limits {
    let left = deadline.and_then(|d| match d.duration_since(SystemTime::now()) {
        Ok(left) => Some(left.saturating_sub(DEADLINE_MARGIN)),
        Err(_) => {
            // Lambda's deadline is in the future; `cargo lambda watch` sends
            // a duration where an epoch time belongs.
            tracing::warn!(
                request_id,
                "the invocation's deadline is already past; ignored"
            );
            None
        }
    });
    let share = app.settings.warmup.interval.mul_f64(WINDOW_SHARE);
    let time = left.map_or(share, |left| left.min(share));
    Limits {
        give_up: left.and_then(|left| tokio::time::Instant::now().checked_add(left)),
        window_end: app.clock.now().checked_add(time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_come_from_the_event_or_its_envelope() {
        let plain = json!({"hosts": ["a.shibari.photo", "b.shibari.photo"]});
        assert_eq!(
            event_hosts(&plain).unwrap(),
            ["a.shibari.photo", "b.shibari.photo"]
        );
        let scheduled = json!({
            "detail-type": "Scheduled Event", "source": "aws.events",
            "detail": {"hosts": ["c.shibari.photo"]}
        });
        assert_eq!(event_hosts(&scheduled).unwrap(), ["c.shibari.photo"]);
        let one = json!({"host": "d.shibari.photo"});
        assert_eq!(event_hosts(&one).unwrap(), ["d.shibari.photo"]);
        for nothing in [
            json!({}),
            Value::Null,
            json!({"detail-type": "Scheduled Event", "detail": {}}),
        ] {
            assert!(event_hosts(&nothing).unwrap().is_empty(), "{nothing}");
        }
    }

    #[test]
    fn malformed_events_are_refused() {
        for bad in [
            json!({"hosts": "a.shibari.photo"}),
            json!({"hosts": [1]}),
            json!({"host": 7}),
        ] {
            assert!(
                matches!(event_hosts(&bad), Err(WarmupError::BadEvent(_))),
                "{bad}"
            );
        }
    }
}
