//! A fake of the Dropbox API v2 over real HTTP, for the storage client.
//!
//! Two listeners on 127.0.0.1, like Dropbox's two hosts:
//!
//! - API ([`FakeDropbox::api_url`]): `POST /oauth2/token` (form) and the RPC
//!   routes `POST /2/files/{list_folder, list_folder/continue, get_metadata,
//!   get_temporary_link, create_folder_v2, move_v2}` with JSON bodies;
//! - content ([`FakeDropbox::content_url`]): `POST /2/files/{download, upload,
//!   get_thumbnail_v2}` with the argument in the `Dropbox-API-Arg` header
//!   (which must be ASCII, as Dropbox requires), and `GET /temp/<token>`, the
//!   temporary links.
//!
//! Each request is counted and recorded, then: a scripted failure
//! ([`FakeDropbox::fail_next`]: 429 with `Retry-After`, 400, 5xx), then the
//! bearer token (401 `expired_access_token` / `invalid_access_token`), then
//! the route. Route errors are 409 `{"error_summary", "error"}` as Dropbox
//! sends them (`path/not_found/..`, `from_lookup/not_found/..`,
//! `path/conflict/folder/..`, ...).
//!
//! Files live in memory, case-insensitively like Dropbox's; their
//! `content_hash` is Dropbox's; thumbnails are real JPEGs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use publisher::storage::{content_hash, thumbnail, ThumbnailSize};
use serde_json::{json, Value};

use crate::fake_server::{lock, FakeServer, Received, Recorder};

/// The app key and secret the fake accepts at `/oauth2/token`.
pub const APP_KEY: &str = "fake-dropbox-app-key";
pub const APP_SECRET: &str = "fake-dropbox-app-secret-0123456789";
/// A refresh token accepted from the start.
pub const REFRESH_TOKEN: &str = "dbx-refresh-fake-0123456789";

/// One `/2/` or `/oauth2/token` request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// `files/list_folder`, `oauth2/token`, ...
    pub route: String,
    /// The `Dropbox-API-Arg` header as sent (content routes), else the body.
    pub arg: String,
    /// The bearer token presented, if any.
    pub token: Option<String>,
    pub status: u16,
}

/// Handle on a running fake; cheap to clone. The server stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeDropbox {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    api: FakeServer,
    content: FakeServer,
}

struct Shared {
    data: Mutex<Data>,
    seq: AtomicU64,
    content_url: String,
    log: Recorder<RecordedCall>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Clone)]
struct Node {
    path_display: String,
    id: String,
    /// `None` for a folder.
    file: Option<FileData>,
}

#[derive(Clone)]
struct FileData {
    bytes: Bytes,
    rev: String,
}

struct Issued {
    expires: Instant,
    expired: bool,
}

struct Failure {
    remaining: usize,
    status: StatusCode,
    retry_after: Option<u64>,
}

struct Data {
    /// Lower-cased path → node; the root `""` is implicit.
    tree: BTreeMap<String, Node>,
    refresh_tokens: Vec<String>,
    tokens: HashMap<String, Issued>,
    expires_in: u64,
    page_size: usize,
    cursors: HashMap<String, Vec<Value>>,
    links: HashMap<String, Bytes>,
    failure: Option<Failure>,
}

impl FakeDropbox {
    /// Binds two ports on 127.0.0.1 and serves on the current tokio runtime.
    pub async fn start() -> FakeDropbox {
        let api = FakeServer::bind("fake dropbox api").await;
        let content = FakeServer::bind("fake dropbox content").await;
        let shared = Arc::new(Shared {
            data: Mutex::new(Data {
                tree: BTreeMap::new(),
                refresh_tokens: vec![REFRESH_TOKEN.to_string()],
                tokens: HashMap::new(),
                expires_in: 14_400,
                page_size: 2000,
                cursors: HashMap::new(),
                links: HashMap::new(),
                failure: None,
            }),
            seq: AtomicU64::new(0),
            content_url: content.url(),
            log: Recorder::default(),
        });
        let api = api.serve(Router::new().fallback(api_route).with_state(shared.clone()));
        let content = content.serve(
            Router::new()
                .fallback(content_route)
                .with_state(shared.clone()),
        );
        FakeDropbox {
            inner: Arc::new(Handle {
                shared,
                api,
                content,
            }),
        }
    }

