//! The web function: one axum Router for every tenant host. Lambda runs it
//! through `lambda_http`, local runs through `axum::serve`; both share the
//! state built once in `main`.

mod request_id;
mod responses;
mod routes;
mod tenant_layer;

use std::sync::Arc;

use axum::middleware;
use axum::Router;
use publisher::app::App;
use tower_http::limit::RequestBodyLimitLayer;

pub use request_id::RequestId;

/// Request bodies larger than this are answered 413.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole web function.
pub fn router(app: Arc<App>) -> Router {
    let tenant_routes = routes::tenant_routes()
        .fallback(responses::unknown_route)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            tenant_layer::resolve_tenant,
        ));
    routes::health_routes()
        .merge(tenant_routes)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(app)
}
