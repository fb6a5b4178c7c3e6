//! The one metrics module: what the functions count about their own health,
//! and the two places it goes (`docs/operations.md`, Metrics):
//!
//! - CloudWatch, as Embedded Metric Format documents in the log stream
//!   Lambda already ships (`emf`: written once per invocation by
//!   [`flush`]); locally, the same documents in the log at debug level;
//! - `/health/ready`'s `counters`: the cache and orchestrator [`Counter`]s
//!   of one process ([`Counters::snapshot`]).
//!
//! Code records a metric with one line: `metrics::record(Metric::…)`, or
//! `counters.incr(Counter::…)` where it holds the process's counters (a
//! counter also goes to CloudWatch, under its own name). Dimension values
//! are `&'static str`s and typed values (a role, a status): never a value a
//! request or a file brought, so that no metric grows a dimension per host
//! or file name. The tenant is a dimension only where an operator needs a
//! per-tenant view (stale serves, publish outcomes, credential checks); such
//! a metric is also recorded without it, for fleet-wide alarms.

mod emf;

pub use emf::{flush, install, set_function, Sink};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::secrets::{CredentialErrorKind, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    RuntimeHit,
    RuntimeMiss,
    RuntimeStaleServe,
    RuntimeNegativeHit,
    RuntimeDynamoHit,
    RuntimeDynamoError,
    OrchestratorCalls,
    CredentialHit,
    CredentialMiss,
    CredentialCoalesced,
}

impl Counter {
    const ALL: [Counter; 10] = [
        Counter::RuntimeHit,
        Counter::RuntimeMiss,
        Counter::RuntimeStaleServe,
        Counter::RuntimeNegativeHit,
        Counter::RuntimeDynamoHit,
        Counter::RuntimeDynamoError,
        Counter::OrchestratorCalls,
        Counter::CredentialHit,
        Counter::CredentialMiss,
        Counter::CredentialCoalesced,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::RuntimeHit => "runtime_hit",
            Counter::RuntimeMiss => "runtime_miss",
            Counter::RuntimeStaleServe => "runtime_stale_serve",
            Counter::RuntimeNegativeHit => "runtime_negative_hit",
            Counter::RuntimeDynamoHit => "runtime_dynamo_hit",
            Counter::RuntimeDynamoError => "runtime_dynamo_error",
            Counter::OrchestratorCalls => "orchestrator_calls",
            Counter::CredentialHit => "credential_hit",
            Counter::CredentialMiss => "credential_miss",
            Counter::CredentialCoalesced => "credential_coalesced",
        }
    }
}

#[derive(Debug, Default)]
pub struct Counters([AtomicU64; Counter::ALL.len()]);

impl Counters {
    /// Counts one, here and in CloudWatch (the metric of the counter's name).
    pub fn incr(&self, counter: Counter) {
        self.0[counter as usize].fetch_add(1, Ordering::Relaxed);
        emf::count(counter.name(), &[], 1);
    }

    /// [`Counters::incr`], and the same metric for `tenant` alone.
    pub fn incr_for(&self, counter: Counter, tenant: &str) {
        self.incr(counter);
        emf::count(counter.name(), &[("tenant", tenant)], 1);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL
            .iter()
            .map(|&c| (c.name(), self.get(c)))
            .collect()
    }
}

/// A publisher's part in a publish run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Failed,
    /// Configured but not sent: its client could not be set up, or the run
    /// was a preview or dry run.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One thing worth counting, with its dimensions (`docs/operations.md`
