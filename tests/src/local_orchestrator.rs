//! The local orchestrator (`local-orchestrator`, `make run-tenants`): the
//! orchestrator contract served from tenant files, for trying the
//! multi-tenant mode on one machine (`docs/development.md`).
//!
//! It is the test suite's [`FakeOrchestrator`] behind a front on a chosen
//! address. The front re-reads the tenant files before every request, so an
//! edit shows at the next lookup, hands the request to the fake and logs one
//! line for it. The contract itself (tokens, POST and GET lookups, 400 / 403 /
//! 404 / 405, credentials resolved only for their tenant) is the fake's, so the
//! tool and the tests cannot disagree about it.
//!
//! Hand-written: the forwarding is a few lines over reqwest, which the crate
//! already uses (a proxy crate would save none of them), and the files are
//! read again on each request rather than watched (`notify`): a handful of
//! small files, and no change event to miss.
//!
//! A tenant file is `<dir>/<tenant>.json`:
//!
//! ```json
//! {"hosts": ["vermont.localhost"],
//!  "runtime": {"schema_version": 2, "tenant": "vermont", "...": "..."},
//!  "credentials": {"ref-telegram-vermont": {"provider": "telegram", "bot_token": "..."}}}
//! ```
//!
//! `runtime` is answered as is for each host; each credential resolves only
//! for `X-Tenant: <tenant>`, the file's name (the functions send the first
//! label of the host). A file that cannot be read keeps its previous contents
//! served, with a warning; a file that is removed takes its hosts and
//! credentials with it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::fake_orchestrator::{FakeOrchestrator, CREDENTIALS_PATH, RUNTIME_PATH};
use crate::fake_server::{lock, FakeServer, Received};

/// The target of its log records: each line reads `orchestrator: ...` among
/// the web function's.
pub const LOG_TARGET: &str = "orchestrator";

/// How the local orchestrator runs.
pub struct Options {
    /// Where it listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The folder of `<tenant>.json` files.
    pub tenants: PathBuf,
    /// The service token the functions must present.
    pub token: SecretString,
    /// A second accepted token, to try a rotation.
    pub secondary_token: Option<SecretString>,
}

/// A running local orchestrator; it stops when dropped.
pub struct LocalOrchestrator {
    front: FakeServer,
    // Kept for as long as the front forwards to it.
    _fake: FakeOrchestrator,
}

impl LocalOrchestrator {
    /// Reads the tenant files once (so that a broken one is reported at
    /// start) and serves them on `options.listen`.
    pub async fn start(options: Options) -> std::io::Result<LocalOrchestrator> {
        let fake = FakeOrchestrator::start().await;
        fake.set_tokens(
            options.token.expose_secret(),
            options.secondary_token.as_ref().map(|t| t.expose_secret()),
        );
        let front = Arc::new(Front {
            fake: fake.clone(),
            http: reqwest::Client::new(),
            token: options.token,
            secondary_token: options.secondary_token,
            files: Mutex::new(Files::new(options.tenants)),
        });
        front.reload();
        let bound = FakeServer::bind_to(options.listen).await?;
        let app = Router::new().fallback(forward).with_state(front);
        Ok(LocalOrchestrator {
            front: bound.serve(app),
            _fake: fake,
        })
    }

    /// `http://ADDRESS:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.front.addr()
    }

    /// Stops listening, and waits until the port is closed.
    pub async fn shutdown_and_wait(&self) {
        self.front.shutdown_and_wait().await;
    }
}

/// What the front holds: the fake it forwards to and the files it keeps it
/// in step with.
struct Front {
    fake: FakeOrchestrator,
    http: reqwest::Client,
    token: SecretString,
    secondary_token: Option<SecretString>,
    files: Mutex<Files>,
}

