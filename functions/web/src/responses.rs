//! The fixed answers of the HTTP API: tenant errors say nothing of their cause;
//! route errors answer `{"detail": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "Not found"}))).into_response()
}

pub fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "Service unavailable"})),
    )
        .into_response()
}

pub fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"detail": message}))).into_response()
}

pub async fn unknown_route() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}
