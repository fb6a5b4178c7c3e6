//! HTTP client of the orchestrator (`docs/tenants.md`): runtime lookup by host and
//! credential resolution, with token rotation, retries and typed errors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::bounded;
use crate::cache::OutageHold;
use crate::clock::Clock;
use crate::config::Envelope;
use crate::metrics::{self, Counter, Counters, Metric};
use crate::retry::{self, Finished, Policy, Step};
use crate::secrets::{Credential, CredentialErrorKind, CredentialPayload, CredentialRef, Role};
use crate::settings::OrchestratorSettings;
use crate::throttle::Throttle;

/// 250 ms doubling per retry, at most 5 s (a `Retry-After` too), plus jitter.
fn retry_policy(attempts: u32) -> Policy {
    Policy {
        attempts,
        base: Duration::from_millis(250),
        cap: Duration::from_secs(5),
        jitter: 0.25,
        give_up_beyond_cap: false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrchestratorError {
    #[error("not found")]
    NotFound,
    #[error("orchestrator refused every service token")]
    Forbidden,
    #[error("orchestrator rejected the request with status {0}")]
    Rejected(u16),
    /// Error statuses (5xx) to the last try, or an answer too large.
    #[error("orchestrator unavailable: {0}")]
    Unavailable(String),
    /// No answer to the last try (no connection, none in time, cut off) or
    /// throttled: the orchestrator is out of reach for every host, not one.
    #[error("orchestrator unreachable: {0}")]
    Unreachable(String),
    #[error("orchestrator sent an unreadable answer")]
    InvalidResponse,
}

impl OrchestratorError {
    /// The error's kind, as a metric dimension.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Rejected(_) => "rejected",
            Self::Unavailable(_) => "unavailable",
            Self::Unreachable(_) => "unreachable",
            Self::InvalidResponse => "invalid_response",
        }
    }

    /// The credential-resolution kind this error stands for.
    pub fn credential_kind(&self) -> CredentialErrorKind {
        match self {
            Self::NotFound => CredentialErrorKind::NotFound,
            Self::Forbidden => CredentialErrorKind::Unauthorized,
            Self::Rejected(_)
            | Self::Unavailable(_)
            | Self::Unreachable(_)
            | Self::InvalidResponse => CredentialErrorKind::Unavailable,
        }
    }

    /// Whether the failure stands for every call of this process: no answer,
    /// throttled, or every service token refused.
    fn is_out_of_reach(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Forbidden)
    }
}

/// The key of the orchestrator's own [`OutageHold`].
const ORCHESTRATOR: &str = "orchestrator";

pub struct OrchestratorClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Vec<SecretString>,
    /// Index into `tokens` of the token in use; moves on a successful rotation.
    active_token: AtomicUsize,
    /// Set when POST is off by setting or after a POST was answered 405.
    get_only: AtomicBool,
    timeout: Duration,
    retry: Policy,
    clock: Clock,
    counters: Arc<Counters>,
    /// The warmup's ceiling on calls per second (off elsewhere).
    throttle: Throttle,
    /// Held after a call found the orchestrator out of reach, until a call
    /// gets an answer.
    out_of_reach: OutageHold,
}

