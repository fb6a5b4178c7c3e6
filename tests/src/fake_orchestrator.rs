//! An in-process fake of the orchestrator, following the orchestrator contract (runtime lookups, credential resolution, tokens, error shapes).
//!
//! A real HTTP server (axum on the current tokio runtime) bound to an ephemeral port on
//! 127.0.0.1, serving the two endpoints of the contract:
//!
//! - `POST /v1/runtime/by-host` (JSON body `{"host": ".."}`) and
//!   `GET /v1/runtime/by-host?host=..`;
//! - `POST /v1/credentials/resolve` (header `X-Tenant`, JSON body
//!   `{"credentials_ref": ".."}`).
//!
//! Every request goes through the same steps, in this order:
//!
//! 1. it is counted and recorded (see [`FakeOrchestrator::requests`]);
//! 2. the configured delay ([`FakeOrchestrator::set_delay`]), then the rate limit
//!    ([`FakeOrchestrator::set_rate_limit`]): above it, `429` with `Retry-After`;
//! 3. outage ([`FakeOrchestrator::set_outage`]): `503 {"error":"unavailable"}`;
//! 4. auth: `Authorization: Bearer <token>` with the primary or the secondary token,
//!    else `403 {"error":"forbidden"}`;
//! 5. scripted failures ([`FakeOrchestrator::fail_next_runtime`],
//!    [`FakeOrchestrator::fail_next_credentials`]);
//! 6. normal handling (400 / 404 / 405 / 200 as the contract says; a 200 carries
//!    `Cache-Control: no-store`).
//!
//! The server stops on [`FakeOrchestrator::shutdown`] or when the last handle is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::fake_server::{lock, FakeServer, Received, Recorder};
use crate::rate_limit::RateLimit;
use publisher::clock::Clock;

/// The primary token accepted until [`FakeOrchestrator::set_tokens`] says otherwise.
pub const DEFAULT_PRIMARY_TOKEN: &str = "svc-primary-token";
/// Path of the runtime-config endpoint.
pub const RUNTIME_PATH: &str = "/v1/runtime/by-host";
/// Path of the credential-resolution endpoint.
pub const CREDENTIALS_PATH: &str = "/v1/credentials/resolve";

const RUNTIME_V1_JSON: &str = fixture!("runtime_v1.json");
const RUNTIME_V2_JSON: &str = fixture!("runtime_v2.json");
const CREDENTIALS_JSON: &str = fixture!("credentials.json");

/// One HTTP request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path only, without the query string.
    pub path: String,
    /// Runtime calls: the host exactly as sent (POST body or GET query), not normalized.
    pub host: Option<String>,
    /// The `X-Tenant` header, if any.
    pub tenant_header: Option<String>,
    /// The `X-Request-Id` header, if any.
    pub request_id: Option<String>,
    /// The bearer token presented, if any (whether accepted or not).
    pub token: Option<String>,
    /// Status answered; `0` while the request is still being served (e.g. during a
    /// delay) or if the client went away before the answer.
    pub status: u16,
    /// Credential calls: the `credentials_ref` of the body, if it could be read.
    pub credentials_ref: Option<String>,
}

/// Handle on a running fake orchestrator. Cheap to clone; the server stops when the last
/// clone is dropped or on [`FakeOrchestrator::shutdown`].
#[derive(Clone)]
pub struct FakeOrchestrator {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for FakeOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOrchestrator")
            .field("addr", &self.inner.server.addr())
            .finish_non_exhaustive()
    }
}

struct Handle {
    shared: Arc<Shared>,
    server: FakeServer,
}