    /// `DROPBOX_API_URL`.
    pub fn api_url(&self) -> String {
        self.inner.api.url()
    }

    /// `DROPBOX_CONTENT_URL`.
    pub fn content_url(&self) -> String {
        self.inner.content.url()
    }

    /// The settings that point the functions at this fake.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DROPBOX_API_URL", self.api_url()),
            ("DROPBOX_CONTENT_URL", self.content_url()),
            ("DROPBOX_APP_KEY", APP_KEY.to_string()),
            ("DROPBOX_APP_SECRET", APP_SECRET.to_string()),
        ]
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.inner.shared.data()
    }

    // ------------------------------------------------------------ files

    /// Stores a file (and its missing parent folders), replacing any file there.
    pub fn put_file(&self, path: &str, bytes: impl Into<Bytes>) {
        let shared = &self.inner.shared;
        shared
            .data()
            .put_file(path, bytes.into(), || shared.next())
            .unwrap_or_else(|e| panic!("fake dropbox: put_file {path}: {e}"));
    }

    /// Creates a folder and its parents.
    pub fn put_folder(&self, path: &str) {
        let shared = &self.inner.shared;
        let mut data = shared.data();
        data.ensure_folders(path, || shared.next())
            .unwrap_or_else(|e| panic!("fake dropbox: put_folder {path}: {e}"));
    }

    /// The bytes of the file at `path`, if there is one.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        let data = self.data();
        data.tree
            .get(&key(path))
            .and_then(|n| n.file.as_ref())
            .map(|f| f.bytes.clone())
    }

    /// Whether a file or folder exists at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.data().tree.contains_key(&key(path))
    }

    /// The names of the files and folders directly in `folder`, sorted.
    pub fn names_in(&self, folder: &str) -> Vec<String> {
        let data = self.data();
        let mut names: Vec<String> = data
            .children(&key(folder))
            .map(|n| name_of(&n.path_display).to_string())
            .collect();
        names.sort();
        names
    }

    // ------------------------------------------------------------ knobs

    /// Accept `token` as a refresh token from now on.
    pub fn add_refresh_token(&self, token: &str) {
        self.data().refresh_tokens.push(token.to_string());
    }

    /// Refuse `token` from now on (`invalid_grant`).
    pub fn revoke_refresh_token(&self, token: &str) {
        self.data().refresh_tokens.retain(|t| t != token);
    }

    /// Lifetime of the access tokens issued from now on (default 4 hours).
    pub fn set_expires_in(&self, seconds: u64) {
        self.data().expires_in = seconds;
    }

    /// Every access token issued so far answers 401 `expired_access_token`.
    pub fn expire_access_tokens(&self) {
        for issued in self.data().tokens.values_mut() {
            issued.expired = true;
        }
    }

    /// Most entries per `list_folder` page (default 2000, Dropbox's largest).
    pub fn set_page_size(&self, entries: usize) {
        self.data().page_size = entries.max(1);
    }

    /// The next `n` calls (`/2/` and `/oauth2/token`) answer `status`: 429
    /// with Dropbox's `too_many_requests` body, 400 with a text that quotes
    /// the `Authorization` header as Dropbox's do, else a plain-text server
    /// error; with `Retry-After: <secs>` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let status = StatusCode::from_u16(status).expect("fake dropbox: valid status");
        self.data().failure = (n > 0).then_some(Failure {
            remaining: n,
            status,
            retry_after,
        });
    }

    // ------------------------------------------------------------ observation

    /// Requests to `route` (`files/list_folder`, `oauth2/token`, ...), all outcomes.
    pub fn calls(&self, route: &str) -> usize {
        self.inner.shared.log.count(|call| call.route == route)
    }

    /// Requests to every `/2/` route (not the token endpoint nor temporary links).
    pub fn api_calls(&self) -> usize {
        self.inner
            .shared
            .log
            .count(|call| call.route.starts_with("files/"))
    }

    /// Every request since start or [`FakeDropbox::reset_counters`], in order.
    pub fn requests(&self) -> Vec<RecordedCall> {
        self.inner.shared.log.all()
    }

    /// Clears counters and the request log (not the files nor the knobs): the
    /// counters are counted in the log.
    pub fn reset_counters(&self) {
        self.inner.shared.log.clear();
    }
}

