//! The fixed answers of the HTTP API: tenant errors say nothing of their cause;
//! route errors answer `{"detail": ...}`.

use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
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

/// Marks the answer to a request whose handler panicked.
#[derive(Debug, Clone, Copy)]
pub struct Panicked;

/// The answer to a request whose handler panicked: a 500 that says nothing
/// of the cause (the request-id layer adds the id and logs it).
pub fn panicked(_: Box<dyn std::any::Any + Send>) -> Response {
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "Internal server error"})),
    )
        .into_response();
    response.extensions_mut().insert(Panicked);
    response
}

/// A client over its failure limit: 429 until the window has passed.
pub fn too_many_failures(retry_after: Duration) -> Response {
    let mut response = detail(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed login attempts; try again later",
    );
    let seconds = retry_after.as_secs().max(1).to_string();
    if let Ok(value) = HeaderValue::from_str(&seconds) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

pub async fn unknown_route() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}
