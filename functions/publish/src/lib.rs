//! The publish function's handler, without the Lambda runtime: an event in,
//! one summary per host out (`docs/events.md`).

pub mod preview_text;

use std::time::SystemTime;

use std::panic::AssertUnwindSafe;

use futures::stream::{self, StreamExt};
use futures::FutureExt;
use publisher::app::App;
use publisher::workflow::{Options, Reason, Summary};
use serde::Deserialize;
use serde_json::{json, Value};

/// Hosts published at the same time.
pub const CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is not one the function accepts.
    #[error("invalid publish event: {0}")]
    BadEvent(String),
    /// Every host failed for a reason that may pass: let Lambda retry.
    #[error("every host failed transiently: {0}")]
    AllFailed(String),
}

/// The fields of a plain event, or of a Scheduled Event's `detail`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    host: Option<String>,
    hosts: Option<Vec<String>>,
    select: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    preview: bool,
    idempotency_key: Option<String>,
    #[serde(default)]
    refresh_caption: bool,
}

/// A parsed event: the hosts it names and the run options.
#[derive(Debug)]
pub struct Event {
    pub hosts: Vec<String>,
    pub options: Options,
}

/// Reads a plain event or an EventBridge Scheduled Event (whose `detail`
/// holds the fields and whose `id` is the idempotency key). No host at all
/// → `default_hosts` (`PUBLISH_HOSTS`).
pub fn parse_event(event: Value, default_hosts: &[String]) -> Result<Event, HandlerError> {
    let bad = |e: serde_json::Error| HandlerError::BadEvent(e.to_string());
    let (fields, envelope_id) = match event {
        Value::Null => (Fields::default(), None),
        Value::Object(mut map) if map.contains_key("detail-type") => {
            let id = map.get("id").and_then(Value::as_str).map(str::to_string);
            let detail = match map.remove("detail") {
                None | Some(Value::Null) => Fields::default(),
                Some(detail) => serde_json::from_value(detail).map_err(bad)?,
            };
            (detail, id)
        }
        other => (serde_json::from_value(other).map_err(bad)?, None),
    };
    let mut hosts: Vec<String> = fields
        .host
        .into_iter()
        .chain(fields.hosts.unwrap_or_default())
        .collect();
    if hosts.is_empty() {
        hosts = default_hosts.to_vec();
    }
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|h| seen.insert(h.trim().to_ascii_lowercase()));
    Ok(Event {
        hosts,
        options: Options {
            select: fields.select,
            dry_run: fields.dry_run,
            preview: fields.preview,
            idempotency_key: fields
                .idempotency_key
                .or(envelope_id)
                .filter(|k| !k.is_empty()),
            refresh_caption: fields.refresh_caption,
            deadline: None,
        },
    })
}