// ---------------------------------------------------------------- tree

/// Dropbox paths are case-insensitive: nodes are keyed by the lower-cased
/// path without a trailing slash (the root is `""`).
fn key(path: &str) -> String {
    path.trim_end_matches('/').to_lowercase()
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

fn parent_key(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn valid_path(path: &str) -> bool {
    path.starts_with('/') && !path.ends_with('/') && !path.split('/').skip(1).any(str::is_empty)
}

impl Data {
    fn children<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.tree
            .iter()
            .filter(move |(k, _)| parent_key(k) == folder && !k.is_empty())
            .map(|(_, n)| n)
    }

    fn is_folder(&self, key: &str) -> bool {
        key.is_empty() || self.tree.get(key).is_some_and(|n| n.file.is_none())
    }

    /// Creates the folders of `path` that are missing; `Err` names the
    /// first ancestor that is a file.
    fn ensure_folders(&mut self, path: &str, mut id: impl FnMut() -> u64) -> Result<(), String> {
        let mut display = String::new();
        for segment in path.trim_end_matches('/').split('/').skip(1) {
            display = format!("{display}/{segment}");
            let k = key(&display);
            match self.tree.get(&k) {
                Some(node) if node.file.is_some() => return Err("path/conflict/file".into()),
                Some(_) => {}
                None => {
                    self.tree.insert(
                        k,
                        Node {
                            path_display: display.clone(),
                            id: format!("id:fake{:08}", id()),
                            file: None,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Stores a file; an existing file keeps its id and gets a new rev.
    fn put_file(
        &mut self,
        path: &str,
        bytes: Bytes,
        mut next: impl FnMut() -> u64,
    ) -> Result<Node, String> {
        if !valid_path(path) {
            return Err("path/malformed_path".into());
        }
        let k = key(path);
        if self.tree.get(&k).is_some_and(|n| n.file.is_none()) {
            return Err("path/conflict/folder".into());
        }
        let parent = &path[..path.rfind('/').unwrap_or(0)];
        self.ensure_folders(parent, &mut next)?;
        let rev = next();
        let id = match self.tree.get(&k) {
            Some(node) => node.id.clone(),
            None => format!("id:fake{:08}", next()),
        };
        let node = Node {
            path_display: path.to_string(),
            id,
            file: Some(FileData {
                bytes,
                rev: format!("{rev:012x}"),
            }),
        };
        self.tree.insert(k, node.clone());
        Ok(node)
    }
}

/// Dropbox's JSON metadata of a node (`tagged`: with `.tag`, as in listings).
fn metadata(node: &Node, tagged: bool) -> Value {
    let mut value = json!({
        "name": name_of(&node.path_display),
        "path_lower": node.path_display.to_lowercase(),
        "path_display": node.path_display,
        "id": node.id,
    });
    if let Some(file) = &node.file {
        value["rev"] = json!(file.rev);
        value["size"] = json!(file.bytes.len());
        value["content_hash"] = json!(content_hash(&file.bytes));
        value["client_modified"] = json!("2025-01-01T00:00:00Z");
        value["server_modified"] = json!("2025-01-01T00:00:00Z");
        value["is_downloadable"] = json!(true);
    }
    if tagged {
        value[".tag"] = json!(if node.file.is_some() {
            "file"
        } else {
            "folder"
        });
    }
    value
}

// ---------------------------------------------------------------- answers

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A route error: 409 with `error_summary` (`<field>/<reason>/..`) and `error`.
fn route_error(summary: &str) -> Response {
    let mut parts = summary.split('/').filter(|p| !p.is_empty());
    let error = match (parts.next(), parts.next(), parts.next()) {
        (Some(field), Some(reason), Some(detail)) => {
            json!({".tag": field, field: {".tag": reason, reason: {".tag": detail}}})
        }
        (Some(field), Some(reason), None) => json!({".tag": field, field: {".tag": reason}}),
        (Some(field), None, _) => json!({".tag": field}),
        _ => json!({}),
    };
    json_response(
        StatusCode::CONFLICT,
        json!({"error_summary": format!("{summary}/.."), "error": error}),
    )
}

fn bad_request(route: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Error in call to API function \"{route}\": {message}"),
    )
        .into_response()
}

fn unauthorized(tag: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"error_summary": format!("{tag}/.."), "error": {".tag": tag}}),
    )
}

// ---------------------------------------------------------------- server

struct Incoming {
    route: String,
    /// The argument, or why the request is malformed (a 400).
    arg: Result<Value, String>,
    body: Bytes,
    token: Option<String>,
}

async fn api_route(State(shared): State<Arc<Shared>>, request: Received) -> Response {
    let path = request.uri.path();
    if path == "/oauth2/token" {
        let response = if request.method == Method::POST {
            scripted_failure(&shared, "oauth2/token", None)
                .unwrap_or_else(|| token_endpoint(&shared, &request.body))
        } else {
            StatusCode::METHOD_NOT_ALLOWED.into_response()
        };
        record(&shared, "oauth2/token", "", None, &response);
        return response;
    }
    let Some(route) = path.strip_prefix("/2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = request.header(header::CONTENT_TYPE).unwrap_or_default();
    let arg = if !content_type.starts_with("application/json") {
        Err("Bad HTTP \"Content-Type\" header; expecting \"application/json\"".to_string())
    } else {
        serde_json::from_slice(&request.body)
            .map_err(|_| "request body: could not decode input as JSON".to_string())
    };
    let incoming = Incoming {
        route: route.to_string(),
        arg,
        body: Bytes::new(),
        token: bearer(&request.headers),
    };
    let raw = String::from_utf8_lossy(&request.body).into_owned();
    serve(&shared, request.method, incoming, raw, true)
}

async fn content_route(State(shared): State<Arc<Shared>>, request: Received) -> Response {
    let path = request.uri.path();
    if let Some(link) = path.strip_prefix("/temp/") {
        let bytes = shared.data().links.get(link).cloned();
        let response = match bytes {
            Some(bytes) if request.method == Method::GET => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            Some(_) => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
        record(&shared, "temp", "", None, &response);
        return response;
    }
    let Some(route) = path.strip_prefix("/2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Dropbox accepts only ASCII in the header: non-ASCII must come as \uXXXX.
    let raw = request
        .headers
        .get("Dropbox-API-Arg")
        .map(|v| v.as_bytes().to_vec());
    let arg = match &raw {
        None => Err("Must provide HTTP header \"Dropbox-API-Arg\"".to_string()),
        Some(bytes) if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) => {
            Err("HTTP header \"Dropbox-API-Arg\" must be ASCII (escape as \\uXXXX)".to_string())
        }
        Some(bytes) => serde_json::from_slice(bytes).map_err(|_| {
            "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON".to_string()
        }),
    };
    let upload_type = request.header(header::CONTENT_TYPE) == Some("application/octet-stream");
    let incoming = Incoming {
        route: route.to_string(),
        arg,
        body: request.body,
        token: bearer(&request.headers),
    };
    let raw = raw
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if incoming.route == "files/upload" && !upload_type {
        let response = bad_request(
            route,
            "Bad HTTP \"Content-Type\" header; expecting \"application/octet-stream\"",
        );
        record(
            &shared,
            &incoming.route,
            &raw,
            incoming.token.as_deref(),
            &response,
        );
        return response;
    }
    serve(&shared, request.method, incoming, raw, false)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn record(shared: &Shared, route: &str, arg: &str, token: Option<&str>, response: &Response) {
    shared.log.record(RecordedCall {
        route: route.to_string(),
        arg: arg.to_string(),
        token: token.map(str::to_owned),
        status: response.status().as_u16(),
    });
}

fn serve(shared: &Shared, method: Method, incoming: Incoming, raw: String, rpc: bool) -> Response {
    let response = answer(shared, method, &incoming, rpc);
    record(
        shared,
        &incoming.route,
        &raw,
        incoming.token.as_deref(),
        &response,
    );
    response
}

fn answer(shared: &Shared, method: Method, incoming: &Incoming, rpc: bool) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if let Some(response) = scripted_failure(shared, &incoming.route, incoming.token.as_deref()) {
        return response;
    }
    match &incoming.token {
        None => {
            return bad_request(
                &incoming.route,
                "Must provide HTTP header \"Authorization\"",
            )
        }
        Some(token) => {
            let data = shared.data();
            match data.tokens.get(token) {
                None => return unauthorized("invalid_access_token"),
                Some(t) if t.expired || t.expires <= Instant::now() => {
                    return unauthorized("expired_access_token")
                }
                Some(_) => {}
            }
        }
    }
    let arg = match &incoming.arg {
        Ok(arg) => arg,
        Err(message) => return bad_request(&incoming.route, message),
    };
    let route = incoming.route.as_str();
    match (rpc, route) {
        (true, "files/list_folder") => list_folder(shared, arg),
        (true, "files/list_folder/continue") => list_continue(shared, arg),
        (true, "files/get_metadata") => get_metadata(shared, arg),
        (true, "files/get_temporary_link") => temporary_link(shared, arg),
        (true, "files/create_folder_v2") => create_folder(shared, arg),
        (true, "files/move_v2") => move_file(shared, arg),
        (false, "files/download") => download(shared, arg),
        (false, "files/upload") => upload(shared, arg, incoming.body.clone()),
        (false, "files/get_thumbnail_v2") => get_thumbnail(shared, arg),
        _ => bad_request(route, "Unknown API function"),
    }
}

fn scripted_failure(shared: &Shared, route: &str, token: Option<&str>) -> Option<Response> {
    let mut data = shared.data();
    let failure = data.failure.as_mut()?;
    failure.remaining -= 1;
    let (status, retry_after) = (failure.status, failure.retry_after);
    if failure.remaining == 0 {
        data.failure = None;
    }
    let mut response = if status == StatusCode::TOO_MANY_REQUESTS {
        json_response(
            status,
            json!({"error_summary": "too_many_requests/..",
                   "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after.unwrap_or(1)}}),
        )
    } else if status == StatusCode::BAD_REQUEST {
        // Dropbox's 400s are text, and some quote the header they refuse.
        bad_request(
            route,
            &format!(
                "Invalid authorization value in HTTP header \"Authorization\": \"Bearer {}\"",
                token.unwrap_or_default()
            ),
        )
    } else {
        (status, "Internal Server Error").into_response()
    };
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&seconds.to_string()).expect("digits"),
        );
    }
    Some(response)
}

fn token_endpoint(shared: &Shared, body: &[u8]) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        json_response(
            status,
            json!({"error": error, "error_description": description}),
        )
    };
    if field("grant_type") != "refresh_token" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be refresh_token",
        );
    }
    if field("client_id") != APP_KEY || field("client_secret") != APP_SECRET {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Invalid client_id or client_secret",
        );
    }
    let n = shared.next();
    let mut data = shared.data();
    if !data
        .refresh_tokens
        .iter()
        .any(|t| t == field("refresh_token"))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token is invalid or revoked",
        );
    }
    let token = format!("dbx-access-{n}-{:016x}", rand_bits(n));
    let expires_in = data.expires_in;
    data.tokens.insert(
        token.clone(),
        Issued {
            expires: Instant::now() + Duration::from_secs(expires_in),
            expired: false,
        },
    );
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}),
    )
}

