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

pub async fn unknown_route() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}
