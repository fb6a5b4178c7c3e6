//! Dropbox API v2: JSON RPC calls on
//! `DROPBOX_API_URL`, content calls on `DROPBOX_CONTENT_URL` with their
//! argument in the `Dropbox-API-Arg` header.
//!
//! Access tokens come from the tenant's refresh token and the app's key and
//! secret; each tenant's token is kept (across service-set rebuilds) until
//! shortly before it expires, and refreshed once when Dropbox answers 401.
//! 429 and 5xx are retried with backoff, honouring `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{clean_path, hex, join, FileEntry, Storage, StorageError, ThumbnailSize};
use crate::bounded::{self, BodyError, Bound, DropboxLimits, Limits};
use crate::clock::Clock;
use crate::retry::{self, Finished, Policy, Step};
use crate::settings::ServiceUrls;
use crate::telemetry::{self, Mask};

/// Dropbox refuses single uploads over 150 MiB (larger ones need sessions).
const MAX_UPLOAD: usize = 150 * 1024 * 1024;
/// Refresh this long before the token expires, at most (a tenth of short lifetimes).
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// 429 and 5xx are tried three times, 250 ms doubling between tries; a
/// `Retry-After` longer than 10 s ends the call at once (it could not finish
/// within a request's time anyway).
pub const RETRY: Policy = Policy {
    attempts: 3,
    base: Duration::from_millis(250),
    cap: Duration::from_secs(10),
    jitter: 0.25,
    give_up_beyond_cap: true,
};
/// An access token is kept at most this long, whatever `expires_in` says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The Dropbox app every tenant's storage goes through: endpoints, app key and
/// secret, the process's HTTP client.
#[derive(Clone)]
pub struct DropboxApp {
    http: reqwest::Client,
    api_url: String,
    content_url: String,
    /// The app key and secret; without them no token can be had, and every
    /// call fails as unavailable.
    client: Option<(String, SecretString)>,
    retry: Policy,
    /// How long each kind of call may take and how much of its answer is read.
    limits: DropboxLimits,
    clock: Clock,
}

impl DropboxApp {
    pub fn new(http: reqwest::Client, services: &ServiceUrls, clock: Clock) -> Self {
        let client = services
            .dropbox_app_key
            .clone()
            .zip(services.dropbox_app_secret.clone());
        Self {
            http,
            api_url: services.dropbox_api.trim_end_matches('/').to_string(),
            content_url: services.dropbox_content.trim_end_matches('/').to_string(),
            client,
            retry: RETRY,
            limits: Limits::PRODUCTION.dropbox,
            clock,
        }
    }

    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_limits(mut self, limits: DropboxLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Access tokens per tenant and refresh token, shared by the tenant's
/// successive service sets so that a rebuild does not cost a token exchange.
pub struct TokenCache {
    slots: moka::sync::Cache<(String, String), Arc<TokenSlot>>,
}

impl TokenCache {
    pub fn new(max_tenants: u64) -> Self {
        Self {
            slots: moka::sync::Cache::new(max_tenants),
        }
    }

    fn slot(&self, tenant: &str, refresh_token: &SecretString) -> Arc<TokenSlot> {
        // Keyed by a digest of the refresh token too: a new credential (maybe
        // another account) never reuses the old account's access token.
        let fingerprint = hex(&Sha256::digest(refresh_token.expose_secret().as_bytes()));
        self.slots
            .get_with((tenant.to_string(), fingerprint), Arc::default)
    }
}

/// One tenant's access token. The lock is held during an exchange, so that
/// concurrent callers wait for one exchange instead of each making their own.
#[derive(Default)]
struct TokenSlot {
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    token: Option<AccessToken>,
    generation: u64,
}

#[derive(Clone)]
struct AccessToken {
    value: SecretString,
    /// Keeps the token masked in logs while it is in use; a replaced token
    /// is forgotten.
    _mask: Mask,
    fresh_until: SystemTime,
    /// Tells a token that failed with 401 from one refreshed since.
    generation: u64,
}

pub struct DropboxStorage {
    app: DropboxApp,
    tenant: String,
    refresh_token: SecretString,
    token: Arc<TokenSlot>,
}

#[derive(Clone, Copy)]
enum Host {
    Api,
    Content,
}

/// One API call as sent (and re-sent on retry).
struct Call<'a> {
    host: Host,
    route: &'static str,
    arg: &'a Value,
    body: Option<Bytes>,
    /// Whether a request that may have reached Dropbox can be sent again;
    /// a move cannot (a retried move that had succeeded would fail).
    idempotent: bool,
    /// The call's time, and how much of its answer is read.
    bound: Bound,
}

impl DropboxStorage {
    pub fn new(
        app: DropboxApp,
        tokens: &TokenCache,
        tenant: &str,
        refresh_token: SecretString,
    ) -> Self {
        Self {
            token: tokens.slot(tenant, &refresh_token),
            app,
            tenant: tenant.to_string(),
            refresh_token,
        }
    }

