//! Routes, grouped by what they need: health needs no tenant; everything else
//! runs behind the tenant layer.

mod config;
mod health;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use publisher::app::App;

pub fn health_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
}

pub fn tenant_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/config/features", get(config::features))
        .route("/api/config/publishers", get(config::publishers))
}
