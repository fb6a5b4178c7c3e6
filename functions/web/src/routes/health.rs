use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use publisher::app::App;
use serde_json::json;

use crate::RequestId;

pub async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(
    State(app): State<Arc<App>>,
    Extension(request_id): Extension<RequestId>,
) -> Response {
    let mode = app.source.mode();
    if !app.source.ready(&request_id.0).await {
        let body = json!({"status": "not_ready", "reason": "orchestrator_unavailable"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let mut body = json!({"status": "ok", "mode": mode});
    if mode == "orchestrated" {
        body["counters"] = json!(app.counters.snapshot());
    }
    Json(body).into_response()
}