    /// The cached access token, or a new one. `stale`: the generation of a
    /// token Dropbox just refused, which must not be handed out again.
    async fn access_token(&self, stale: Option<u64>) -> Result<AccessToken, StorageError> {
        let mut state = self.token.state.lock().await;
        if let Some(token) = &state.token {
            if token.fresh_until > self.app.clock.now() && Some(token.generation) != stale {
                return Ok(token.clone());
            }
        }
        state.token = None;
        let (value, expires_in) = self.exchange().await?;
        state.generation += 1;
        let lifetime = expires_in.min(MAX_TOKEN_LIFETIME);
        let margin = (lifetime / 10).min(EXPIRY_MARGIN);
        let now = self.app.clock.now();
        let token = AccessToken {
            _mask: telemetry::mask(&value),
            value,
            fresh_until: now
                .checked_add(lifetime.saturating_sub(margin))
                .unwrap_or(now),
            generation: state.generation,
        };
        state.token = Some(token.clone());
        tracing::info!(tenant = %self.tenant, expires_in_s = expires_in.as_secs(), "dropbox access token obtained");
        Ok(token)
    }

    /// `POST /oauth2/token` with the refresh token.
    async fn exchange(&self) -> Result<(SecretString, Duration), StorageError> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: u64,
        }
        let Some((app_key, app_secret)) = &self.app.client else {
            tracing::error!(tenant = %self.tenant, "Dropbox storage needs DROPBOX_APP_KEY and DROPBOX_APP_SECRET");
            return Err(StorageError::Unavailable(
                "Dropbox app key and secret not configured".into(),
            ));
        };
        let url = format!("{}/oauth2/token", self.app.api_url);
        let unavailable = |reason: String| Step::retry(StorageError::Unavailable(reason));
        let url = &url;
        let bound = self.app.limits.rpc;
        let exchanged = retry::run(&self.app.retry, &self.app.clock, |_| async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.expose_secret()),
                ("client_id", app_key.as_str()),
                ("client_secret", app_secret.expose_secret()),
            ];
            let sent = self
                .app
                .http
                .post(url)
                .form(&form)
                .timeout(bound.time)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    match bounded::json::<Answer>(response, bound.bytes).await {
                        Ok(answer) => Step::Done((
                            SecretString::from(answer.access_token),
                            Duration::from_secs(answer.expires_in),
                        )),
                        Err(error) if error.is_transient() => {
                            unavailable(format!("token endpoint: {error}"))
                        }
                        Err(error) => Step::Fail(StorageError::Unavailable(format!(
                            "token endpoint: {error}"
                        ))),
                    }
                }
                Ok(response) if is_transient(response.status()) => Step::Retry {
                    error: StorageError::Unavailable(format!(
                        "token endpoint: HTTP {}",
                        response.status().as_u16()
                    )),
                    after: retry::retry_after(response.headers(), self.app.clock.now()),
                },
                Ok(response) => {
                    let status = response.status().as_u16();
                    // The OAuth error code (`invalid_grant`, ...) names the cause
                    // without any secret.
                    let code = bounded::json::<Value>(response, bound.bytes)
                        .await
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    tracing::warn!(tenant = %self.tenant, status, error = %code, "dropbox token exchange refused");
                    Step::Fail(StorageError::Unauthorized)
                }
                Err(error) => unavailable(format!("token endpoint: {}", transport(&error))),
            }
        })
        .await;
        exchanged.result
    }

    /// Sends `call` until it succeeds, fails for good, or runs out of tries;
    /// a 401 refreshes the access token once (not counted as a try) and
    /// sends it again.
    async fn send(&self, call: Call<'_>) -> Result<Bytes, StorageError> {
        let started = Instant::now();
        let mut attempts = 0;
        let mut token = self.access_token(None).await;
        let mut refreshed = false;
        let outcome = loop {
            let current = match &token {
                Ok(current) => current,
                Err(error) => break Err(error.clone()),
            };
            let finished = self.send_with(&call, current).await;
            attempts += finished.attempts;
            match finished.result {
                Err(StorageError::Unauthorized) if !refreshed => {
                    refreshed = true;
                    token = self.access_token(Some(current.generation)).await;
                }
                result => break result,
            }
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(_) => {
                tracing::debug!(tenant = %self.tenant, route = call.route, attempts, latency_ms, "dropbox call")
            }
            Err(StorageError::NotFound) => {}
            Err(error) => {
                tracing::warn!(tenant = %self.tenant, route = call.route, attempts, latency_ms, %error, "dropbox call failed")
            }
        }
        outcome
    }

    /// `call` with one access token, retried by the policy; a 401 is final
    /// here (the caller refreshes the token). The answer is read, within the
    /// call's bound, as part of its try.
    async fn send_with(
        &self,
        call: &Call<'_>,
        token: &AccessToken,
    ) -> Finished<Bytes, StorageError> {
        let unavailable = |reason: String| StorageError::Unavailable(reason);
        retry::run(&self.app.retry, &self.app.clock, |_| async move {
            let request = match self.request(call, token) {
                Ok(request) => request,
                Err(error) => return Step::Fail(error),
            };
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    match bounded::read(response, call.bound.bytes).await {
                        Ok(body) => Step::Done(body),
                        Err(error) if call.idempotent && error.is_transient() => {
                            Step::retry(unavailable(format!("{}: {error}", call.route)))
                        }
                        Err(error) => Step::Fail(unavailable(format!("{}: {error}", call.route))),
                    }
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    Step::Fail(StorageError::Unauthorized)
                }
                Ok(response) if is_transient(response.status()) => Step::Retry {
                    error: unavailable(format!(
                        "{}: HTTP {}",
                        call.route,
                        response.status().as_u16()
                    )),
                    after: retry::retry_after(response.headers(), self.app.clock.now()),
                },
                Ok(response) => Step::Fail(refusal(response, call.bound.bytes).await),
                Err(error) if call.idempotent || error.is_connect() => Step::retry(unavailable(
                    format!("{}: {}", call.route, transport(&error)),
                )),
                Err(error) => Step::Fail(unavailable(format!(
                    "{}: {}",
                    call.route,
                    transport(&error)
                ))),
            }
        })
        .await
    }

    fn request(
        &self,
        call: &Call<'_>,
        token: &AccessToken,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.value.expose_secret()))
            .map_err(|_| StorageError::Other("access token unusable in a header".into()))?;
        bearer.set_sensitive(true);
        let base = match call.host {
            Host::Api => &self.app.api_url,
            Host::Content => &self.app.content_url,
        };
        let request = self
            .app
            .http
            .post(format!("{base}/2/{}", call.route))
            .header(AUTHORIZATION, bearer)
            .timeout(call.bound.time);
        Ok(match call.host {
            Host::Api => request.json(call.arg),
            Host::Content => {
                let request = request.header("Dropbox-API-Arg", api_arg(call.arg));
                match &call.body {
                    Some(body) => request
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(body.clone()),
                    None => request,
                }
            }
        })
    }

    async fn rpc<T: DeserializeOwned>(
        &self,
        route: &'static str,
        arg: &Value,
        idempotent: bool,
    ) -> Result<T, StorageError> {
        let body = self
            .send(Call {
                host: Host::Api,
                route,
                arg,
                body: None,
                idempotent,
                bound: self.app.limits.rpc,
            })
            .await?;
        serde_json::from_slice(&body)
            .map_err(|_| StorageError::Unavailable(format!("{route}: {}", BodyError::Malformed)))
    }

    /// A call on the content host; `bound` says how long it may take and how
    /// much of its answer is read.
    async fn content(
        &self,
        route: &'static str,
        arg: &Value,
        body: Option<Bytes>,
        bound: Bound,
    ) -> Result<Bytes, StorageError> {
        self.send(Call {
            host: Host::Content,
            route,
            arg,
            body,
            idempotent: true,
            bound,
        })
        .await
    }
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = ".tag", default)]
    tag: Option<String>,
    name: String,
    #[serde(default)]
    path_display: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    rev: Option<String>,
    #[serde(default)]
    content_hash: Option<String>,
    #[serde(default)]
    size: u64,
}