/// Unpredictable enough for test tokens, without a random-number crate.
fn rand_bits(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(n);
    hasher.finish()
}

fn str_arg<'a>(arg: &'a Value, name: &str) -> Option<&'a str> {
    arg.get(name).and_then(Value::as_str)
}

/// A union member given as `"jpeg"` or `{".tag": "jpeg"}`.
fn tag_arg<'a>(arg: &'a Value, name: &str) -> Option<&'a str> {
    let value = arg.get(name)?;
    value
        .as_str()
        .or_else(|| value.get(".tag").and_then(Value::as_str))
}

/// The node named by `arg[field]`, or the error summary.
fn lookup<'a>(data: &'a Data, arg: &Value, field: &str) -> Result<&'a Node, String> {
    let path = str_arg(arg, field).unwrap_or_default();
    if !valid_path(path) {
        return Err(format!("{}/malformed_path", field_name(field)));
    }
    data.tree
        .get(&key(path))
        .ok_or_else(|| format!("{}/not_found", field_name(field)))
}

fn field_name(field: &str) -> &'static str {
    match field {
        "from_path" => "from_lookup",
        _ => "path",
    }
}

fn list_folder(shared: &Shared, arg: &Value) -> Response {
    let path = str_arg(arg, "path").unwrap_or("/");
    if !path.is_empty() && !valid_path(path) {
        return route_error("path/malformed_path");
    }
    let limit = arg.get("limit").and_then(Value::as_u64).unwrap_or(2000) as usize;
    let mut data = shared.data();
    let k = key(path);
    if !data.tree.contains_key(&k) && !k.is_empty() {
        return route_error("path/not_found");
    }
    if !data.is_folder(&k) {
        return route_error("path/not_folder");
    }
    let entries: Vec<Value> = data.children(&k).map(|n| metadata(n, true)).collect();
    let page = limit.min(data.page_size).max(1);
    page_of(shared, &mut data, entries, page)
}