/// lists them all). The function (`web`, `publish`, `warmup`) is a
/// dimension of every metric.
#[derive(Debug, Clone, Copy)]
pub enum Metric<'a> {
    /// The process starts (once; flushed with its first invocation).
    ColdStart,
    /// A runtime config answered by the orchestrator (the memory, table,
    /// stale and negative tiers are [`Counter`]s).
    RuntimeFromOrchestrator,
    /// One logical orchestrator call (its retries included): how long it
    /// took and, when it failed, why (`forbidden`, `rejected`,
    /// `unreachable`, `unavailable`, `invalid_response`).
    OrchestratorCall {
        call: &'static str,
        latency: Duration,
        error: Option<&'static str>,
    },
    /// One orchestrator answer of 429 (the call backs off and may still
    /// succeed).
    OrchestratorThrottled { call: &'static str },
    /// A credential resolved from the orchestrator, or not.
    CredentialResolution {
        role: Role,
        error: Option<CredentialErrorKind>,
    },
    /// A failed DynamoDB call; `throttled`: the table refused the load.
    DynamoError {
        operation: &'static str,
        throttled: bool,
    },
    /// A web response and how long it took.
    WebResponse { status: u16, latency: Duration },
    /// A login that did not succeed (`method`: `password`, `oidc`).
    LoginFailure { method: &'static str },
    /// A login refused before it was tried (`reason`: e.g. `rate_limited`).
    LoginRefused { reason: &'static str },
    /// One publisher's part in a run.
    PublishOutcome {
        tenant: &'a str,
        platform: &'a str,
        outcome: Outcome,
    },
    /// A publish run's status (`published`, `failed`, ...).
    PublishRun {
        tenant: &'a str,
        status: &'static str,
    },
    /// A publish run in which every publisher failed.
    PublishEveryPlatformFailed { tenant: &'a str },
    /// An image refused (`reason`: e.g. `too_large`).
    ImageRefused { reason: &'static str },
    /// A host of a warmup run, by its status (`ok`, `not_found`,
    /// `unavailable`, `fresh`).
    WarmupHost { status: &'static str },
    /// A warmup credential check that failed.
    CredentialCheckFailed { tenant: &'a str, role: Role },
    /// Hosts a warmup run could not refresh in its interval.
    WarmupNotRefreshed { hosts: u64 },
    /// Hosts the scheduled warmup handed to the queue.
    WarmupQueued { hosts: u64 },
}

/// Records `metric` (in CloudWatch; a no-op until [`install`]).
pub fn record(metric: Metric<'_>) {
    use Metric::*;
    match metric {
        ColdStart => emf::count("cold_starts", &[], 1),
        RuntimeFromOrchestrator => emf::count("runtime_orchestrator", &[], 1),
        OrchestratorCall {
            call,
            latency,
            error,
        } => {
            emf::latency("orchestrator_latency", &[("call", call)], latency);
            if let Some(kind) = error {
                emf::count("orchestrator_errors", &[("call", call), ("kind", kind)], 1);
            }
        }
        OrchestratorThrottled { call } => {
            emf::count("orchestrator_throttled", &[("call", call)], 1)
        }
        CredentialResolution { role, error } => {
            let role = role.as_str();
            emf::count("credential_resolutions", &[("role", role)], 1);
            if let Some(kind) = error {
                let kind = kind_name(kind);
                emf::count("credential_failures", &[("role", role), ("kind", kind)], 1);
            }
        }
        DynamoError {
            operation,
            throttled,
        } => {
            let name = match throttled {
                true => "dynamodb_throttles",
                false => "dynamodb_errors",
            };
            emf::count(name, &[("operation", operation)], 1);
        }
        WebResponse { status, latency } => {
            emf::count("web_responses", &[("class", status_class(status))], 1);
            emf::latency("web_latency", &[], latency);
        }
        LoginFailure { method } => emf::count("login_failures", &[("method", method)], 1),
        LoginRefused { reason } => emf::count("login_refusals", &[("reason", reason)], 1),
        PublishOutcome {
            tenant,
            platform,
            outcome,
        } => {
            let labels = [("platform", platform), ("outcome", outcome.as_str())];
            per_tenant("publish_outcomes", &labels, tenant);
        }
        PublishRun { tenant, status } => per_tenant("publish_runs", &[("status", status)], tenant),
        PublishEveryPlatformFailed { tenant } => {
            per_tenant("publish_every_platform_failed", &[], tenant)
        }
        ImageRefused { reason } => emf::count("images_refused", &[("reason", reason)], 1),
        WarmupHost { status } => emf::count("warmup_hosts", &[("status", status)], 1),
        CredentialCheckFailed { tenant, role } => per_tenant(
            "credential_checks_failed",
            &[("role", role.as_str())],
            tenant,
        ),
        WarmupNotRefreshed { hosts } => emf::count("warmup_hosts_not_refreshed", &[], hosts),
        WarmupQueued { hosts } => emf::count("warmup_hosts_queued", &[], hosts),
    }
}

/// The metric for the fleet, and the same metric for `tenant`.
fn per_tenant(name: &'static str, labels: &[(&'static str, &str)], tenant: &str) {
    emf::count(name, labels, 1);
    let mut with_tenant = labels.to_vec();
    with_tenant.push(("tenant", tenant));
    emf::count(name, &with_tenant, 1);
}

fn kind_name(kind: CredentialErrorKind) -> &'static str {
    match kind {
        CredentialErrorKind::NotFound => "not_found",
        CredentialErrorKind::Unauthorized => "unauthorized",
        CredentialErrorKind::Unavailable => "unavailable",
        CredentialErrorKind::ProviderMismatch => "provider_mismatch",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_counter_apart() {
        let counters = Counters::default();
        counters.incr(Counter::RuntimeHit);
        counters.incr(Counter::RuntimeHit);
        counters.incr(Counter::CredentialCoalesced);
        counters.incr_for(Counter::RuntimeStaleServe, "acme");
        let snap = counters.snapshot();
        assert_eq!(snap["runtime_hit"], 2);
        assert_eq!(snap["credential_coalesced"], 1);
        assert_eq!(snap["runtime_stale_serve"], 1, "once, whatever the tenant");
        assert_eq!(snap["runtime_miss"], 0);
        assert_eq!(snap.len(), 10);
    }

    #[test]
    fn status_classes() {
        let classes: Vec<&str> = [101, 200, 204, 302, 404, 429, 500, 503, 999]
            .into_iter()
            .map(status_class)
            .collect();
        assert_eq!(
            classes,
            ["1xx", "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "5xx"]
        );
    }
}