impl OrchestratorClient {
    pub fn new(
        settings: &OrchestratorSettings,
        http: reqwest::Client,
        counters: Arc<Counters>,
        clock: Clock,
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
            retry: retry_policy(settings.max_attempts),
            throttle: Throttle::new(clock.clone()),
            out_of_reach: OutageHold::new(1, clock.clone()),
            clock,
            counters,
        }
    }

    /// Whether the orchestrator is held out of reach: from the moment an
    /// attempt finds it so until an answer comes, or for 15 s after the last
    /// such attempt.
    pub fn is_out_of_reach(&self) -> bool {
        self.out_of_reach.is_held(ORCHESTRATOR)
    }

    /// Whether a caller about to call, with something to fall back on (a
    /// stale copy), should use it instead: while the orchestrator is held
    /// out of reach, except for the one caller due to try again after the
    /// hold ([`OutageHold::should_wait`]). Only the call that found the
    /// outage then waits for the retries, not each host's first.
    pub fn should_wait(&self) -> bool {
        self.out_of_reach.should_wait(ORCHESTRATOR)
    }

    /// The pace of this process's calls (the warmup sets a rate).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
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
        let answer = self
            .send("credential_resolve", tenant, request_id, |c| {
                c.post(&url).header("X-Tenant", tenant).json(&body)
            })
            .await
            .map_err(|e| e.credential_kind());
        let resolved = answer.and_then(|(status, bytes)| match status {
            StatusCode::OK => serde_json::from_slice::<CredentialPayload>(&bytes)
                .map_err(|_| CredentialErrorKind::Unavailable)?
                .into_credential(role),
            StatusCode::NOT_FOUND => Err(CredentialErrorKind::NotFound),
            _ => Err(CredentialErrorKind::Unavailable),
        });
        metrics::record(Metric::CredentialResolution {
            role,
            error: resolved.as_ref().err().copied(),
        });
        resolved
    }

    /// Sends one logical call, retrying 429 / 5xx / transport errors; on a
    /// 403, tries the other token once (a rotation in progress, not a retry)
    /// and keeps it when it works. Answers every other status, 405
    /// included, to the caller.
    async fn send(
        &self,
        call: &'static str,
        subject: &str,
        request_id: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(StatusCode, bytes::Bytes), OrchestratorError> {
        let started = Instant::now();
        let first = self.active_token.load(Ordering::Relaxed);
        let mut finished = self.with_token(call, first, request_id, &build).await;
        let mut attempts = finished.attempts;
        if finished.result == Err(OrchestratorError::Forbidden) && self.tokens.len() > 1 {
            let other = (first + 1) % self.tokens.len();
            finished = self.with_token(call, other, request_id, &build).await;
            attempts += finished.attempts;
            if finished.result.is_ok() {
                self.active_token.store(other, Ordering::Relaxed);
                tracing::warn!(
                    call,
                    "orchestrator accepted the other service token; using it from now on"
                );
            }
        }
        let outcome = finished.result;
        match &outcome {
            Ok(_) => self.out_of_reach.end(ORCHESTRATOR),
            Err(error) if error.is_out_of_reach() => self.out_of_reach.start(ORCHESTRATOR),
            Err(_) => {}
        }
        metrics::record(Metric::OrchestratorCall {
            call,
            latency: started.elapsed(),
            error: outcome.as_ref().err().map(OrchestratorError::kind),
        });
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

    /// One logical call with one token, retried by the policy.
    async fn with_token(
        &self,
        call: &'static str,
        token: usize,
        request_id: &str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Finished<(StatusCode, bytes::Bytes), OrchestratorError> {
        // An attempt that finds the orchestrator out of reach holds it at
        // once: requests arriving during this call's retries serve their
        // copies instead of each starting retries of their own.
        let unreachable = |reason: String| {
            self.out_of_reach.start(ORCHESTRATOR);
            OrchestratorError::Unreachable(reason)
        };
        retry::run(&self.retry, &self.clock, |_| async move {
            self.throttle.wait_turn().await;
            let request = build(&self.http)
                .header(
                    AUTHORIZATION,
                    format!("Bearer {}", self.tokens[token].expose_secret()),
                )
                .header("X-Request-Id", request_id)
                .timeout(self.timeout);
            match request.send().await {
                Ok(response) if response.status() == StatusCode::FORBIDDEN => {
                    Step::Fail(OrchestratorError::Forbidden)
                }
                Ok(response) if is_transient(response.status()) => {
                    let after = retry::retry_after(response.headers(), self.clock.now());
                    let reason = format!("status {}", response.status().as_u16());
                    let error = if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        metrics::record(Metric::OrchestratorThrottled { call });
                        // Every later call waits too, not only this one's retry.
                        self.throttle.hold(after.unwrap_or(self.retry.base));
                        unreachable(reason)
                    } else {
                        OrchestratorError::Unavailable(reason)
                    };
                    Step::Retry { error, after }
                }
                Ok(response) => {
                    let status = response.status();
                    match bounded::read(response, bounded::ORCHESTRATOR_BYTES).await {
                        Ok(body) => Step::Done((status, body)),
                        // Cut off or timed out: another try may get it whole.
                        Err(e) if e.is_transient() => Step::retry(unreachable(e.to_string())),
                        // Too large: the same again on another try.
                        Err(e) => Step::Fail(OrchestratorError::Unavailable(e.to_string())),
                    }
                }
                Err(e) => Step::retry(unreachable(transport_reason(&e))),
            }
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for error in [
            OrchestratorError::Unavailable("x".into()),
            OrchestratorError::Unreachable("x".into()),
        ] {
            assert_eq!(error.credential_kind(), CredentialErrorKind::Unavailable);
        }
    }

    #[test]
    fn only_a_failure_of_every_call_is_out_of_reach() {
        assert!(OrchestratorError::Unreachable("timeout".into()).is_out_of_reach());
        assert!(OrchestratorError::Forbidden.is_out_of_reach());
        for error in [
            OrchestratorError::Unavailable("status 500".into()),
            OrchestratorError::Rejected(400),
            OrchestratorError::InvalidResponse,
            OrchestratorError::NotFound,
        ] {
            assert!(!error.is_out_of_reach(), "{error}");
        }
    }
}