fn page_of(shared: &Shared, data: &mut Data, mut entries: Vec<Value>, page: usize) -> Response {
    let rest = entries.split_off(page.min(entries.len()));
    let cursor = format!("cursor-{}", shared.next());
    let has_more = !rest.is_empty();
    data.cursors.insert(cursor.clone(), rest);
    json_response(
        StatusCode::OK,
        json!({"entries": entries, "cursor": cursor, "has_more": has_more}),
    )
}

fn list_continue(shared: &Shared, arg: &Value) -> Response {
    let mut data = shared.data();
    let cursor = str_arg(arg, "cursor").unwrap_or_default();
    let Some(rest) = data.cursors.remove(cursor) else {
        return route_error("reset");
    };
    let page = data.page_size;
    page_of(shared, &mut data, rest, page)
}

fn get_metadata(shared: &Shared, arg: &Value) -> Response {
    let data = shared.data();
    match lookup(&data, arg, "path") {
        Ok(node) => json_response(StatusCode::OK, metadata(node, true)),
        Err(summary) => route_error(&summary),
    }
}

fn temporary_link(shared: &Shared, arg: &Value) -> Response {
    let n = shared.next();
    let mut data = shared.data();
    let node = match lookup(&data, arg, "path") {
        Ok(node) => node.clone(),
        Err(summary) => return route_error(&summary),
    };
    let Some(file) = &node.file else {
        return route_error("path/not_file");
    };
    let token = format!("{n}-{:016x}", rand_bits(n));
    data.links.insert(token.clone(), file.bytes.clone());
    json_response(
        StatusCode::OK,
        json!({"metadata": metadata(&node, false), "link": format!("{}/temp/{token}", shared.content_url)}),
    )
}

