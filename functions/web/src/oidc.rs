//! OIDC admin login against Auth0 (`docs/http-api.md`, OIDC login): discovery, the authorize
//! redirect with state and nonce kept in a signed 10-minute cookie, the code
//! exchange, id-token verification against the provider's JWKS, and the
//! e-mail allowlist.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{AlgorithmFamily, DecodingKey, Validation};
use publisher::bounded::{self, OIDC};
use publisher::clock::Clock;
use publisher::settings::{Auth0Settings, WebSettings};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::admin_session::unix_secs;
use crate::cookies;
use crate::signing::{random_token, Signer};

/// The login state cookie, sent back only to `/auth/*`.
const STATE_COOKIE: &str = "pv2_oidc";
const STATE_COOKIE_PATH: &str = "/auth";
const STATE_TTL: Duration = Duration::from_secs(600);
const STATE_PURPOSE: &str = "oidc";
/// Provider metadata and keys are fetched again after this long.
const PROVIDER_TTL: Duration = Duration::from_secs(3600);
/// A token with an unknown key id refetches the keys (rotation), at most this often.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = OIDC.time;
/// Clock skew allowed on the id token's times.
const LEEWAY_SECONDS: u64 = 60;

/// Why a login did not succeed: the `auth_error` the browser is sent back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    AccessDenied,
    NoEmail,
    CallbackFailed,
    NotConfigured,
}

impl AuthError {
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::AccessDenied => "access_denied",
            AuthError::NoEmail => "no_email_provided",
            AuthError::CallbackFailed => "callback_failed",
            AuthError::NotConfigured => "auth_not_configured",
        }
    }
}

/// What the provider sends back to the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

struct Provider {
    discovery: Discovery,
    keys: JwkSet,
    fetched_at: SystemTime,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: String,
    access_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct UserInfo {
    email: Option<String>,
    email_verified: Option<bool>,
}

pub struct Oidc {
    settings: Auth0Settings,
    http: reqwest::Client,
    signer: Signer,
    secure_cookies: bool,
    provider: RwLock<Option<Arc<Provider>>>,
    last_key_refresh: std::sync::Mutex<Option<SystemTime>>,
    clock: Clock,
}

impl Oidc {
    pub fn new(
        settings: Auth0Settings,
        http: reqwest::Client,
        signer: Signer,
        web: &WebSettings,
        clock: Clock,
    ) -> Self {
        Self {
            settings,
            http,
            signer,
            secure_cookies: web.secure_cookies,
            provider: RwLock::new(None),
            last_key_refresh: std::sync::Mutex::new(None),
            clock,
        }
    }