/// Publishes every host of `event`, [`CONCURRENCY`] at a time, and answers
/// `{"results": [summary, ...]}` in the event's host order.
pub async fn handle(
    app: &App,
    event: Value,
    deadline: Option<SystemTime>,
    request_id: &str,
) -> Result<Value, HandlerError> {
    let Event { hosts, mut options } = parse_event(event, &app.settings.publish_hosts)?;
    options.deadline = deadline;
    if hosts.is_empty() {
        tracing::error!(
            request_id,
            "publish: the event names no host and PUBLISH_HOSTS is empty"
        );
        return Err(HandlerError::BadEvent(
            "no host: name one in the event or set PUBLISH_HOSTS".into(),
        ));
    }
    let options = &options;
    let summaries: Vec<Summary> = stream::iter(hosts)
        .map(|host| async move {
            let run = run(app, &host, options, request_id);
            isolated(&host, request_id, run).await
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for summary in &summaries {
        tracing::info!(
            request_id,
            host = %summary.host,
            tenant = summary.tenant.as_deref().unwrap_or(""),
            status = summary.status.as_str(),
            image = summary.image.as_deref().unwrap_or(""),
            error = summary.error.as_deref().unwrap_or(""),
            "publish summary"
        );
    }
    if summaries.iter().all(Summary::transient) {
        let why: Vec<String> = summaries
            .iter()
            .map(|s| format!("{}: {}", s.host, s.error.as_deref().unwrap_or("failed")))
            .collect();
        return Err(HandlerError::AllFailed(why.join("; ")));
    }
    Ok(json!({ "results": summaries }))
}

/// `run`, whose panic fails its host alone: the other hosts and the
/// invocation go on.
async fn isolated(
    host: &str,
    request_id: &str,
    run: impl std::future::Future<Output = Summary>,
) -> Summary {
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(summary) => summary,
        Err(_) => {
            tracing::error!(request_id, host, "publish: the run for this host panicked");
            Summary::stopped(host, None, Reason::Internal)
        }
    }
}

/// One host's run, from its raw host name.
async fn run(app: &App, raw_host: &str, options: &Options, request_id: &str) -> Summary {
    match app.tenant(raw_host, request_id).await {
        Ok(tenant) => app.workflow.run(&tenant, options, request_id).await,
        Err(error) if error.is_not_found() => {
            tracing::info!(request_id, host = raw_host, %error, "publish: tenant not found");
            Summary::stopped(raw_host, None, Reason::TenantNotFound)
        }
        Err(error) => {
            tracing::warn!(request_id, host = raw_host, %error, "publish: tenant unavailable");
            Summary::stopped(raw_host, None, Reason::TenantUnavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(event: Value) -> Event {
        parse_event(event, &["a.shibari.photo".to_string()]).expect("valid event")
    }

    #[test]
    fn plain_multi_host_and_default_events() {
        let e = parse(json!({"host": "x.shibari.photo", "select": "a.jpg", "dry_run": true}));
        assert_eq!(e.hosts, ["x.shibari.photo"]);
        assert_eq!(e.options.select.as_deref(), Some("a.jpg"));
        assert!(e.options.dry_run && !e.options.preview);
        assert_eq!(e.options.idempotency_key, None);
        let e = parse(
            json!({"hosts": ["x.shibari.photo", "y.shibari.photo", "X.shibari.photo"], "preview": true, "idempotency_key": "k1", "refresh_caption": true}),
        );
        assert_eq!(e.hosts, ["x.shibari.photo", "y.shibari.photo"]);
        assert!(e.options.preview && e.options.refresh_caption);
        assert_eq!(e.options.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(parse(json!({})).hosts, ["a.shibari.photo"]);
        assert_eq!(parse(Value::Null).hosts, ["a.shibari.photo"]);
    }

    #[test]
    fn scheduled_event_envelope() {
        let sample = include_str!("../../../events/publish_scheduled_event.json");
        let e = parse(serde_json::from_str(sample).unwrap());
        assert_eq!(e.hosts, ["vermont.shibari.photo"]);
        assert_eq!(
            e.options.idempotency_key.as_deref(),
            Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
        );
        let e = parse(json!({"detail-type": "Scheduled Event", "id": "ev-1", "detail": {}}));
        assert_eq!(e.hosts, ["a.shibari.photo"]);
        assert_eq!(e.options.idempotency_key.as_deref(), Some("ev-1"));
        let e = parse(
            json!({"detail-type": "Scheduled Event", "id": "ev-1", "detail": {"idempotency_key": "own"}}),
        );
        assert_eq!(e.options.idempotency_key.as_deref(), Some("own"));
    }

    #[tokio::test]
    async fn a_panicking_host_fails_alone() {
        let panicking = async {
            if std::hint::black_box(true) {
                panic!("a bug hit by this host's data");
            }
            Summary::stopped("x.shibari.photo", None, Reason::NoImages)
        };
        let failed = isolated("x.shibari.photo", "r", panicking).await;
        assert_eq!(failed.status, publisher::workflow::Status::Failed);
        assert_eq!(failed.error.as_deref(), Some("Internal error"));
        assert!(!failed.transient(), "a retry would hit the same bug");
        let fine = isolated("y.shibari.photo", "r", async {
            Summary::stopped("y.shibari.photo", None, Reason::NoImages)
        })
        .await;
        assert_eq!(fine.error.as_deref(), Some("No images found"));
    }

    #[test]
    fn malformed_events_are_refused() {
        for event in [
            json!({"host": 7}),
            json!({"hosts": "x.shibari.photo"}),
            json!({"hots": ["x"]}),
            json!({"dry_run": "yes"}),
            json!(["x.shibari.photo"]),
            json!({"detail-type": "Scheduled Event", "detail": {"host": ["x"]}}),
        ] {
            assert!(
                matches!(
                    parse_event(event.clone(), &[]),
                    Err(HandlerError::BadEvent(_))
                ),
                "{event}"
            );
        }
    }
}
