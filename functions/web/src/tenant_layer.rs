//! Resolves the request's tenant from its `Host` before any tenant route runs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::Response;
use publisher::app::App;

use crate::{responses, RequestId};

pub async fn resolve_tenant(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // HTTP/2 and some proxies carry the host in the URI authority only.
    let raw_host = match request.headers().get(HOST) {
        Some(value) => value.to_str().unwrap_or("").to_string(),
        None => request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    match app.tenant(&raw_host, &request_id).await {
        Ok(context) => {
            request.extensions_mut().insert(context);
            next.run(request).await
        }
        Err(error) if error.is_not_found() => {
            tracing::info!(request_id, %error, "tenant not found");
            responses::not_found()
        }
        Err(error) => {
            tracing::warn!(request_id, %error, "tenant unavailable");
            responses::unavailable()
        }
    }
}
