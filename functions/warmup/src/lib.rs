//! The warmup function (`docs/events.md`): for every host of
//! its event, of `WARMUP_HOSTS` and of the table, fetches the runtime config
//! from the orchestrator into DynamoDB ahead of expiry, so that web and
//! publish instances find it fresh there, and checks that each of the
//! tenant's credentials resolves to the provider its role needs.
//!
//! The handler is plain async code over [`App`]; `main` wraps it in
//! `lambda_runtime`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{stream, StreamExt};
use publisher::app::App;
use publisher::config::RuntimeConfig;
use publisher::host;
use publisher::secrets::Role;
use publisher::source::{Orchestrated, Refresh, SourceError};
use publisher::table::CredentialCheck;
use serde::Serialize;
use serde_json::Value;

/// Hosts refreshed at a time (each with up to four credential checks at
/// once): 300 hosts take seconds against an orchestrator answering in 50 ms,
/// without flooding it.
pub const CONCURRENCY: usize = 16;
/// Time kept before the invocation's deadline to answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    #[error("warmup event: {0}")]
    BadEvent(&'static str),
    #[error("the warmup needs the orchestrator (ORCHESTRATOR_BASE_URL is not set)")]
    Standalone,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    pub results: Vec<HostResult>,
}

#[derive(Debug, Serialize)]
pub struct HostResult {
    pub host: String,
    /// The envelope's tenant; the host-derived one when there is no config.
    pub tenant: String,
    pub status: Status,
    pub config_version_changed: bool,
    /// By role: `ok`, `not_found`, `unauthorized`, `unavailable`,
    /// `provider_mismatch`.
    pub credentials: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    NotFound,
    Unavailable,
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

/// One warmup run. `deadline`: the invocation's; hosts still running shortly
/// before it answer `unavailable`, so that the run always answers. A
/// deadline already past is not a real one and is ignored.
pub async fn handle(
    app: &App,
    event: &Value,
    request_id: &str,
    deadline: Option<SystemTime>,
) -> Result<Answer, WarmupError> {
    let started = Instant::now();
    let from_event = event_hosts(event)?;
    let orchestrated = app
        .source
        .orchestrated()
        .ok_or(WarmupError::Standalone)?
        .clone();
    let from_table = match orchestrated.tier() {
        Some(tier) => tier.hosts().await.unwrap_or_else(|error| {
            tracing::warn!(request_id, %error, "cannot list the table's hosts; warming the others");
            Vec::new()
        }),
        None => Vec::new(),
    };
    let hosts = unique_hosts(
        from_event
            .iter()
            .chain(&app.settings.warmup_hosts)
            .chain(&from_table),
    );
    let give_up = deadline.and_then(|d| match d.duration_since(SystemTime::now()) {
        Ok(left) => tokio::time::Instant::now().checked_add(left.saturating_sub(DEADLINE_MARGIN)),
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
    let results: Vec<HostResult> = stream::iter(hosts)
        .map(|raw| {
            let orchestrated = orchestrated.clone();
            async move {
                let work = warm_host(app, &orchestrated, &raw, request_id);
                match give_up {
                    Some(at) => match tokio::time::timeout_at(at, work).await {
                        Ok(result) => result,
                        Err(_) => {
                            tracing::warn!(request_id, host = %raw, "warmup ran out of time for this host");
                            unavailable(app, &raw)
                        }
                    },
                    None => work.await,
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let failed_checks: usize = results
        .iter()
        .map(|r| r.credentials.values().filter(|s| *s != "ok").count())
        .sum();
    tracing::info!(
        request_id,
        hosts = results.len(),
        ok = count(Status::Ok),
        not_found = count(Status::NotFound),
        unavailable = count(Status::Unavailable),
        failed_checks,
        latency_ms = started.elapsed().as_millis() as u64,
        "warmup done"
    );
    Ok(Answer { results })
}

/// Normalized, in order of first mention, each once.
fn unique_hosts<'a>(raw: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = HashSet::new();
    raw.map(|h| host::normalize(h))
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

async fn warm_host(
    app: &App,
    orchestrated: &Arc<Orchestrated>,
    raw: &str,
    request_id: &str,
) -> HostResult {
    let host = match host::validate(raw) {
        Ok(host) => host,
        Err(error) => {
            tracing::warn!(request_id, host = %raw, %error, "warmup host is not a valid tenant host");
            return HostResult {
                status: Status::NotFound,
                ..unavailable(app, raw)
            };
        }
    };
    match orchestrated.refresh(&host, request_id).await {
        Ok(Refresh::Found {
            config,
            version_changed,
        }) => HostResult {
            host,
            tenant: config.tenant.clone(),
            status: Status::Ok,
            config_version_changed: version_changed,
            credentials: check_credentials(app, orchestrated, &config, request_id).await,
        },
        Ok(Refresh::NotFound { existed }) => {
            tracing::info!(
                request_id,
                host,
                "warmup: host not found; its copy is deleted"
            );
            HostResult {
                status: Status::NotFound,
                config_version_changed: existed,
                ..unavailable(app, &host)
            }
        }
        Err(SourceError::Configuration(error)) => {
            tracing::warn!(request_id, host, %error, "warmup: the tenant's runtime config is unusable");
            unavailable(app, &host)
        }
        Err(error) => {
            tracing::warn!(request_id, host, %error, "warmup: runtime config not refreshed");
            unavailable(app, &host)
        }
    }
}

fn unavailable(app: &App, host: &str) -> HostResult {
    HostResult {
        host: host.to_string(),
        tenant: host::tenant_of(host, &app.settings.base_domain),
        status: Status::Unavailable,
        config_version_changed: false,
        credentials: BTreeMap::new(),
    }
}

/// Resolves every credential the config names, at once; records the
/// outcomes in the table and forgets the checks of roles the tenant no
/// longer uses.
async fn check_credentials(
    app: &App,
    orchestrated: &Orchestrated,
    config: &RuntimeConfig,
    request_id: &str,
) -> BTreeMap<&'static str, String> {
    let (used, dropped): (Vec<Role>, Vec<Role>) = Role::ALL
        .into_iter()
        .partition(|&role| config.config.credential_ref(role).is_some());
    let checks = futures::future::join_all(used.into_iter().map(|role| async move {
        let error = orchestrated
            .check_credential(config, role, request_id)
            .await
            .err();
        if let Some(kind) = error {
            tracing::warn!(
                request_id, host = %config.host, tenant = %config.tenant, %role, error = %kind,
                "credential check failed"
            );
        }
        CredentialCheck {
            role,
            error,
            checked_at: app.clock.now(),
        }
    }))
    .await;
    if let Some(table) = &app.table {
        if let Err(error) = table
            .record_credential_checks(&config.tenant, &checks, &dropped, &app.clock)
            .await
        {
            tracing::warn!(request_id, host = %config.host, tenant = %config.tenant, %error, "cannot record the credential checks");
        }
    }
    checks
        .iter()
        .map(|check| {
            let status = check
                .error
                .map_or_else(|| "ok".to_string(), |kind| kind.to_string());
            (check.role.as_str(), status)
        })
        .collect()
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

    #[test]
    fn hosts_are_normalized_and_listed_once() {
        let raw = [
            "B.shibari.photo".to_string(),
            "a.shibari.photo".to_string(),
            "b.shibari.photo.".to_string(),
        ];
        assert_eq!(
            unique_hosts(raw.iter()),
            ["b.shibari.photo", "a.shibari.photo"]
        );
    }
}
