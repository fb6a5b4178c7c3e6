//! Each response counted by status class with its latency, and the
//! metrics of the request flushed once it is answered: in Lambda one
//! invocation is one request, so this is the per-invocation flush.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use publisher::metrics::{self, Metric};

pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::record(Metric::WebResponse {
        status: response.status().as_u16(),
        latency: started.elapsed(),
    });
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    metrics::flush(request_id);
    response
}
