//! HTTP client of the orchestrator (orchestrator.md): runtime lookup by host and
//! credential resolution, with token rotation, retries and typed errors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::cache::{Counter, Counters};
use crate::secrets::{Credential, CredentialErrorKind, CredentialPayload, CredentialRef, Role};
use crate::settings::OrchestratorSettings;

const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrchestratorError {
    #[error("not found")]
    NotFound,
    #[error("orchestrator refused every service token")]
    Forbidden,
    #[error("orchestrator rejected the request with status {0}")]
    Rejected(u16),
    #[error("orchestrator unavailable: {0}")]
    Unavailable(String),
    #[error("orchestrator sent an unreadable answer")]
    InvalidResponse,
}

impl OrchestratorError {
    /// The credential-resolution kind this error stands for.
    pub fn credential_kind(&self) -> CredentialErrorKind {
        match self {
            Self::NotFound => CredentialErrorKind::NotFound,
            Self::Forbidden => CredentialErrorKind::Unauthorized,
            Self::Rejected(_) | Self::Unavailable(_) | Self::InvalidResponse => {
                CredentialErrorKind::Unavailable
            }
        }
    }
}

/// A runtime envelope as the orchestrator sent it (bytes, parsed by the caller).
pub type Envelope = bytes::Bytes;

pub struct OrchestratorClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Vec<SecretString>,
    /// Index into `tokens` of the token in use; moves on a successful rotation.
    active_token: AtomicUsize,
    /// Set when POST is off by setting or after a POST was answered 405.
    get_only: AtomicBool,
    timeout: Duration,
    max_attempts: u32,
    counters: Arc<Counters>,
}

impl OrchestratorClient {
    pub fn new(
        settings: &OrchestratorSettings,
        http: reqwest::Client,
        counters: Arc<Counters>,
    ) -> Self {
        let tokens = std::iter::once(settings.token.clone())
            .chain(settings.secondary_token.clone())
            .collect();
        Self {
            http,
            base_url: settings.base_url.clone(),
            tokens,
            active_token: AtomicUsize::new(0),
            get_only: AtomicBool::new(!settings.prefer_post),
            timeout: settings.timeout,
            max_attempts: settings.max_attempts,
            counters,
        }
    }

