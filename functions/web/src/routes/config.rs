use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use publisher::app::App;
use publisher::tenant::TenantContext;
use serde_json::{json, Value};

pub async fn features(
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<TenantContext>,
) -> Json<Value> {
    let config = &tenant.config.config;
    let f = &config.features;
    Json(json!({
        "analyze_caption_enabled": config.analysis_enabled(),
        "publish_enabled": f.publish_enabled,
        "keep_enabled": f.keep_enabled,
        "remove_enabled": f.remove_enabled,
        "auto_view_enabled": f.auto_view_enabled,
        "auth_mode": app.settings.web.auth_mode().as_str(),
    }))
}

pub async fn publishers(Extension(tenant): Extension<TenantContext>) -> Json<Value> {
    let publishers = &tenant.config.config.publishers;
    Json(json!({
        "telegram": publishers.telegram.is_some(),
        "email": publishers.fetlife.is_some(),
        "instagram": false,
    }))
}