fn create_folder(shared: &Shared, arg: &Value) -> Response {
    let path = str_arg(arg, "path").unwrap_or_default();
    if !valid_path(path) {
        return route_error("path/malformed_path");
    }
    let mut data = shared.data();
    if let Some(node) = data.tree.get(&key(path)) {
        let what = if node.file.is_some() {
            "file"
        } else {
            "folder"
        };
        return route_error(&format!("path/conflict/{what}"));
    }
    if let Err(summary) = data.ensure_folders(path, || shared.next()) {
        return route_error(&summary);
    }
    let node = data.tree.get(&key(path)).cloned().expect("just created");
    json_response(StatusCode::OK, json!({"metadata": metadata(&node, false)}))
}

fn move_file(shared: &Shared, arg: &Value) -> Response {
    let mut data = shared.data();
    let from = match lookup(&data, arg, "from_path") {
        Ok(node) => node.clone(),
        Err(summary) => return route_error(&summary),
    };
    let Some(to) = str_arg(arg, "to_path").filter(|p| valid_path(p)) else {
        return route_error("to/malformed_path");
    };
    let autorename = arg
        .get("autorename")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (folder, name) = to.rsplit_once('/').unwrap_or(("", to));
    let mut target = None;
    for n in 0..10_000 {
        let candidate = format!("{folder}/{}", publisher::storage::renamed(name, n));
        if !data.tree.contains_key(&key(&candidate)) {
            target = Some(candidate);
            break;
        }
        if !autorename {
            return route_error("to/conflict/file");
        }
    }
    let Some(target) = target else {
        return route_error("too_many_files");
    };
    if let Err(summary) = data.ensure_folders(folder, || shared.next()) {
        return route_error(&format!("to/{}", summary.trim_start_matches("path/")));
    }
    // Move the node and, for a folder, everything under it.
    let from_key = key(&from.path_display);
    let moved: Vec<String> = data
        .tree
        .keys()
        .filter(|k| **k == from_key || k.starts_with(&format!("{from_key}/")))
        .cloned()
        .collect();
    for old in moved {
        let mut node = data.tree.remove(&old).expect("listed");
        node.path_display = format!("{target}{}", &node.path_display[from.path_display.len()..]);
        data.tree.insert(key(&node.path_display), node);
    }
    let node = data.tree.get(&key(&target)).cloned().expect("moved");
    json_response(StatusCode::OK, json!({"metadata": metadata(&node, true)}))
}