    /// `Ok(None)` is the orchestrator's 404: unknown host, disabled tenant or
    /// wrong app type, indistinguishable on purpose.
    pub async fn runtime_by_host(
        &self,
        host: &str,
        request_id: &str,
    ) -> Result<Option<Envelope>, OrchestratorError> {
        self.counters.incr(Counter::OrchestratorCalls);
        let url = format!("{}/v1/runtime/by-host", self.base_url);
        let mut answer = None;
        if !self.get_only.load(Ordering::Relaxed) {
            let body = serde_json::json!({ "host": host });
            let post = self
                .send("runtime_lookup", host, request_id, |c| {
                    c.post(&url).json(&body)
                })
                .await?;
            if post.0 == StatusCode::METHOD_NOT_ALLOWED {
                tracing::info!("orchestrator does not accept POST lookups; using GET from now on");
                self.get_only.store(true, Ordering::Relaxed);
            } else {
                answer = Some(post);
            }
        }
        let (status, body) = match answer {
            Some(answer) => answer,
            None => {
                self.send("runtime_lookup", host, request_id, |c| {
                    c.get(&url).query(&[("host", host)])
                })
                .await?
            }
        };
        match status {
            StatusCode::OK => Ok(Some(body)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(OrchestratorError::Rejected(other.as_u16())),
        }
    }

    /// Resolves `cref` for `role` on behalf of `tenant` (the host-derived tenant,
    /// sent as `X-Tenant`). The provider must match the role.
    pub async fn resolve_credential(
        &self,
        tenant: &str,
        role: Role,
        cref: &CredentialRef,
        request_id: &str,
    ) -> Result<Credential, CredentialErrorKind> {
        self.counters.incr(Counter::OrchestratorCalls);
        let url = format!("{}/v1/credentials/resolve", self.base_url);
        let body = serde_json::json!({ "credentials_ref": cref.expose() });
        let (status, bytes) = self
            .send("credential_resolve", tenant, request_id, |c| {
                c.post(&url).header("X-Tenant", tenant).json(&body)
            })
            .await
            .map_err(|e| e.credential_kind())?;
        let kind = match status {
            StatusCode::OK => {
                let payload: CredentialPayload =
                    serde_json::from_slice(&bytes).map_err(|_| CredentialErrorKind::Unavailable)?;
                return payload
                    .into_credential(role)
                    .inspect(crate::telemetry::redact_secret);
            }
            StatusCode::NOT_FOUND => CredentialErrorKind::NotFound,
            _ => CredentialErrorKind::Unavailable,
        };
        Err(kind)
    }

    /// Sends one logical call: rotates to the other token once on 403, retries
    /// 429 / 5xx / transport errors with backoff. Answers every other status,
    /// 405 included, to the caller.
    async fn send(
        &self,
        call: &'static str,
        subject: &str,
        request_id: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(StatusCode, bytes::Bytes), OrchestratorError> {
        let started = Instant::now();
        let mut attempts = 0;
        let mut rotated = false;
        let mut token = self.active_token.load(Ordering::Relaxed);
        let outcome = loop {
            attempts += 1;
            let request = build(&self.http)
                .header(
                    AUTHORIZATION,
                    format!("Bearer {}", self.tokens[token].expose_secret()),
                )
                .header("X-Request-Id", request_id)
                .timeout(self.timeout);
            let failure = match request.send().await {
                Ok(response) if response.status() == StatusCode::FORBIDDEN => {
                    if rotated || self.tokens.len() < 2 {
                        break Err(OrchestratorError::Forbidden);
                    }
                    // The one try with the other token does not count as a retry.
                    rotated = true;
                    attempts -= 1;
                    token = (token + 1) % self.tokens.len();
                    continue;
                }
                Ok(response) if is_transient(response.status()) => {
                    let delay = retry_after(response.headers());
                    (format!("status {}", response.status().as_u16()), delay)
                }
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => break Ok((status, body)),
                        Err(e) => (transport_reason(&e), None),
                    }
                }
                Err(e) => (transport_reason(&e), None),
            };
            if attempts >= self.max_attempts {
                break Err(OrchestratorError::Unavailable(failure.0));
            }
            tokio::time::sleep(backoff(attempts, failure.1)).await;
        };
        if rotated && outcome.is_ok() {
            self.active_token.store(token, Ordering::Relaxed);
            tracing::warn!(
                call,
                "orchestrator accepted the other service token; using it from now on"
            );
        }
        let latency_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok((status, _)) => tracing::debug!(
                call,
                request_id,
                subject,
                http_status = status.as_u16(),
                latency_ms,
                attempts,
                "orchestrator call"
            ),
            Err(error) => tracing::warn!(
                call, request_id, subject, %error, latency_ms, attempts, "orchestrator call failed"
            ),
        }
        outcome
    }
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// A transport failure in words that cannot carry a URL (and so no host query).
fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "transport error".into()
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// 250 ms doubling per attempt, or the server's `Retry-After`, capped at 5 s,
/// plus up to 25 % random jitter so that instances do not retry in step.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = BACKOFF_BASE.saturating_mul(1 << (attempt - 1).min(16));
    let base = retry_after.unwrap_or(exponential).min(BACKOFF_CAP);
    let jitter_ms = rand::random_range(0..=base.as_millis() as u64 / 4);
    base + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_honours_retry_after_and_caps() {
        let ms = |d: Duration| d.as_millis() as u64;
        assert!((250..=312).contains(&ms(backoff(1, None))));
        assert!((500..=625).contains(&ms(backoff(2, None))));
        assert!((5000..=6250).contains(&ms(backoff(10, None))));
        assert!((2000..=2500).contains(&ms(backoff(1, Some(Duration::from_secs(2))))));
        assert!((5000..=6250).contains(&ms(backoff(1, Some(Duration::from_secs(60))))));
    }

    #[test]
    fn only_429_and_listed_5xx_are_transient() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 405, 501] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn credential_kinds_follow_the_error() {
        assert_eq!(
            OrchestratorError::NotFound.credential_kind(),
            CredentialErrorKind::NotFound
        );
        assert_eq!(
            OrchestratorError::Forbidden.credential_kind(),
            CredentialErrorKind::Unauthorized
        );
        assert_eq!(
            OrchestratorError::Unavailable("x".into()).credential_kind(),
            CredentialErrorKind::Unavailable
        );
    }
}