async fn forward(State(front): State<Arc<Front>>, request: Received) -> Response {
    let started = Instant::now();
    front.reload();
    let response = match front.send(&request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(target: LOG_TARGET, "the orchestrator behind the front failed: {error}");
            StatusCode::BAD_GATEWAY.into_response()
        }
    };
    tracing::info!(target: LOG_TARGET, "{} {} {}-> {} ({} ms)",
        request.method,
        request.uri.path(),
        front.describe(&request),
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

impl Front {
    /// A few small files, read on the request's thread: a local tool
    /// serves one developer.
    fn reload(&self) {
        lock(&self.files).reload(&self.fake);
    }

    /// The request, as received, to the fake; its answer back.
    async fn send(&self, request: &Received) -> Result<Response, reqwest::Error> {
        let path = request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut outgoing = self
            .http
            .request(
                request.method.clone(),
                format!("{}{path}", self.fake.base_url()),
            )
            .body(request.body.clone());
        for (name, value) in &request.headers {
            if name != header::HOST && name != header::CONTENT_LENGTH {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing.send().await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        for name in [
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            header::ALLOW,
            header::RETRY_AFTER,
        ] {
            if let Some(value) = headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }

    /// The log line's middle: what was asked, and which token (never the
    /// token itself).
    fn describe(&self, request: &Received) -> String {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        let mut out = String::new();
        match request.uri.path() {
            RUNTIME_PATH => {
                let host = if request.method == Method::GET {
                    request.uri.query().and_then(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == "host")
                            .map(|(_, v)| v.into_owned())
                    })
                } else {
                    field("host")
                };
                out += &format!("host={} ", host.as_deref().unwrap_or("-"));
            }
            CREDENTIALS_PATH => {
                let tenant = request.header("x-tenant").unwrap_or("-");
                let reference = field("credentials_ref");
                out += &format!(
                    "tenant={tenant} ref={} ",
                    reference.as_deref().unwrap_or("-")
                );
            }
            _ => {}
        }
        out + &format!("token={} ", self.token_name(request))
    }

    fn token_name(&self, request: &Received) -> &'static str {
        let presented = request
            .header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            None => "none",
            Some(t) if t == self.token.expose_secret() => "primary",
            Some(t) if Some(t) == self.secondary_token.as_ref().map(|s| s.expose_secret()) => {
                "secondary"
            }
            Some(_) => "wrong",
        }
    }
}

/// One tenant file.
#[derive(Deserialize)]
struct TenantFile {
    /// The hosts it answers for.
    hosts: Vec<String>,
    /// The runtime envelope, answered as is.
    runtime: Value,
    /// `credentials_ref` → the credential's payload.
    #[serde(default)]
    credentials: BTreeMap<String, Value>,
}

/// A file as last read.
struct Loaded {
    text: String,
    /// The last good contents; `None` when it never parsed.
    tenant: Option<TenantFile>,
}

/// The tenant files, and what of them the fake serves.
struct Files {
    dir: PathBuf,
    loaded: BTreeMap<PathBuf, Loaded>,
    served_hosts: BTreeSet<String>,
    served_refs: BTreeSet<String>,
}

impl Files {
    fn new(dir: PathBuf) -> Files {
        Files {
            dir,
            loaded: BTreeMap::new(),
            served_hosts: BTreeSet::new(),
            served_refs: BTreeSet::new(),
        }
    }

    /// Reads every `*.json` file of the folder again, and makes `fake` serve
    /// exactly what they say.
    fn reload(&mut self, fake: &FakeOrchestrator) {
        let paths = match tenant_files(&self.dir) {
            Ok(paths) => paths,
            Err(error) => {
                tracing::warn!(target: LOG_TARGET, "cannot list {}: {error}; serving what was read before",
                    self.dir.display()
                );
                return;
            }
        };
        self.loaded.retain(|path, _| paths.contains(path));
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) => {
                    tracing::warn!(target: LOG_TARGET, "cannot read {}: {error}", path.display());
                    continue;
                }
            };
            if self.loaded.get(&path).is_some_and(|l| l.text == text) {
                continue;
            }
            let previous = self.loaded.remove(&path).and_then(|l| l.tenant);
            let tenant = match serde_json::from_str::<TenantFile>(&text) {
                Ok(tenant) => {
                    let version = tenant.runtime.get("config_version").and_then(Value::as_str);
                    tracing::info!(target: LOG_TARGET, "loaded {}: hosts {}, config_version {}",
                        path.display(),
                        tenant.hosts.join(", "),
                        version.unwrap_or("-")
                    );
                    Some(tenant)
                }
                Err(error) => {
                    let kept = if previous.is_some() {
                        "serving its previous contents"
                    } else {
                        "its hosts are unknown until it is fixed"
                    };
                    tracing::warn!(target: LOG_TARGET, "cannot use {}: {error}; {kept}", path.display());
                    previous
                }
            };
            self.loaded.insert(path, Loaded { text, tenant });
        }
        self.serve(fake);
    }

    /// Puts every host and credential of the files into `fake`, and takes
    /// out those no file names any more.
    fn serve(&mut self, fake: &FakeOrchestrator) {
        let mut hosts = BTreeSet::new();
        let mut refs = BTreeSet::new();
        for (path, loaded) in &self.loaded {
            let Some(file) = &loaded.tenant else { continue };
            let owner = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for host in &file.hosts {
                fake.put_runtime(host, file.runtime.clone());
                hosts.insert(host.clone());
            }
            for (reference, payload) in &file.credentials {
                fake.put_credential(&owner, reference, payload.clone());
                refs.insert(reference.clone());
            }
        }
        for gone in self.served_hosts.difference(&hosts) {
            fake.remove_runtime(gone);
        }
        for gone in self.served_refs.difference(&refs) {
            fake.remove_credential(gone);
        }
        (self.served_hosts, self.served_refs) = (hosts, refs);
    }
}

/// The folder's `*.json` files, sorted.
fn tenant_files(dir: &Path) -> std::io::Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            out.insert(path);
        }
    }
    Ok(out)
}
