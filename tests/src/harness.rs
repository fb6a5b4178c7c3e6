//! Builds the web function's router the way `main` does, from settings given
//! as variables, and sends requests through it in process.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use publisher::app::App;
use publisher::clock::Clock;
use publisher::settings::Settings;
use publisher::table::Table;
use serde_json::Value;
use tower::ServiceExt;

use crate::fake_orchestrator::FakeOrchestrator;

/// The tokens tests give the fake orchestrator and the functions.
pub const PRIMARY_TOKEN: &str = "svc-primary-token";

pub fn settings(vars: &[(&str, &str)]) -> Settings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|name| map.get(name).cloned()).expect("valid test settings")
}

/// An app in orchestrated mode against `fake`, without a table, on a
/// manual clock of its own (`app.clock`: the test moves time itself);
/// `extra` adds or overrides variables.
pub fn orchestrated_app(fake: &FakeOrchestrator, extra: &[(&str, &str)]) -> Arc<App> {
    orchestrated_app_at(fake, extra, None, Clock::manual_now())
}

/// One instance in orchestrated mode against `fake`, on `table` (none:
/// memory only), reading `clock` (instances of one fleet share theirs).
pub fn orchestrated_app_at(
    fake: &FakeOrchestrator,
    extra: &[(&str, &str)],
    table: Option<Table>,
    clock: Clock,
) -> Arc<App> {
    let base = fake.base_url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("ORCHESTRATOR_BASE_URL", base.as_str()),
        ("ORCHESTRATOR_SERVICE_TOKEN", PRIMARY_TOKEN),
        ("ORCHESTRATOR_TIMEOUT_SECONDS", "2"),
    ];
    vars.extend_from_slice(extra);
    Arc::new(App::assemble(settings(&vars), table, clock).expect("app starts"))
}

pub fn router(app: &Arc<App>) -> Router {
    web::router(app.clone())
}

/// A fake orchestrator serving the v1 sample as `maple`, the v2 sample as
/// `vermont`, and every credential of both.
pub async fn fake_with_samples() -> FakeOrchestrator {
    let fake = FakeOrchestrator::start().await;
    let (v1, v2, _) = crate::fake_orchestrator::samples();
    fake.put_runtime("maple.shibari.photo", v1);
    fake.put_runtime("vermont.shibari.photo", v2);
    for tenant in ["maple", "vermont"] {
        for (cref, payload) in crate::fake_orchestrator::credentials_for(tenant) {
            fake.put_credential(tenant, &cref, payload);
        }
    }
    fake
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

pub async fn get(router: &Router, host: &str, path: &str) -> Answer {
    let request = Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .expect("request");
    send(router, request).await
}
