//! Routes, grouped by what they need: health needs no tenant; everything else
//! runs behind the tenant layer.

mod admin;
mod auth;
mod config;
mod health;
mod images;
mod publish;

pub use health::Readiness;

use std::sync::Arc;

use axum::routing::{get, post};
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
        .route("/", get(crate::ui::page))
        .route("/api/admin/status", get(admin::status))
        .route("/api/admin/login", post(admin::login))
        .route("/api/admin/logout", post(admin::logout))
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", get(auth::logout))
        .route("/api/images/list", get(images::list))
        .route("/api/images/random", get(images::random))
        .route("/api/images/{filename}", get(images::details))
        .route("/api/images/{filename}/thumbnail", get(images::thumbnail))
        .route("/api/images/{filename}/content", get(images::content))
        .route("/api/images/{filename}/keep", post(images::keep))
        .route("/api/images/{filename}/remove", post(images::remove))
        .merge(publish::routes())
}