impl Metadata {
    /// Listings and metadata tag each entry; only files count.
    fn is_file(&self) -> bool {
        self.tag.as_deref().is_none_or(|tag| tag == "file")
    }

    fn into_entry(self, folder: &str) -> FileEntry {
        FileEntry {
            path: self
                .path_display
                .unwrap_or_else(|| join(folder, &self.name)),
            name: self.name,
            id: self.id,
            rev: self.rev,
            content_hash: self.content_hash,
            size: self.size,
        }
    }
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<Metadata>,
    cursor: String,
    has_more: bool,
}

#[async_trait]
impl Storage for DropboxStorage {
    async fn list_files(&self, folder: &str) -> Result<Vec<FileEntry>, StorageError> {
        let folder = &clean_path(folder)?;
        // Dropbox names the root "", not "/".
        let path = folder.trim_end_matches('/');
        let mut page: Page = self
            .rpc(
                "files/list_folder",
                &json!({"path": path, "recursive": false, "include_deleted": false, "limit": 2000}),
                true,
            )
            .await?;
        let mut files = Vec::new();
        loop {
            files.extend(
                page.entries
                    .into_iter()
                    .filter(Metadata::is_file)
                    .map(|m| m.into_entry(folder)),
            );
            if !page.has_more {
                return Ok(files);
            }
            page = self
                .rpc(
                    "files/list_folder/continue",
                    &json!({"cursor": page.cursor}),
                    true,
                )
                .await?;
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileEntry, StorageError> {
        let path = &clean_path(path)?;
        let metadata: Metadata = self
            .rpc("files/get_metadata", &json!({"path": path}), true)
            .await?;
        if !metadata.is_file() {
            return Err(StorageError::NotFound);
        }
        Ok(metadata.into_entry(parent(path)))
    }

    async fn temporary_link(&self, path: &str) -> Result<String, StorageError> {
        #[derive(Deserialize)]
        struct Answer {
            link: String,
        }
        let path = &clean_path(path)?;
        let answer: Answer = self
            .rpc("files/get_temporary_link", &json!({"path": path}), true)
            .await?;
        Ok(answer.link)
    }

    async fn download(&self, path: &str) -> Result<Bytes, StorageError> {
        let path = &clean_path(path)?;
        let bound = self.app.limits.download;
        self.content("files/download", &json!({"path": path}), None, bound)
            .await
    }

    async fn upload(&self, path: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = &clean_path(path)?;
        if bytes.len() > MAX_UPLOAD {
            return Err(StorageError::Other("file too large for one upload".into()));
        }
        let arg = json!({"path": path, "mode": "overwrite", "autorename": false, "mute": true, "strict_conflict": false});
        // The answer is the file's metadata; the upload itself may take the
        // time of a download.
        let bound = Bound {
            bytes: self.app.limits.rpc.bytes,
            ..self.app.limits.download
        };
        self.content("files/upload", &arg, Some(bytes), bound)
            .await?;
        Ok(())
    }

    async fn create_folder(&self, path: &str) -> Result<(), StorageError> {
        let path = &clean_path(path)?;
        if path == "/" {
            return Ok(());
        }
        let created: Result<Value, _> = self
            .rpc(
                "files/create_folder_v2",
                &json!({"path": path, "autorename": false}),
                true,
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            // A folder already there is what was asked for; a file is not.
            Err(StorageError::Other(summary)) if summary.starts_with("path/conflict/folder") => {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn move_to_folder(&self, from: &str, to_folder: &str) -> Result<String, StorageError> {
        #[derive(Deserialize)]
        struct Answer {
            metadata: Metadata,
        }
        let from = &clean_path(from)?;
        let to_folder = &clean_path(to_folder)?;
        let name = from
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .ok_or(StorageError::NotFound)?;
        let to_path = join(to_folder, name);
        let arg = json!({"from_path": from, "to_path": to_path, "autorename": true, "allow_ownership_transfer": false});
        let answer: Answer = self.rpc("files/move_v2", &arg, false).await?;
        Ok(answer.metadata.path_display.unwrap_or(to_path))
    }

    async fn thumbnail(&self, path: &str, size: ThumbnailSize) -> Result<Bytes, StorageError> {
        let path = &clean_path(path)?;
        let arg = json!({
            "resource": {".tag": "path", "path": path},
            "format": "jpeg",
            "size": size.as_str(),
            "mode": "fitone_bestfit",
        });
        let bound = self.app.limits.thumbnail;
        self.content("files/get_thumbnail_v2", &arg, None, bound)
            .await
    }
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A transport failure in words that carry no URL.
fn transport(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    }
}

/// The error of a 4xx answer other than 401 and 429. Dropbox's 409 bodies
/// carry `error_summary` (`path/not_found/..`); 400 bodies are plain text,
/// which is redacted (it may quote a header) and cut short. At most `limit`
/// bytes are read; a body that cannot be read counts as empty.
async fn refusal(response: reqwest::Response, limit: usize) -> StorageError {
    let status = response.status().as_u16();
    let body = bounded::read(response, limit).await.unwrap_or_default();
    let summary = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("error_summary")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match summary {
        Some(summary) if is_not_found(&summary) => StorageError::NotFound,
        Some(summary) => StorageError::Other(telemetry::redact(&summary)),
        None => {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            StorageError::Other(format!("HTTP {status}: {}", telemetry::redact(text.trim())))
        }
    }
}

/// `path/not_found/..`, `path_lookup/not_found/..`, `from_lookup/not_found/..`
/// and the like: nothing (or no file, or no folder) at the path given.
fn is_not_found(summary: &str) -> bool {
    let mut parts = summary.split('/');
    let (Some(field), Some(reason)) = (parts.next(), parts.next()) else {
        return false;
    };
    matches!(field, "path" | "path_lookup" | "from_lookup")
        && matches!(reason, "not_found" | "not_file" | "not_folder")
}

/// The `Dropbox-API-Arg` header: the JSON argument with every character
/// outside printable ASCII written as `\uXXXX` (UTF-16 units), as Dropbox
/// requires for HTTP headers.
pub fn api_arg(arg: &Value) -> String {
    let json = arg.to_string();
    let mut out = String::with_capacity(json.len());
    let mut units = [0u16; 2];
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_argument_escapes_non_ascii() {
        let arg = json!({"path": "/Fotos/é 🙂\u{7f}.jpg"});
        let header = api_arg(&arg);
        assert_eq!(header, r#"{"path":"/Fotos/\u00e9 \ud83d\ude42\u007f.jpg"}"#);
        assert!(HeaderValue::from_str(&header).is_ok());
        let back: Value = serde_json::from_str(&header).expect("still JSON");
        assert_eq!(back, arg);
    }

    #[test]
    fn not_found_summaries() {
        for s in [
            "path/not_found/..",
            "path_lookup/not_found/...",
            "from_lookup/not_found/",
            "path/not_file/.",
        ] {
            assert!(is_not_found(s), "{s}");
        }
        for s in [
            "path/conflict/folder/..",
            "to/not_found/..",
            "too_many_requests/..",
            "",
            "path",
        ] {
            assert!(!is_not_found(s), "{s}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a.jpg"), "/");
        assert_eq!(parent("/P/x/a.jpg"), "/P/x");
    }
}
