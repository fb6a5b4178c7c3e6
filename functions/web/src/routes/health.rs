//! `/health`, `/health/live`, `/health/ready`: no tenant resolution. The
//! readiness probe asks the orchestrator at most once per
//! [`READY_PROBE_TTL`] per instance (between, the last result), so that a
//! public URL cannot be turned into a flood on the orchestrator; the
//! instance's counters are shown only to an admin or an API caller.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use publisher::app::App;
use publisher::host;
use serde_json::json;
use tokio::sync::Mutex;

use crate::guards::api_credentials_match;
use crate::web_state::WebState;
use crate::RequestId;

/// How long a readiness answer is reused.
pub const READY_PROBE_TTL: Duration = Duration::from_secs(10);

/// The last readiness answer and when it was had.
#[derive(Default)]
pub struct Readiness(Mutex<Option<(SystemTime, bool)>>);

impl Readiness {
    /// The orchestrator's readiness, probed when the last answer is older
    /// than [`READY_PROBE_TTL`]; concurrent callers wait for one probe.
    async fn get(&self, app: &App, request_id: &str) -> bool {
        let mut last = self.0.lock().await;
        if let Some((at, ready)) = *last {
            if app.clock.since(at) < READY_PROBE_TTL {
                return ready;
            }
        }
        let ready = app.source.ready(request_id).await;
        *last = Some((app.clock.now(), ready));
        ready
    }
}

pub async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(
    State(app): State<Arc<App>>,
    Extension(state): Extension<Arc<WebState>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let mode = app.source.mode();
    if !state.readiness.get(&app, &request_id.0).await {
        let body = json!({"status": "not_ready", "reason": "orchestrator_unavailable"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let mut body = json!({"status": "ok", "mode": mode});
    if mode == "orchestrated" && may_see_counters(&app, &state, &headers) {
        body["counters"] = json!(app.counters.snapshot());
    }
    Json(body).into_response()
}

/// An API caller, or an admin of the host's tenant (read from the host
/// alone: this route resolves no tenant).
fn may_see_counters(app: &App, state: &WebState, headers: &HeaderMap) -> bool {
    if api_credentials_match(&app.settings.web, headers) {
        return true;
    }
    let tenant = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| host::validate(h).ok())
        .map(|h| host::tenant_of(&h, &app.settings.base_domain));
    tenant.is_some_and(|tenant| state.sessions.is_admin(headers, &tenant))
}
