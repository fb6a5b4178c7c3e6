//! Dropbox API v2 (publish.md §External services): JSON RPC calls on
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
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{clean_path, hex, join, FileEntry, Storage, StorageError, ThumbnailSize};
use crate::settings::ServiceUrls;

/// Dropbox refuses single uploads over 150 MiB (larger ones need sessions).
const MAX_UPLOAD: usize = 150 * 1024 * 1024;
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
const CONTENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Refresh this long before the token expires, at most (a tenth of short lifetimes).
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// How failed calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries per call, the first included.
    pub attempts: u32,
    /// First backoff without `Retry-After`; doubles per retry.
    pub base_delay: Duration,
    /// A `Retry-After` longer than this ends the call at once (it could not
    /// finish within a request's time anyway).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_wait: Duration::from_secs(10),
        }
    }
}

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
    retry: RetryPolicy,
}

impl DropboxApp {
    pub fn new(http: reqwest::Client, services: &ServiceUrls) -> Self {
        let client = services
            .dropbox_app_key
            .clone()
            .zip(services.dropbox_app_secret.clone());
        Self {
            http,
            api_url: services.dropbox_api.trim_end_matches('/').to_string(),
            content_url: services.dropbox_content.trim_end_matches('/').to_string(),
            client,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
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
    fresh_until: Instant,
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
}

/// What a failed try says about the next one.
enum Failure {
    Retry(String, Option<Duration>),
    Final(StorageError),
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
            if token.fresh_until > Instant::now() && Some(token.generation) != stale {
                return Ok(token.clone());
            }
        }
        state.token = None;
        let (value, expires_in) = self.exchange().await?;
        crate::telemetry::register_secret(&value);
        state.generation += 1;
        let margin = (expires_in / 10).min(EXPIRY_MARGIN);
        let token = AccessToken {
            value,
            fresh_until: Instant::now() + expires_in.saturating_sub(margin),
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.expose_secret()),
                ("client_id", app_key.as_str()),
                ("client_secret", app_secret.expose_secret()),
            ];
            let sent = self
                .app
                .http
                .post(&url)
                .form(&form)
                .timeout(RPC_TIMEOUT)
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    let answer: Answer = response.json().await.map_err(|_| {
                        StorageError::Unavailable("token endpoint: unreadable answer".into())
                    })?;
                    let value = SecretString::from(answer.access_token);
                    return Ok((value, Duration::from_secs(answer.expires_in)));
                }
                Ok(response) if is_transient(response.status()) => Failure::Retry(
                    format!("token endpoint: HTTP {}", response.status().as_u16()),
                    retry_after(response.headers()),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    // The OAuth error code (`invalid_grant`, ...) names the cause
                    // without any secret.
                    let code = response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    tracing::warn!(tenant = %self.tenant, status, error = %code, "dropbox token exchange refused");
                    Failure::Final(StorageError::Unauthorized)
                }
                Err(error) => {
                    Failure::Retry(format!("token endpoint: {}", transport(&error)), None)
                }
            };
            self.pause_or_fail(attempt, failure).await?;
        }
    }

    /// Waits before the next try, or answers why there is none.
    async fn pause_or_fail(&self, attempt: u32, failure: Failure) -> Result<(), StorageError> {
        let (reason, retry_after) = match failure {
            Failure::Final(error) => return Err(error),
            Failure::Retry(reason, retry_after) => (reason, retry_after),
        };
        let policy = self.app.retry;
        if attempt >= policy.attempts {
            return Err(StorageError::Unavailable(reason));
        }
        let wait = match retry_after {
            Some(wait) if wait > policy.max_wait => {
                return Err(StorageError::Unavailable(format!(
                    "{reason}, retry after {}s",
                    wait.as_secs()
                )))
            }
            Some(wait) => wait,
            None => {
                let base = policy.base_delay.saturating_mul(1 << (attempt - 1).min(16));
                let jitter = rand::random_range(0..=base.as_millis() as u64 / 4);
                base + Duration::from_millis(jitter)
            }
        };
        tracing::debug!(tenant = %self.tenant, %reason, wait_ms = wait.as_millis() as u64, "dropbox call retried");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Sends `call` until it succeeds, fails for good, or runs out of tries.
    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, StorageError> {
        let started = Instant::now();
        let mut token = self.access_token(None).await?;
        let mut refreshed = false;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let request = match self.request(&call, &token) {
                Ok(request) => request,
                Err(error) => break Err(error),
            };
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => break Ok(response),
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if refreshed {
                        break Err(StorageError::Unauthorized);
                    }
                    // One refresh, which does not count as a try.
                    refreshed = true;
                    attempt -= 1;
                    match self.access_token(Some(token.generation)).await {
                        Ok(fresh) => token = fresh,
                        Err(error) => break Err(error),
                    }
                    continue;
                }
                Ok(response) if is_transient(response.status()) => Failure::Retry(
                    format!("{}: HTTP {}", call.route, response.status().as_u16()),
                    retry_after(response.headers()),
                ),
                Ok(response) => Failure::Final(refusal(response).await),
                Err(error) if call.idempotent || error.is_connect() => {
                    Failure::Retry(format!("{}: {}", call.route, transport(&error)), None)
                }
                Err(error) => Failure::Final(StorageError::Unavailable(format!(
                    "{}: {}",
                    call.route,
                    transport(&error)
                ))),
            };
            if let Err(error) = self.pause_or_fail(attempt, failure).await {
                break Err(error);
            }
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(_) => {
                tracing::debug!(tenant = %self.tenant, route = call.route, attempt, latency_ms, "dropbox call")
            }
            Err(StorageError::NotFound) => {}
            Err(error) => {
                tracing::warn!(tenant = %self.tenant, route = call.route, attempt, latency_ms, %error, "dropbox call failed")
            }
        }
        outcome
    }

    fn request(
        &self,
        call: &Call<'_>,
        token: &AccessToken,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.value.expose_secret()))
            .map_err(|_| StorageError::Other("access token unusable in a header".into()))?;
        bearer.set_sensitive(true);
        let (base, timeout) = match call.host {
            Host::Api => (&self.app.api_url, RPC_TIMEOUT),
            Host::Content => (&self.app.content_url, CONTENT_TIMEOUT),
        };
        let request = self
            .app
            .http
            .post(format!("{base}/2/{}", call.route))
            .header(AUTHORIZATION, bearer)
            .timeout(timeout);
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
        let response = self
            .send(Call {
                host: Host::Api,
                route,
                arg,
                body: None,
                idempotent,
            })
            .await?;
        response
            .json()
            .await
            .map_err(|_| StorageError::Unavailable(format!("{route}: unreadable answer")))
    }

    async fn content(
        &self,
        route: &'static str,
        arg: &Value,
        body: Option<Bytes>,
    ) -> Result<Bytes, StorageError> {
        let response = self
            .send(Call {
                host: Host::Content,
                route,
                arg,
                body,
                idempotent: true,
            })
            .await?;
        response
            .bytes()
            .await
            .map_err(|error| StorageError::Unavailable(format!("{route}: {}", transport(&error))))
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
        self.content("files/download", &json!({"path": path}), None)
            .await
    }

    async fn upload(&self, path: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = &clean_path(path)?;
        if bytes.len() > MAX_UPLOAD {
            return Err(StorageError::Other("file too large for one upload".into()));
        }
        let arg = json!({"path": path, "mode": "overwrite", "autorename": false, "mute": true, "strict_conflict": false});
        self.content("files/upload", &arg, Some(bytes)).await?;
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
        self.content("files/get_thumbnail_v2", &arg, None).await
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

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
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
/// which is redacted (it may quote a header) and cut short.
async fn refusal(response: reqwest::Response) -> StorageError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let summary = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("error_summary")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match summary {
        Some(summary) if is_not_found(&summary) => StorageError::NotFound,
        Some(summary) => StorageError::Other(crate::telemetry::redact(&summary)),
        None => {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            StorageError::Other(format!(
                "HTTP {status}: {}",
                crate::telemetry::redact(text.trim())
            ))
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
    fn retry_after_seconds_or_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("date"));
        let wait = retry_after(&headers).expect("date parsed");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a.jpg"), "/");
        assert_eq!(parent("/P/x/a.jpg"), "/P/x");
    }
}