    /// The provider's authorize URL for a new login, with the state cookie
    /// that must come back with the callback.
    pub async fn start(&self, tenant: &str, response: &mut HeaderMap) -> Result<String, AuthError> {
        let provider = self.provider(false).await?;
        let (state, nonce) = (random_token(), random_token());
        let expiry = (unix_secs(self.clock.now()) + STATE_TTL.as_secs()).to_string();
        let tag = self
            .signer
            .sign(&[STATE_PURPOSE, tenant, &expiry, &state, &nonce]);
        let value = format!("v1.{expiry}.{state}.{nonce}.{tag}");
        let mut url =
            url::Url::parse(&provider.discovery.authorization_endpoint).map_err(|error| {
                tracing::warn!(%error, "OIDC: the authorize endpoint is not a URL");
                AuthError::CallbackFailed
            })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.callback_url)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce);
        cookies::set(
            response,
            STATE_COOKIE,
            &value,
            STATE_COOKIE_PATH,
            STATE_TTL,
            self.secure_cookies,
        );
        Ok(url.into())
    }

    pub fn clear_state(&self, response: &mut HeaderMap) {
        cookies::clear(
            response,
            STATE_COOKIE,
            STATE_COOKIE_PATH,
            self.secure_cookies,
        );
    }

    /// Completes a login: the allowlisted e-mail of the person who logged in.
    pub async fn finish(
        &self,
        tenant: &str,
        params: &CallbackParams,
        request: &HeaderMap,
    ) -> Result<String, AuthError> {
        if let Some(error) = &params.error {
            tracing::info!(error = %error.chars().take(64).collect::<String>(), "OIDC: the provider refused the login");
            return Err(if error == "access_denied" {
                AuthError::AccessDenied
            } else {
                AuthError::CallbackFailed
            });
        }
        let (Some(state), Some(code)) = (&params.state, &params.code) else {
            tracing::info!("OIDC: callback without code or state");
            return Err(AuthError::CallbackFailed);
        };
        let now = unix_secs(self.clock.now());
        let nonce = cookies::values(request, STATE_COOKIE)
            .iter()
            .find_map(|value| self.state_nonce(value, tenant, state, now))
            .ok_or_else(|| {
                tracing::info!("OIDC: missing, expired or mismatched login state");
                AuthError::CallbackFailed
            })?;
        let provider = self.provider(false).await?;
        let tokens = self.exchange(&provider, code).await?;
        let claims = self.verify(provider, &tokens.id_token).await?;
        if claims.nonce.as_deref() != Some(nonce.as_str()) {
            tracing::info!("OIDC: id token nonce does not match the login");
            return Err(AuthError::CallbackFailed);
        }
        let (email, verified) = match claims.email {
            Some(email) => (Some(email), claims.email_verified),
            None => self.userinfo(tokens.access_token.as_deref()).await?,
        };
        let email = email
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or(AuthError::NoEmail)?;
        // An address the provider says it has not verified proves nothing.
        if verified == Some(false) || !self.settings.admin_emails.contains(&email) {
            tracing::info!("OIDC: login by an address not on ADMIN_LOGIN_EMAILS (or unverified)");
            return Err(AuthError::AccessDenied);
        }
        Ok(email)
    }

    /// The nonce of a state cookie that is valid for `tenant` and `state`.
    fn state_nonce(&self, value: &str, tenant: &str, state: &str, now: u64) -> Option<String> {
        let parts: Vec<&str> = value.split('.').collect();
        let ["v1", expiry, cookie_state, nonce, tag] = parts[..] else {
            return None;
        };
        let live = expiry
            .parse::<u64>()
            .is_ok_and(|e| now < e && e <= now + STATE_TTL.as_secs());
        let signed = self
            .signer
            .verify(&[STATE_PURPOSE, tenant, expiry, cookie_state, nonce], tag);
        (live && signed && cookie_state == state).then(|| nonce.to_string())
    }

    async fn exchange(&self, provider: &Provider, code: &str) -> Result<TokenResponse, AuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.callback_url),
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose_secret()),
        ];
        let response = self
            .http
            .post(&provider.discovery.token_endpoint)
            .timeout(HTTP_TIMEOUT)
            .form(&form)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match response {
            Ok(response) => bounded::json::<TokenResponse>(response, OIDC.bytes)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "OIDC: unreadable token response");
                    AuthError::CallbackFailed
                }),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "OIDC: code exchange failed");
                Err(AuthError::CallbackFailed)
            }
        }
    }

    /// Checks the id token's signature (provider's JWKS, asymmetric algorithms
    /// only), issuer, audience and expiry. An unknown key id refetches the keys
    /// once, for providers that rotated them.
    async fn verify(&self, provider: Arc<Provider>, token: &str) -> Result<IdClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| {
            tracing::info!(%error, "OIDC: malformed id token");
            AuthError::CallbackFailed
        })?;
        if !matches!(
            header.alg.family(),
            AlgorithmFamily::Rsa | AlgorithmFamily::Ec | AlgorithmFamily::Ed
        ) {
            tracing::info!(alg = ?header.alg, "OIDC: id token with a symmetric algorithm refused");
            return Err(AuthError::CallbackFailed);
        }
        let find = |keys: &JwkSet| match &header.kid {
            Some(kid) => keys.find(kid).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        };
        let jwk = match find(&provider.keys) {
            Some(jwk) => jwk,
            None => {
                let refreshed = self.provider(true).await?;
                find(&refreshed.keys).ok_or_else(|| {
                    tracing::info!(kid = ?header.kid, "OIDC: id token signed by an unknown key");
                    AuthError::CallbackFailed
                })?
            }
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|error| {
            tracing::warn!(%error, "OIDC: unusable key in the provider's JWKS");
            AuthError::CallbackFailed
        })?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_issuer(&[&provider.discovery.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                tracing::info!(%error, "OIDC: id token rejected");
                AuthError::CallbackFailed
            })
    }

    async fn userinfo(
        &self,
        access_token: Option<&str>,
    ) -> Result<(Option<String>, Option<bool>), AuthError> {
        let provider = self.provider(false).await?;
        let (Some(endpoint), Some(token)) = (&provider.discovery.userinfo_endpoint, access_token)
        else {
            return Ok((None, None));
        };
        let info = self
            .http
            .get(endpoint)
            .timeout(HTTP_TIMEOUT)
            .bearer_auth(token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let info = match info {
            Ok(response) => bounded::json::<UserInfo>(response, OIDC.bytes)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.without_url().to_string()),
        };
        match info {
            Ok(info) => Ok((info.email, info.email_verified)),
            Err(error) => {
                tracing::warn!(%error, "OIDC: userinfo failed");
                Err(AuthError::CallbackFailed)
            }
        }
    }

    /// The provider's metadata and keys: cached, fetched when missing or
    /// older than an hour, and (`refresh_keys`) when a token names a key id
    /// the cached keys lack, at most once per `MIN_KEY_REFRESH` so forged key
    /// ids cannot make every callback refetch.
    async fn provider(&self, refresh_keys: bool) -> Result<Arc<Provider>, AuthError> {
        let force = refresh_keys && self.may_refresh_keys();
        let fresh = |slot: &Option<Arc<Provider>>| {
            slot.as_ref()
                .filter(|p| !force && self.clock.since(p.fetched_at) < PROVIDER_TTL)
                .cloned()
        };
        if let Some(provider) = fresh(&*self.provider.read().await) {
            return Ok(provider);
        }
        let mut slot = self.provider.write().await;
        if let Some(provider) = fresh(&slot) {
            return Ok(provider);
        }
        let provider = Arc::new(self.fetch_provider().await.map_err(|error| {
            tracing::warn!(error, "OIDC: provider metadata unavailable");
            AuthError::CallbackFailed
        })?);
        *slot = Some(provider.clone());
        Ok(provider)
    }

    fn may_refresh_keys(&self) -> bool {
        let mut last = self
            .last_key_refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| self.clock.since(at) < MIN_KEY_REFRESH) {
            return false;
        }
        *last = Some(self.clock.now());
        true
    }

    async fn fetch_provider(&self) -> Result<Provider, String> {
        let issuer = self.settings.issuer_url.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = self.get_json(&url).await?;
        // OIDC Discovery: the document must name the issuer it was fetched for.
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(format!(
                "discovery issuer {:?} is not the configured issuer",
                discovery.issuer
            ));
        }
        let keys: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        Ok(Provider {
            discovery,
            keys,
            fetched_at: self.clock.now(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .timeout(HTTP_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        bounded::json(response, OIDC.bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn oidc() -> Oidc {
        let settings = Auth0Settings {
            domain: "example.auth0.com".into(),
            client_id: "client".into(),
            client_secret: SecretString::from("secret"),
            callback_url: "https://a.example/auth/callback".into(),
            admin_emails: vec!["me@example.com".into()],
            issuer_url: "https://example.auth0.com/".into(),
        };
        Oidc {
            settings,
            http: reqwest::Client::new(),
            signer: Signer::new(b"0123456789abcdef0123456789abcdef"),
            secure_cookies: true,
            provider: RwLock::new(None),
            last_key_refresh: std::sync::Mutex::new(None),
            clock: Clock::system(),
        }
    }

    fn state_cookie(o: &Oidc, tenant: &str, expiry: u64, state: &str, nonce: &str) -> String {
        let expiry = expiry.to_string();
        let tag = o
            .signer
            .sign(&[STATE_PURPOSE, tenant, &expiry, state, nonce]);
        format!("v1.{expiry}.{state}.{nonce}.{tag}")
    }

    #[test]
    fn state_cookie_binds_tenant_state_and_time() {
        let o = oidc();
        let value = state_cookie(&o, "maple", 1_600, "st", "no");
        assert_eq!(
            o.state_nonce(&value, "maple", "st", 1_000).as_deref(),
            Some("no")
        );
        assert_eq!(o.state_nonce(&value, "maple", "other", 1_000), None);
        assert_eq!(o.state_nonce(&value, "vermont", "st", 1_000), None);
        assert_eq!(o.state_nonce(&value, "maple", "st", 1_600), None, "expired");
        let too_long = state_cookie(&o, "maple", 5_000, "st", "no");
        assert_eq!(o.state_nonce(&too_long, "maple", "st", 1_000), None);
        assert_eq!(
            o.state_nonce("v1.1600.st.no.bad", "maple", "st", 1_000),
            None
        );
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// State cookie values: their own shape with any parts, or anything.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                (
                    "(v1|)",
                    "[0-9]{0,20}|\\PC{0,6}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_=+/-]{0,50}"
                )
                    .prop_map(|(v, e, s, n, t)| format!("{v}.{e}.{s}.{n}.{t}")),
                "\\PC{0,100}",
            ]
        }

        /// The provider as discovery would have found it, just now.
        fn with_provider(o: &Oidc) {
            let provider = Provider {
                discovery: Discovery {
                    issuer: "https://example.auth0.com".into(),
                    authorization_endpoint: "https://example.auth0.com/authorize".into(),
                    token_endpoint: "https://example.auth0.com/oauth/token".into(),
                    jwks_uri: "https://example.auth0.com/.well-known/jwks.json".into(),
                    userinfo_endpoint: None,
                },
                keys: JwkSet { keys: Vec::new() },
                fetched_at: o.clock.now(),
            };
            *o.provider.try_write().expect("no one else holds it") = Some(Arc::new(provider));
        }

        proptest! {
            #[test]
            fn any_value_is_refused_without_panicking(
                value in value(),
                tenant in "\\PC{0,12}",
                state in "\\PC{0,40}",
                // The clock's time (not outside data), up to the year 9999.
                now in 0u64..=253_402_300_799,
            ) {
                prop_assert_eq!(oidc().state_nonce(&value, &tenant, &state, now), None);
            }

            /// The cookie a login starts with gives its nonce back to the
            /// callback that carries its state, for its tenant only.
            #[test]
            fn an_issued_state_comes_back_to_its_callback(tenant in "\\PC{1,20}", other in "\\PC{1,20}") {
                let o = oidc();
                with_provider(&o);
                let mut headers = HeaderMap::new();
                let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
                let authorize = runtime.block_on(o.start(&tenant, &mut headers)).expect("a login starts");
                let url = url::Url::parse(&authorize).expect("a URL");
                let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
                let (state, nonce) = (param("state").expect("state"), param("nonce").expect("nonce"));
                let cookie = headers
                    .get_all(axum::http::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|v| cookie::Cookie::parse(v.to_string()).ok())
                    .find(|c| c.name() == STATE_COOKIE)
                    .expect("the state cookie");
                let now = unix_secs(o.clock.now());
                prop_assert_eq!(o.state_nonce(cookie.value(), &tenant, &state, now), Some(nonce));
                prop_assert_eq!(o.state_nonce(cookie.value(), &tenant, "another state", now), None);
                if other != tenant {
                    prop_assert_eq!(o.state_nonce(cookie.value(), &other, &state, now), None);
                }
                prop_assert_eq!(o.state_nonce(cookie.value(), &tenant, &state, now + STATE_TTL.as_secs() + 1), None);
            }
        }
    }
}