struct Shared {
    data: Mutex<Data>,
    requests: Recorder<RecordedRequest>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

struct Data {
    primary: String,
    secondary: Option<String>,
    /// normalized host → envelope
    runtimes: HashMap<String, Value>,
    /// credentials_ref → (owning tenant, payload)
    credentials: HashMap<String, (String, Value)>,
    post_supported: bool,
    fail_runtime: Option<FailPlan>,
    fail_credentials: Option<FailPlan>,
    outage: bool,
    delay: Duration,
    rate_limit: Option<RateLimit>,
}

#[derive(Clone, Copy)]
struct FailPlan {
    remaining: usize,
    status: StatusCode,
    retry_after_secs: Option<u64>,
}

impl FailPlan {
    fn take(plan: &mut Option<FailPlan>) -> Option<FailPlan> {
        let p = plan.as_mut()?;
        if p.remaining == 0 {
            *plan = None;
            return None;
        }
        p.remaining -= 1;
        let out = *p;
        if p.remaining == 0 {
            *plan = None;
        }
        Some(out)
    }
}

impl Default for Data {
    fn default() -> Self {
        Data {
            primary: DEFAULT_PRIMARY_TOKEN.to_string(),
            secondary: None,
            runtimes: HashMap::new(),
            credentials: HashMap::new(),
            post_supported: true,
            fail_runtime: None,
            fail_credentials: None,
            outage: false,
            delay: Duration::ZERO,
            rate_limit: None,
        }
    }
}

impl FakeOrchestrator {
    /// Binds 127.0.0.1:0 and spawns the server on the current tokio runtime.
    ///
    /// Panics (test helper) if the port cannot be bound.
    pub async fn start() -> FakeOrchestrator {
        let shared = Arc::new(Shared {
            data: Mutex::new(Data::default()),
            requests: Recorder::default(),
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let server = FakeServer::start("fake orchestrator", app).await;
        FakeOrchestrator {
            inner: Arc::new(Handle { shared, server }),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.server.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.server.addr()
    }

    /// Stops accepting connections; in-flight requests are allowed to finish. Returns at
    /// once: use [`FakeOrchestrator::shutdown_and_wait`] to wait until the port is closed.
    pub fn shutdown(&self) {
        self.inner.server.shutdown();
    }

    /// [`FakeOrchestrator::shutdown`], then waits until the server task has ended (the
    /// listener is closed and every connection has finished).
    pub async fn shutdown_and_wait(&self) {
        self.inner.server.shutdown_and_wait().await;
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.inner.shared.data()
    }

    // ---------------------------------------------------------------- data

    /// Accepted bearer tokens (default: primary [`DEFAULT_PRIMARY_TOKEN`], no secondary).
    pub fn set_tokens(&self, primary: &str, secondary: Option<&str>) {
        let mut d = self.data();
        d.primary = primary.to_string();
        d.secondary = secondary.map(str::to_string);
    }

    /// Serve `envelope` (200) for this host; the host is normalized the way the
    /// orchestrator does (lower-case, trailing dots and `:port` stripped), and so are the
    /// hosts of incoming lookups. Replaces any previous envelope for the host.
    pub fn put_runtime(&self, host: &str, envelope: Value) {
        self.data().runtimes.insert(normalize_host(host), envelope);
    }

    /// Lookups of this host answer 404 from now on.
    pub fn remove_runtime(&self, host: &str) {
        self.data().runtimes.remove(&normalize_host(host));
    }

    /// `credentials_ref` resolves to `payload` (as in `fixtures/credentials.json`), but
    /// only for requests whose `X-Tenant` is `tenant`.
    pub fn put_credential(&self, tenant: &str, credentials_ref: &str, payload: Value) {
        self.data()
            .credentials
            .insert(credentials_ref.to_string(), (tenant.to_string(), payload));
    }

    /// Resolutions of this ref answer 404 from now on.
    pub fn remove_credential(&self, credentials_ref: &str) {
        self.data().credentials.remove(credentials_ref);
    }

    /// Convenience: serves [`envelope_for`]`(tenant, base)` for `host` and registers every
    /// credential of [`credentials_for`]`(tenant)` for `tenant`. Returns the envelope.
    pub fn seed_tenant(&self, host: &str, tenant: &str, base: &Value) -> Value {
        let envelope = envelope_for(tenant, base);
        self.put_runtime(host, envelope.clone());
        for (credentials_ref, payload) in credentials_for(tenant) {
            self.put_credential(tenant, &credentials_ref, payload);
        }
        envelope
    }

    // ---------------------------------------------------------------- knobs

    /// `false` → `POST /v1/runtime/by-host` answers 405 (with `Allow: GET`); GET still
    /// works. Default `true`.
    pub fn set_post_supported(&self, yes: bool) {
        self.data().post_supported = yes;
    }

    /// The next `n` runtime calls that pass auth answer `status` with
    /// `{"error":"<code>"}` (and `Retry-After: <secs>` when given), then normal service
    /// resumes. Replaces any earlier plan; `n == 0` cancels it.
    ///
    /// Panics if `status` is not a valid HTTP status code.
    pub fn fail_next_runtime(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.data().fail_runtime = FailPlan::new(n, status, retry_after_secs);
    }

    /// Same as [`FakeOrchestrator::fail_next_runtime`] for credential calls.
    pub fn fail_next_credentials(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.data().fail_credentials = FailPlan::new(n, status, retry_after_secs);
    }

    /// While on, every call (any path, any token) answers `503 {"error":"unavailable"}`.
    pub fn set_outage(&self, on: bool) {
        self.data().outage = on;
    }

    /// Every call sleeps `d` before answering (after being counted). `Duration::ZERO`
    /// turns it off.
    pub fn set_delay(&self, d: Duration) {
        self.data().delay = d;
    }

    /// Answers `429` with `Retry-After` (whole seconds, at least 1) to calls
    /// above `per_second` (a token bucket holding `burst` calls), on
    /// `clock`'s time.
    pub fn set_rate_limit(&self, per_second: f64, burst: f64, clock: Clock) {
        self.data().rate_limit = Some(RateLimit::new(per_second, burst, clock));
    }

    // ---------------------------------------------------------------- observation

    /// Calls answered `429` (by the rate limit or a scripted failure).
    pub fn throttled_calls(&self) -> usize {
        self.count(|r| r.status == 429)
    }

    /// HTTP requests to `/v1/runtime/by-host` (all methods, all outcomes).
    pub fn runtime_calls(&self) -> usize {
        self.count(|r| r.path == RUNTIME_PATH)
    }

    /// Runtime requests whose host, exactly as sent (not normalized), is `host`.
    pub fn runtime_calls_for(&self, host: &str) -> usize {
        self.count(|r| r.path == RUNTIME_PATH && r.host.as_deref() == Some(host))
    }

    /// HTTP requests to `/v1/credentials/resolve` (all methods, all outcomes).
    pub fn credential_calls(&self) -> usize {
        self.count(|r| r.path == CREDENTIALS_PATH)
    }

    /// Credential requests whose body named this `credentials_ref`.
    pub fn credential_calls_for(&self, credentials_ref: &str) -> usize {
        self.count(|r| {
            r.path == CREDENTIALS_PATH && r.credentials_ref.as_deref() == Some(credentials_ref)
        })
    }

    fn count(&self, matches: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.inner.shared.requests.count(matches)
    }

    /// Every request since start (or the last [`FakeOrchestrator::reset_counters`]), in
    /// arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.shared.requests.all()
    }

    /// Clears every counter and the request log (not the data nor the knobs): the
    /// counters are counted in the log.
    pub fn reset_counters(&self) {
        self.inner.shared.requests.clear();
    }
}

impl FailPlan {
    fn new(n: usize, status: u16, retry_after_secs: Option<u64>) -> Option<FailPlan> {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("fake orchestrator: invalid HTTP status {status}"));
        (n > 0).then_some(FailPlan {
            remaining: n,
            status,
            retry_after_secs,
        })
    }
}

// -------------------------------------------------------------------- server

enum Route {
    Runtime(RuntimeRequest),
    Credentials(CredentialRequest),
    Unknown,
}

enum RuntimeRequest {
    Post(Result<String, ()>),
    Get(Option<String>),
    OtherMethod,
}

enum CredentialRequest {
    Post {
        tenant: Option<String>,
        credentials_ref: Option<String>,
    },
    OtherMethod,
}

fn header_str(request: &Received, name: &str) -> Option<String> {
    request.header(name).map(str::to_string)
}

fn bearer_token(request: &Received) -> Option<String> {
    let value = request.header(header::AUTHORIZATION)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn body_string_field(body: &Bytes, field: &str) -> Result<String, ()> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ())?;
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(())
}

fn classify(request: &Received) -> Route {
    let Received {
        method, uri, body, ..
    } = request;
    match uri.path() {
        RUNTIME_PATH => Route::Runtime(if *method == Method::POST {
            RuntimeRequest::Post(body_string_field(body, "host"))
        } else if *method == Method::GET {
            let host = Query::<HashMap<String, String>>::try_from_uri(uri)
                .ok()
                .and_then(|Query(q)| q.get("host").cloned());
            RuntimeRequest::Get(host)
        } else {
            RuntimeRequest::OtherMethod
        }),
        CREDENTIALS_PATH => Route::Credentials(if *method == Method::POST {
            CredentialRequest::Post {
                tenant: header_str(request, "x-tenant"),
                credentials_ref: body_string_field(body, "credentials_ref").ok(),
            }
        } else {
            CredentialRequest::OtherMethod
        }),
        _ => Route::Unknown,
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        429 => "rate_limited",
        500 => "internal",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        _ => "error",
    }
}

fn ok_no_store(value: Value) -> Response {
    let mut response = (StatusCode::OK, Json(value)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn serve(State(shared): State<Arc<Shared>>, request: Received) -> Response {
    let route = classify(&request);
    let token = bearer_token(&request);

    // 1. count and record (the counters are counted in the record)
    let mut record = RecordedRequest {
        method: request.method.as_str().to_string(),
        path: request.uri.path().to_string(),
        host: None,
        tenant_header: header_str(&request, "x-tenant"),
        request_id: header_str(&request, "x-request-id"),
        token: token.clone(),
        status: 0,
        credentials_ref: None,
    };
    match &route {
        Route::Runtime(RuntimeRequest::Post(Ok(host)))
        | Route::Runtime(RuntimeRequest::Get(Some(host))) => record.host = Some(host.clone()),
        Route::Credentials(CredentialRequest::Post {
            credentials_ref: Some(r),
            ..
        }) => record.credentials_ref = Some(r.clone()),
        _ => {}
    }
    let ticket = shared.requests.record(record);

    // 2. delay (no lock held)
    let delay = shared.data().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let limited = shared.data().rate_limit.as_mut().map(RateLimit::take);

    let response = match limited {
        Some(Err(wait)) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        _ => respond(&shared, route, token.as_deref()),
    };

    // record the outcome
    let status = response.status().as_u16();
    shared.requests.update(ticket, |r| r.status = status);
    response
}

fn respond(shared: &Shared, route: Route, token: Option<&str>) -> Response {
    let mut d = shared.data();

    // 3. outage
    if d.outage {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }

    // 4. auth
    let accepted = token.is_some_and(|t| t == d.primary || d.secondary.as_deref() == Some(t));
    if !accepted {
        return error(StatusCode::FORBIDDEN, "forbidden");
    }

    // 5. scripted failures
    let plan = match &route {
        Route::Runtime(_) => FailPlan::take(&mut d.fail_runtime),
        Route::Credentials(_) => FailPlan::take(&mut d.fail_credentials),
        Route::Unknown => None,
    };
    if let Some(plan) = plan {
        let mut response = error(plan.status, error_code(plan.status));
        if let Some(secs) = plan.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return response;
    }

    // 6. normal handling
    match route {
        Route::Unknown => error(StatusCode::NOT_FOUND, "not_found"),
        Route::Runtime(RuntimeRequest::OtherMethod) => {
            if d.post_supported {
                method_not_allowed("GET, POST")
            } else {
                method_not_allowed("GET")
            }
        }
        Route::Runtime(RuntimeRequest::Post(_)) if !d.post_supported => method_not_allowed("GET"),
        Route::Runtime(RuntimeRequest::Post(Err(())))
        | Route::Runtime(RuntimeRequest::Get(None)) => {
            error(StatusCode::BAD_REQUEST, "bad_request")
        }
        Route::Runtime(RuntimeRequest::Post(Ok(host)))
        | Route::Runtime(RuntimeRequest::Get(Some(host))) => {
            let host = normalize_host(&host);
            if host.is_empty() {
                return error(StatusCode::BAD_REQUEST, "bad_request");
            }
            match d.runtimes.get(&host) {
                Some(envelope) => ok_no_store(envelope.clone()),
                None => error(StatusCode::NOT_FOUND, "not_found"),
            }
        }
        Route::Credentials(CredentialRequest::OtherMethod) => method_not_allowed("POST"),
        Route::Credentials(CredentialRequest::Post {
            tenant,
            credentials_ref,
        }) => {
            let (Some(tenant), Some(credentials_ref)) = (
                tenant.filter(|t| !t.trim().is_empty()),
                credentials_ref.filter(|r| !r.is_empty()),
            ) else {
                return error(StatusCode::BAD_REQUEST, "bad_request");
            };
            match d.credentials.get(&credentials_ref) {
                Some((owner, payload)) if *owner == tenant => ok_no_store(payload.clone()),
                _ => error(StatusCode::NOT_FOUND, "not_found"),
            }
        }
    }
}

/// The orchestrator's normalization: lower-case; strip trailing dots; strip a trailing
/// `:<digits>` port; strip trailing dots again.
pub fn normalize_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    let mut h = lower.trim_end_matches('.');
    if let Some((name, port)) = h.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            h = name;
        }
    }
    h.trim_end_matches('.').to_string()
}

