//! The web function: one axum Router for every tenant host. Lambda runs it
//! through `lambda_http`, local runs through `axum::serve`; both share the
//! state built once in `main`.

// Route helpers answer failures as ready `Response`s (axum's idiom); boxing
// them would only add an allocation per error.
#![allow(clippy::result_large_err)]

mod admin_session;
mod client_addr;
mod cookies;
mod cross_site;
mod guards;
mod images;
mod oidc;
mod request_id;
mod responses;
mod routes;
mod signing;
mod tenant_layer;
mod ui;
mod web_state;

use std::sync::Arc;

use axum::middleware;
use axum::{Extension, Router};
use publisher::app::App;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use request_id::RequestId;

/// Request bodies larger than this are answered 413.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole web function.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, Router::new())
}

/// The web function with `extra` routes beside its own, behind the same
/// tenant layer and guards (the tests add a failing one).
pub fn router_with(app: Arc<App>, extra: Router<Arc<App>>) -> Router {
    let web_state = Arc::new(web_state::WebState::new(&app));
    let pages = Arc::new(ui::Pages::new(app.settings.statics.clone()));
    let tenant_routes = routes::tenant_routes()
        .merge(extra)
        .fallback(responses::unknown_route)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            tenant_layer::resolve_tenant,
        ));
    routes::health_routes()
        .merge(tenant_routes)
        .layer(Extension(web_state))
        .layer(Extension(pages))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            cross_site::refuse_cross_site,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // A panic costs its request (a 500 with the request id), never the
        // instance.
        .layer(CatchPanicLayer::custom(responses::panicked))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(app)
}
