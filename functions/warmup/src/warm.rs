//! Warming hosts: each refreshed from the orchestrator into the table and
//! its due credentials checked, a bounded number at a time, each inside
//! its own guard: a panic, the deadline or the end of the run's time cost
//! that host only (`unavailable`), never the others or the invocation.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{stream, FutureExt, StreamExt};
use publisher::app::App;
use publisher::host;
use publisher::metrics::{self, Metric};
use publisher::source::{Orchestrated, Refresh, SourceError};

use crate::checks::check_due;
use crate::plan::{Budget, Job};
use crate::{HostResult, Status, CONCURRENCY};

/// How long a consumer's claim on a host's refresh holds: longer than a
/// refresh takes, shorter than the queue's visibility timeout (120 s in
/// template.yaml), so that a message delivered again after a failure is
/// warmed again.
const CLAIM: Duration = Duration::from_secs(60);

/// Where a run's time ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The invocation's deadline, less the time kept to answer (real time).
    pub give_up: Option<tokio::time::Instant>,
    /// No host starts after this (on the app's clock): the run's share of
    /// the interval.
    pub window_end: Option<SystemTime>,
}

/// Warms `jobs` in order, [`CONCURRENCY`] at a time; `None` for a host that
/// needed nothing after all.
pub(crate) async fn warm_all(
    app: &App,
    orchestrated: &Arc<Orchestrated>,
    jobs: Vec<Job>,
    budget: &Budget,
    limits: Limits,
    request_id: &str,
) -> Vec<Option<HostResult>> {
    stream::iter(jobs)
        .map(|job| {
            let raw = job.host.clone();
            let work = warm_host(app, orchestrated, job, budget, limits, request_id);
            guarded(app, raw, limits, request_id, work)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// `work` for host `raw`, bounded by the deadline; a panic inside becomes
/// the host's `unavailable`.
pub(crate) async fn guarded(
    app: &App,
    raw: String,
    limits: Limits,
    request_id: &str,
    work: impl Future<Output = Option<HostResult>>,
) -> Option<HostResult> {
    let caught = AssertUnwindSafe(work).catch_unwind();
    let finished = match limits.give_up {
        Some(at) => match tokio::time::timeout_at(at, caught).await {
            Ok(finished) => finished,
            Err(_) => {
                tracing::warn!(request_id, host = %raw, "warmup ran out of time for this host");
                return Some(out_of_time(app, &raw));
            }
        },
        None => caught.await,
    };
    match finished {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(request_id, host = %raw, "warmup of this host panicked; the others go on");
            Some(unavailable(app, &raw))
        }
    }
}

async fn warm_host(
    app: &App,
    orchestrated: &Orchestrated,
    job: Job,
    budget: &Budget,
    limits: Limits,
    request_id: &str,
) -> Option<HostResult> {
    let raw = job.host.as_str();
    let host = match host::validate(raw) {
        Ok(host) => host,
        Err(error) => {
            tracing::warn!(request_id, host = %raw, %error, "warmup host is not a valid tenant host");
            return Some(HostResult {
                status: Status::NotFound,
                ..unavailable(app, raw)
            });
        }
    };
    if let Some(since) = job.dispatched_at {
        if !claimed(orchestrated, &host, since, request_id).await {
            return None;
        }
    }
    let late = limits.window_end.is_some_and(|end| app.clock.now() > end);
    if late || !budget.lookup() {
        return Some(out_of_time(app, &host));
    }
    match orchestrated.refresh(&host, request_id).await {
        Ok(Refresh::Found {
            config,
            version_changed,
        }) => Some(HostResult {
            host,
            tenant: config.tenant.clone(),
            status: Status::Ok,
            config_version_changed: version_changed,
            credentials: check_due(app, orchestrated, &config, job.forced, budget, request_id)
                .await,
            out_of_time: false,
        }),
        Ok(Refresh::NotFound { existed }) => {
            tracing::info!(
                request_id,
                host,
                "warmup: host not found; its copy is deleted"
            );
            Some(HostResult {
                status: Status::NotFound,
                config_version_changed: existed,
                ..unavailable(app, &host)
            })
        }
        Err(SourceError::Configuration(error)) => {
            tracing::warn!(request_id, host, %error, "warmup: the tenant's runtime config is unusable");
            Some(unavailable(app, &host))
        }
        Err(error) => {
            tracing::warn!(request_id, host, %error, "warmup: runtime config not refreshed");
            Some(unavailable(app, &host))
        }
    }
}

/// May this consumer refresh the host handed out at `since`: not fetched
/// since then, and not being refreshed by another consumer (SQS delivers a
/// message twice now and then)? A table that cannot say lets it refresh.
async fn claimed(
    orchestrated: &Orchestrated,
    host: &str,
    since: SystemTime,
    request_id: &str,
) -> bool {
    let Some(tier) = orchestrated.tier() else {
        return true;
    };
    match tier.claim_refresh(host, since, CLAIM).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::debug!(request_id, host, %error, "warmup: cannot claim the refresh; refreshing");
            true
        }
    }
}

pub(crate) fn unavailable(app: &App, host: &str) -> HostResult {
    HostResult {
        host: host.to_string(),
        tenant: host::tenant_of(host, &app.settings.base_domain),
        status: Status::Unavailable,
        config_version_changed: false,
        credentials: BTreeMap::new(),
        out_of_time: false,
    }
}

/// A host the run had no time (or no calls) left for.
fn out_of_time(app: &App, host: &str) -> HostResult {
    HostResult {
        out_of_time: true,
        ..unavailable(app, host)
    }
}

/// Counts the hosts of a run by status.
pub(crate) fn record(results: &[Option<HostResult>]) {
    for result in results {
        let status = match result {
            None => "fresh",
            Some(r) => r.status.as_str(),
        };
        metrics::record(Metric::WarmupHost { status });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use publisher::settings::Settings;

    #[tokio::test]
    async fn a_panic_in_one_host_costs_that_host_only() {
        let settings = Settings::from_lookup(|name| match name {
            "ORCHESTRATOR_BASE_URL" => Some("http://127.0.0.1:9".into()),
            "ORCHESTRATOR_SERVICE_TOKEN" => Some("token".into()),
            _ => None,
        })
        .expect("settings");
        let app = App::new(settings).expect("app");
        let limits = Limits {
            give_up: None,
            window_end: None,
        };
        let hosts = ["a.shibari.photo", "b.shibari.photo", "c.shibari.photo"];
        let results: Vec<Option<HostResult>> = stream::iter(hosts)
            .map(|host| {
                let app = &app;
                let work = async move {
                    assert!(!host.starts_with('b'), "a bug in b's warmup");
                    Some(HostResult {
                        status: Status::Ok,
                        ..unavailable(app, host)
                    })
                };
                guarded(app, host.to_string(), limits, "panic-test", work)
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let statuses: Vec<(&str, Status)> = results
            .iter()
            .flatten()
            .map(|r| (r.host.as_str(), r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a.shibari.photo", Status::Ok),
                ("b.shibari.photo", Status::Unavailable),
                ("c.shibari.photo", Status::Ok),
            ]
        );
    }
}