// -------------------------------------------------------------------- samples

/// The fixtures: (`runtime_v1.json`, `runtime_v2.json`, `credentials.json`).
pub fn samples() -> (Value, Value, Value) {
    let parse = |name: &str, text: &str| -> Value {
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("fixture {name} is not valid JSON: {e}"))
    };
    (
        parse("runtime_v1.json", RUNTIME_V1_JSON),
        parse("runtime_v2.json", RUNTIME_V2_JSON),
        parse("credentials.json", CREDENTIALS_JSON),
    )
}

/// If `s` is a ref of the form `ref-<role>-<old>` with `old` in `olds`, the same ref
/// for `tenant`.
fn rewrite_ref(s: &str, olds: &[String], tenant: &str) -> Option<String> {
    if !s.starts_with("ref-") {
        return None;
    }
    olds.iter().find_map(|old| {
        let stem = s.strip_suffix(old.as_str())?;
        (stem.len() > "ref-".len() && stem.ends_with('-')).then(|| format!("{stem}{tenant}"))
    })
}

fn rewrite_refs_in(value: &mut Value, olds: &[String], tenant: &str) {
    match value {
        Value::String(s) => {
            if let Some(new) = rewrite_ref(s, olds, tenant) {
                *s = new;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_refs_in(v, olds, tenant)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| rewrite_refs_in(v, olds, tenant)),
        _ => {}
    }
}

/// A copy of `base` (a sample envelope) for `tenant`: `tenant` set, and every
/// `ref-<role>-vermont` / `ref-<role>-maple` (or `ref-<role>-<base tenant>`) value
/// rewritten to `ref-<role>-<tenant>`, matching [`credentials_for`]. Everything else
/// (paths, `config_version`, ...) is kept.
pub fn envelope_for(tenant: &str, base: &Value) -> Value {
    let mut olds = vec!["vermont".to_string(), "maple".to_string()];
    if let Some(t) = base.get("tenant").and_then(Value::as_str) {
        if !t.is_empty() && !olds.iter().any(|o| o == t) {
            olds.push(t.to_string());
        }
    }
    let mut envelope = base.clone();
    rewrite_refs_in(&mut envelope, &olds, tenant);
    if let Some(map) = envelope.as_object_mut() {
        map.insert("tenant".to_string(), Value::String(tenant.to_string()));
    }
    envelope
}

/// 64-bit FNV-1a, hex: a stable stand-in for tenant names that do not fit a token.
fn fnv_hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The Telegram bot token for `tenant`, keeping the fixture's shape
/// (`<digits>:<exactly as many [A-Za-z0-9_-] chars as the fixture>`), so the redaction
/// layer's pattern still applies.
fn telegram_token_for(original: &str, tenant: &str) -> String {
    let Some((digits, secret)) = original.split_once(':') else {
        return original.replace("vermont", tenant);
    };
    let fits = tenant.len() + 4 <= secret.len()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let tag = if fits {
        tenant.to_string()
    } else {
        fnv_hex(tenant)
    };
    const FILLER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut new: String = secret.replace("vermont", &tag);
    while new.len() < secret.len() {
        new.push_str(FILLER);
    }
    new.truncate(secret.len());
    format!("{digits}:{new}")
}

/// The credentials of `fixtures/credentials.json` for `tenant`: refs
/// `ref-<role>-<tenant>` and secrets with `vermont` replaced by the tenant name, so each
/// tenant's secrets differ (`credentials_for("vermont")` is the fixture itself). The
/// Telegram token keeps its `<digits>:<35+ chars>` shape. Versions are kept.
pub fn credentials_for(tenant: &str) -> Vec<(String, Value)> {
    let (_, _, credentials) = samples();
    let Value::Object(map) = credentials else {
        panic!("fixture credentials.json is not an object");
    };
    let olds = ["vermont".to_string()];
    let mut out: Vec<(String, Value)> = map
        .into_iter()
        .map(|(credentials_ref, mut payload)| {
            let new_ref = rewrite_ref(&credentials_ref, &olds, tenant)
                .unwrap_or_else(|| credentials_ref.clone());
            if let Some(fields) = payload.as_object_mut() {
                for (key, value) in fields.iter_mut() {
                    let Value::String(s) = value else { continue };
                    match key.as_str() {
                        "bot_token" => *s = telegram_token_for(s, tenant),
                        "refresh_token" | "api_key" | "password" => {
                            *s = s.replace("vermont", tenant)
                        }
                        _ => {}
                    }
                }
            }
            (new_ref, payload)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// -------------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const HOST: &str = "vermont.shibari.photo";

    async fn seeded() -> (FakeOrchestrator, Value) {
        let fake = FakeOrchestrator::start().await;
        let (_, v2, _) = samples();
        let envelope = fake.seed_tenant(HOST, "vermont", &v2);
        (fake, envelope)
    }

    fn runtime_url(fake: &FakeOrchestrator) -> String {
        format!("{}{RUNTIME_PATH}", fake.base_url())
    }

    fn credentials_url(fake: &FakeOrchestrator) -> String {
        format!("{}{CREDENTIALS_PATH}", fake.base_url())
    }

    async fn post_runtime(fake: &FakeOrchestrator, token: &str, host: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(runtime_url(fake))
            .bearer_auth(token)
            .header("X-Request-Id", "req-1")
            .json(&json!({ "host": host }))
            .send()
            .await
            .unwrap()
    }

    async fn get_runtime(fake: &FakeOrchestrator, token: &str, host: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(runtime_url(fake))
            .bearer_auth(token)
            .query(&[("host", host)])
            .send()
            .await
            .unwrap()
    }

    async fn resolve(
        fake: &FakeOrchestrator,
        token: &str,
        tenant: Option<&str>,
        credentials_ref: &str,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(credentials_url(fake))
            .bearer_auth(token)
            .header("X-Request-Id", "req-c")
            .json(&json!({ "credentials_ref": credentials_ref }));
        if let Some(tenant) = tenant {
            request = request.header("X-Tenant", tenant);
        }
        request.send().await.unwrap()
    }

    fn no_store(response: &reqwest::Response) -> bool {
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            == Some("no-store")
    }

    #[tokio::test]
    async fn post_and_get_lookups() {
        let (fake, envelope) = seeded().await;
        assert!(fake.base_url().starts_with("http://127.0.0.1:"));

        let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
        assert_eq!(r.status(), 200);
        assert!(no_store(&r));
        assert_eq!(r.json::<Value>().await.unwrap(), envelope);

        let r = get_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
        assert_eq!(r.status(), 200);
        assert!(no_store(&r));
        assert_eq!(r.json::<Value>().await.unwrap(), envelope);

        // the fake normalizes like the orchestrator, but records the host as sent
        let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, "VerMont.Shibari.Photo:8080.").await;
        assert_eq!(r.status(), 200);
        assert_eq!(fake.runtime_calls_for("VerMont.Shibari.Photo:8080."), 1);

        let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, "nobody.shibari.photo").await;
        assert_eq!(r.status(), 404);
        assert!(!no_store(&r));
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "not_found"})
        );

        fake.remove_runtime(HOST);
        assert_eq!(
            get_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST)
                .await
                .status(),
            404
        );

        let client = reqwest::Client::new();
        let r = client
            .post(runtime_url(&fake))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "bad_request"})
        );
        let r = client
            .get(runtime_url(&fake))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = client
            .put(runtime_url(&fake))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);

        assert_eq!(fake.runtime_calls(), 8);
        assert_eq!(fake.runtime_calls_for(HOST), 3);
        assert_eq!(fake.credential_calls(), 0);
        let requests = fake.requests();
        assert_eq!(requests.len(), 8);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, RUNTIME_PATH);
        assert_eq!(requests[0].host.as_deref(), Some(HOST));
        assert_eq!(requests[0].request_id.as_deref(), Some("req-1"));
        assert_eq!(requests[0].token.as_deref(), Some(DEFAULT_PRIMARY_TOKEN));
        assert_eq!(requests[0].status, 200);
        assert_eq!(requests[1].method, "GET");
        assert_eq!(requests[1].host.as_deref(), Some(HOST));
        assert_eq!(requests[3].status, 404);
        assert_eq!(requests[7].status, 405);

        fake.reset_counters();
        assert_eq!(fake.runtime_calls(), 0);
        assert_eq!(fake.runtime_calls_for(HOST), 0);
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn post_unsupported_answers_405_and_get_still_works() {
        let (fake, envelope) = seeded().await;
        fake.set_post_supported(false);
        let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers().get("allow").unwrap(), "GET");
        let r = get_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), envelope);
        assert_eq!(fake.runtime_calls(), 2);
        assert_eq!(fake.runtime_calls_for(HOST), 2);
    }

    #[tokio::test]
    async fn auth_wrong_token_and_secondary() {
        let (fake, _) = seeded().await;
        let r = post_runtime(&fake, "wrong", HOST).await;
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "forbidden"})
        );
        let r = reqwest::Client::new()
            .post(runtime_url(&fake))
            .json(&json!({ "host": HOST }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        fake.set_tokens("new-primary", Some("old-secondary"));
        assert_eq!(
            post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST)
                .await
                .status(),
            403
        );
        assert_eq!(
            post_runtime(&fake, "old-secondary", HOST).await.status(),
            200
        );
        assert_eq!(post_runtime(&fake, "new-primary", HOST).await.status(), 200);
        assert_eq!(
            resolve(
                &fake,
                "old-secondary",
                Some("vermont"),
                "ref-storage-vermont"
            )
            .await
            .status(),
            200
        );
        assert_eq!(
            resolve(&fake, "nope", Some("vermont"), "ref-storage-vermont")
                .await
                .status(),
            403
        );

        let tokens: Vec<_> = fake.requests().into_iter().map(|r| r.token).collect();
        assert_eq!(
            tokens,
            vec![
                Some("wrong".to_string()),
                None,
                Some(DEFAULT_PRIMARY_TOKEN.to_string()),
                Some("old-secondary".to_string()),
                Some("new-primary".to_string()),
                Some("old-secondary".to_string()),
                Some("nope".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn fail_next_with_retry_after_then_recovers() {
        let (fake, envelope) = seeded().await;
        fake.fail_next_runtime(2, 429, Some(3));
        // a 403 does not consume the plan (auth comes first)
        assert_eq!(post_runtime(&fake, "wrong", HOST).await.status(), 403);
        for _ in 0..2 {
            let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
            assert_eq!(r.status(), 429);
            assert_eq!(r.headers().get("retry-after").unwrap(), "3");
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                json!({"error": "rate_limited"})
            );
        }
        let r = post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), envelope);

        fake.fail_next_credentials(1, 503, None);
        let r = resolve(
            &fake,
            DEFAULT_PRIMARY_TOKEN,
            Some("vermont"),
            "ref-storage-vermont",
        )
        .await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("retry-after").is_none());
        // runtime calls are not affected by the credential plan
        assert_eq!(
            post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST)
                .await
                .status(),
            200
        );
        assert_eq!(
            resolve(
                &fake,
                DEFAULT_PRIMARY_TOKEN,
                Some("vermont"),
                "ref-storage-vermont"
            )
            .await
            .status(),
            200
        );
        assert_eq!(fake.runtime_calls(), 5);
        assert_eq!(fake.credential_calls(), 2);
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![403, 429, 429, 200, 503, 200, 200]);
    }

    #[tokio::test]
    async fn credentials_resolution_and_tenant_isolation() {
        let (fake, _) = seeded().await;
        let (_, _, fixture) = samples();
        let r = resolve(
            &fake,
            DEFAULT_PRIMARY_TOKEN,
            Some("vermont"),
            "ref-storage-vermont",
        )
        .await;
        assert_eq!(r.status(), 200);
        assert!(no_store(&r));
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            fixture["ref-storage-vermont"]
        );

        // another tenant asking for vermont's ref: privacy-preserving 404
        fake.seed_tenant("acme.shibari.photo", "acme", &samples().1);
        let r = resolve(
            &fake,
            DEFAULT_PRIMARY_TOKEN,
            Some("acme"),
            "ref-storage-vermont",
        )
        .await;
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "not_found"})
        );
        let r = resolve(
            &fake,
            DEFAULT_PRIMARY_TOKEN,
            Some("acme"),
            "ref-storage-acme",
        )
        .await;
        assert_eq!(r.status(), 200);
        let acme: Value = r.json().await.unwrap();
        assert_ne!(acme, fixture["ref-storage-vermont"]);
        assert!(acme["refresh_token"].as_str().unwrap().contains("acme"));

        // missing X-Tenant, malformed body, unknown ref, wrong method
        assert_eq!(
            resolve(&fake, DEFAULT_PRIMARY_TOKEN, None, "ref-storage-vermont")
                .await
                .status(),
            400
        );
        let r = reqwest::Client::new()
            .post(credentials_url(&fake))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .header("X-Tenant", "vermont")
            .json(&json!({ "ref": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            resolve(&fake, DEFAULT_PRIMARY_TOKEN, Some("vermont"), "ref-nope")
                .await
                .status(),
            404
        );
        fake.remove_credential("ref-openai-vermont");
        assert_eq!(
            resolve(
                &fake,
                DEFAULT_PRIMARY_TOKEN,
                Some("vermont"),
                "ref-openai-vermont"
            )
            .await
            .status(),
            404
        );
        let r = reqwest::Client::new()
            .get(credentials_url(&fake))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);

        assert_eq!(fake.credential_calls(), 8);
        assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 3);
        assert_eq!(fake.credential_calls_for("ref-storage-acme"), 1);
        assert_eq!(fake.runtime_calls(), 0);
        let requests = fake.requests();
        assert_eq!(requests[1].tenant_header.as_deref(), Some("acme"));
        assert_eq!(
            requests[1].credentials_ref.as_deref(),
            Some("ref-storage-vermont")
        );
        assert_eq!(requests[1].request_id.as_deref(), Some("req-c"));
        assert_eq!(requests[1].status, 404);
    }

    #[tokio::test]
    async fn outage_delay_and_unknown_paths() {
        let (fake, _) = seeded().await;
        fake.set_outage(true);
        // outage comes before auth
        let r = post_runtime(&fake, "wrong", HOST).await;
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "unavailable"})
        );
        assert_eq!(
            resolve(
                &fake,
                DEFAULT_PRIMARY_TOKEN,
                Some("vermont"),
                "ref-storage-vermont"
            )
            .await
            .status(),
            503
        );
        fake.set_outage(false);

        fake.set_delay(Duration::from_millis(150));
        let started = Instant::now();
        assert_eq!(
            post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST)
                .await
                .status(),
            200
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        fake.set_delay(Duration::ZERO);

        let r = reqwest::Client::new()
            .get(format!("{}/v1/other", fake.base_url()))
            .bearer_auth(DEFAULT_PRIMARY_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(fake.runtime_calls(), 2);
        assert_eq!(fake.credential_calls(), 1);
        assert_eq!(fake.requests().len(), 4);
    }

    #[tokio::test]
    async fn shutdown_and_drop_stop_the_server() {
        let (fake, _) = seeded().await;
        let url = fake.base_url();
        assert_eq!(
            post_runtime(&fake, DEFAULT_PRIMARY_TOKEN, HOST)
                .await
                .status(),
            200
        );
        fake.shutdown_and_wait().await;
        assert!(reqwest::Client::new().get(&url).send().await.is_err());

        let fake = FakeOrchestrator::start().await;
        let url = fake.base_url();
        let clone = fake.clone();
        drop(fake);
        // still served through the clone
        assert_eq!(
            reqwest::Client::new()
                .get(&url)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        drop(clone);
        let mut stopped = false;
        for _ in 0..100 {
            if reqwest::Client::new().get(&url).send().await.is_err() {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            stopped,
            "server still answering after the last handle dropped"
        );
    }

    #[test]
    fn sample_helpers() {
        let (v1, v2, fixture) = samples();
        assert_eq!(v1["tenant"], "maple");
        assert_eq!(v2["tenant"], "vermont");

        // vermont reproduces the fixture exactly
        let vermont: serde_json::Map<String, Value> =
            credentials_for("vermont").into_iter().collect();
        assert_eq!(Value::Object(vermont), fixture);

        let acme = envelope_for("acme", &v2);
        assert_eq!(acme["tenant"], "acme");
        let text = acme.to_string();
        assert!(!text.contains("-vermont\""), "{text}");
        assert_eq!(
            acme["config"]["storage"]["credentials_ref"],
            "ref-storage-acme"
        );
        assert_eq!(
            acme["config"]["publishers"][0]["credentials_ref"],
            "ref-telegram-acme"
        );
        assert_eq!(
            acme["config"]["email_server"]["password_ref"],
            "ref-smtp-acme"
        );
        assert_eq!(acme["config"]["ai"]["credentials_ref"], "ref-openai-acme");
        assert_eq!(acme["config_version"], v2["config_version"]);
        let maple_like = envelope_for("birch", &v1);
        assert_eq!(
            maple_like["config"]["storage"]["credentials_ref"],
            "ref-storage-birch"
        );

        let original_bot = fixture["ref-telegram-vermont"]["bot_token"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, original_secret) = original_bot.split_once(':').unwrap();
        let mut seen = std::collections::HashSet::new();
        let long = "x".repeat(60);
        for tenant in ["a", "acme", "tenant-0042", long.as_str()] {
            let creds = credentials_for(tenant);
            let refs: Vec<&str> = creds.iter().map(|(r, _)| r.as_str()).collect();
            assert_eq!(
                refs,
                vec![
                    format!("ref-openai-{tenant}"),
                    format!("ref-smtp-{tenant}"),
                    format!("ref-storage-{tenant}"),
                    format!("ref-telegram-{tenant}"),
                ]
            );
            for (_, payload) in &creds {
                for key in ["refresh_token", "api_key", "bot_token", "password"] {
                    if let Some(secret) = payload.get(key).and_then(Value::as_str) {
                        assert!(seen.insert(secret.to_string()), "duplicate {secret}");
                        assert!(!secret.contains("vermont"));
                    }
                }
            }
            let bot = creds[3].1["bot_token"].as_str().unwrap();
            let (digits, secret) = bot.split_once(':').unwrap();
            assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(secret.len(), original_secret.len(), "{bot}");
            assert!(secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert!(creds[0].1["api_key"].as_str().unwrap().starts_with("sk-"));
        }
    }

    #[test]
    fn host_normalization() {
        assert_eq!(
            normalize_host("TeNaNt.Shibari.Photo:8080."),
            "tenant.shibari.photo"
        );
        assert_eq!(normalize_host("a.b..:443"), "a.b");
        assert_eq!(normalize_host("a.b:"), "a.b:");
    }
}