fn file_of(data: &Data, arg: &Value) -> Result<(Node, Bytes), String> {
    let node = lookup(data, arg, "path")?;
    match &node.file {
        Some(file) => Ok((node.clone(), file.bytes.clone())),
        None => Err("path/not_file".into()),
    }
}

/// Content answers carry their metadata in `Dropbox-API-Result`, ASCII only.
fn content_answer(node: &Node, body: Bytes) -> Response {
    let result = publisher::storage::dropbox::api_arg(&metadata(node, false));
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&result) {
        response.headers_mut().insert("Dropbox-API-Result", value);
    }
    response
}

fn download(shared: &Shared, arg: &Value) -> Response {
    let data = shared.data();
    match file_of(&data, arg) {
        Ok((node, bytes)) => content_answer(&node, bytes),
        Err(summary) => route_error(&summary),
    }
}

fn upload(shared: &Shared, arg: &Value, body: Bytes) -> Response {
    let path = str_arg(arg, "path").unwrap_or_default().to_string();
    let mode = tag_arg(arg, "mode").unwrap_or("add");
    let mut data = shared.data();
    if mode != "overwrite" && data.tree.get(&key(&path)).is_some_and(|n| n.file.is_some()) {
        return route_error("path/conflict/file");
    }
    match data.put_file(&path, body, || shared.next()) {
        Ok(node) => json_response(StatusCode::OK, metadata(&node, false)),
        Err(summary) => route_error(&summary),
    }
}

fn get_thumbnail(shared: &Shared, arg: &Value) -> Response {
    let resource = arg.get("resource").cloned().unwrap_or(Value::Null);
    if tag_arg(arg, "resource").is_some_and(|t| t != "path") {
        return route_error("path/unsupported_resource");
    }
    let Some(size) = tag_arg(arg, "size").and_then(ThumbnailSize::parse) else {
        return bad_request("files/get_thumbnail_v2", "unknown size");
    };
    if tag_arg(arg, "format").is_some_and(|f| f != "jpeg")
        || tag_arg(arg, "mode").is_some_and(|m| m != "fitone_bestfit")
    {
        return bad_request(
            "files/get_thumbnail_v2",
            "this fake makes jpeg fitone_bestfit thumbnails only",
        );
    }
    let (node, bytes) = {
        let data = shared.data();
        match file_of(&data, &resource) {
            Ok(found) => found,
            Err(summary) => return route_error(&summary),
        }
    };
    if !publisher::storage::is_image_name(name_of(&node.path_display)) {
        return route_error("unsupported_extension");
    }
    match thumbnail::jpeg_thumbnail(&bytes, size) {
        Ok(jpeg) => content_answer(&node, Bytes::from(jpeg)),
        Err(_) => route_error("unsupported_image"),
    }
}
