//! OIDC admin login against Auth0 (`docs/http-api.md`, OIDC login), on every
//! tenant host: discovery; the authorize redirect back to the request's own
//! host, with PKCE (`S256`), state and nonce kept in a signed 10-minute
//! cookie bound to the tenant and the host; the state used once by the whole
//! fleet; the code exchange with the PKCE verifier; id-token verification
//! against the provider's JWKS; a verified e-mail on the allowlist.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{AlgorithmFamily, DecodingKey, Validation};
use publisher::bounded::{self, OIDC};
use publisher::clock::Clock;
use publisher::settings::{Auth0Settings, WebSettings};
use publisher::single_use::SingleUse;
use publisher::table::Table;
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
/// An id token that claims to live longer than this is not a plausible one.
const MAX_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Why a login did not succeed: the `auth_error` the browser is sent back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    AccessDenied,
    NoEmail,
    EmailNotVerified,
    CallbackFailed,
    NotConfigured,
}

impl AuthError {
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::AccessDenied => "access_denied",
            AuthError::NoEmail => "no_email_provided",
            AuthError::EmailNotVerified => "email_not_verified",
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
    exp: u64,
    iat: Option<u64>,
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
    /// Login states already used, by any instance.
    used_states: SingleUse,
    clock: Clock,
}

/// What a login's state cookie keeps: the state sent to the provider, the
/// nonce the id token must carry, and the PKCE verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LoginState {
    state: String,
    nonce: String,
    verifier: String,
}

impl Oidc {
    pub fn new(
        settings: Auth0Settings,
        http: reqwest::Client,
        signer: Signer,
        web: &WebSettings,
        table: Option<Table>,
        clock: Clock,
    ) -> Self {
        Self {
            settings,
            http,
            signer,
            secure_cookies: web.secure_cookies,
            provider: RwLock::new(None),
            last_key_refresh: std::sync::Mutex::new(None),
            used_states: SingleUse::new(table, STATE_TTL, clock.clone()),
            clock,
        }
    }

    /// Where the provider sends the browser back: `AUTH0_CALLBACK_URL` with
    /// `{host}` replaced by the request's host, else the request's own
    /// `/auth/callback` (plain HTTP only when cookies are not `Secure`,
    /// i.e. local runs).
    fn redirect_uri(&self, host: &str) -> String {
        match &self.settings.callback_url {
            Some(template) => template.replace("{host}", host),
            None => {
                let scheme = if self.secure_cookies { "https" } else { "http" };
                format!("{scheme}://{host}/auth/callback")
            }
        }
    }

    /// The provider's authorize URL for a new login on `host`, with the
    /// state cookie that must come back with the callback.
    pub async fn start(
        &self,
        tenant: &str,
        host: &str,
        response: &mut HeaderMap,
    ) -> Result<String, AuthError> {
        let provider = self.provider(false).await?;
        let login = LoginState {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        };
        let expiry = unix_secs(self.clock.now()).saturating_add(STATE_TTL.as_secs());
        let value = self.state_cookie(tenant, host, expiry, &login);
        let mut url =
            url::Url::parse(&provider.discovery.authorization_endpoint).map_err(|error| {
                tracing::warn!(%error, "OIDC: the authorize endpoint is not a URL");
                AuthError::CallbackFailed
            })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(host))
            .append_pair("scope", "openid email profile")
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &pkce_challenge(&login.verifier))
            .append_pair("code_challenge_method", "S256");
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

    fn state_cookie(&self, tenant: &str, host: &str, expiry: u64, login: &LoginState) -> String {
        let expiry = expiry.to_string();
        let LoginState {
            state,
            nonce,
            verifier,
        } = login;
        let tag = self
            .signer
            .sign(&[STATE_PURPOSE, tenant, host, &expiry, state, nonce, verifier]);
        format!("v2.{expiry}.{state}.{nonce}.{verifier}.{tag}")
    }

    pub fn clear_state(&self, response: &mut HeaderMap) {
        cookies::clear(
            response,
            STATE_COOKIE,
            STATE_COOKIE_PATH,
            self.secure_cookies,
        );
    }

    /// Completes a login on `host`: the verified, allowlisted e-mail of the
    /// person who logged in.
    pub async fn finish(
        &self,
        tenant: &str,
        host: &str,
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
        let login = cookies::values(request, STATE_COOKIE)
            .iter()
            .find_map(|value| self.login_state(value, tenant, host, state, now))
            .ok_or_else(|| {
                tracing::info!("OIDC: missing, expired or mismatched login state");
                AuthError::CallbackFailed
            })?;
        // A replayed callback ends here, before the provider is asked.
        if !self.used_states.first_use(&login.state).await {
            tracing::warn!("OIDC: a login state came back a second time; refused");
            return Err(AuthError::CallbackFailed);
        }
        let provider = self.provider(false).await?;
        let tokens = self
            .exchange(&provider, code, &self.redirect_uri(host), &login.verifier)
            .await?;
        let claims = self.verify(provider, &tokens.id_token).await?;
        if claims.nonce.as_deref() != Some(login.nonce.as_str()) {
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
        // An address the provider has not verified proves nothing.
        if verified != Some(true) {
            tracing::info!("OIDC: login by an address the provider has not verified");
            return Err(AuthError::EmailNotVerified);
        }
        if !self.settings.admin_emails.contains(&email) {
            tracing::info!("OIDC: login by an address not on ADMIN_LOGIN_EMAILS");
            return Err(AuthError::AccessDenied);
        }
        Ok(email)
    }

    /// The login a state cookie keeps, when it is valid for `tenant`,
    /// `host` and `state` at `now`.
    fn login_state(
        &self,
        value: &str,
        tenant: &str,
        host: &str,
        state: &str,
        now: u64,
    ) -> Option<LoginState> {
        let parts: Vec<&str> = value.split('.').collect();
        let ["v2", expiry, cookie_state, nonce, verifier, tag] = parts[..] else {
            return None;
        };
        let live = expiry
            .parse::<u64>()
            .is_ok_and(|e| now < e && e <= now.saturating_add(STATE_TTL.as_secs()));
        let signed = self.signer.verify(
            &[
                STATE_PURPOSE,
                tenant,
                host,
                expiry,
                cookie_state,
                nonce,
                verifier,
            ],
            tag,
        );
        (live && signed && cookie_state == state).then(|| LoginState {
            state: cookie_state.to_string(),
            nonce: nonce.to_string(),
            verifier: verifier.to_string(),
        })
    }

    async fn exchange(
        &self,
        provider: &Provider,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, AuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose_secret()),
            ("code_verifier", verifier),
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
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                tracing::info!(%error, "OIDC: id token rejected");
                AuthError::CallbackFailed
            })?;
        if !plausible_times(&claims, unix_secs(self.clock.now())) {
            tracing::info!("OIDC: id token with implausible times rejected");
            return Err(AuthError::CallbackFailed);
        }
        Ok(claims)
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

/// `exp` no further ahead than an id token lives, `iat` not in the future.
fn plausible_times(claims: &IdClaims, now: u64) -> bool {
    let latest_exp = now.saturating_add(MAX_ID_TOKEN_LIFETIME.as_secs() + LEEWAY_SECONDS);
    let latest_iat = now.saturating_add(LEEWAY_SECONDS);
    claims.exp <= latest_exp && claims.iat.is_none_or(|iat| iat <= latest_iat)
}

/// PKCE's `S256` challenge: BASE64URL(SHA-256(verifier)), unpadded.
fn pkce_challenge(verifier: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
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
            callback_url: None,
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
            used_states: SingleUse::new(None, STATE_TTL, Clock::system()),
            clock: Clock::system(),
        }
    }

    fn login() -> LoginState {
        LoginState {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "ve".into(),
        }
    }

    #[test]
    fn state_cookie_binds_tenant_host_state_and_time() {
        let o = oidc();
        let host = "maple.shibari.photo";
        let value = o.state_cookie("maple", host, 1_600, &login());
        assert_eq!(
            o.login_state(&value, "maple", host, "st", 1_000),
            Some(login())
        );
        assert_eq!(o.login_state(&value, "maple", host, "other", 1_000), None);
        assert_eq!(o.login_state(&value, "vermont", host, "st", 1_000), None);
        assert_eq!(
            o.login_state(&value, "maple", "vermont.shibari.photo", "st", 1_000),
            None,
            "another host"
        );
        assert_eq!(
            o.login_state(&value, "maple", host, "st", 1_600),
            None,
            "expired"
        );
        let too_long = o.state_cookie("maple", host, 5_000, &login());
        assert_eq!(o.login_state(&too_long, "maple", host, "st", 1_000), None);
        assert_eq!(
            o.login_state("v2.1600.st.no.ve.bad", "maple", host, "st", 1_000),
            None
        );
    }

    #[test]
    fn pkce_challenge_is_rfc_7636s_s256() {
        // The example of RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn implausible_token_times_are_refused() {
        let claims = |exp: u64, iat: Option<u64>| IdClaims {
            nonce: None,
            email: None,
            email_verified: None,
            exp,
            iat,
        };
        let now = 1_700_000_000;
        assert!(plausible_times(&claims(now + 3600, Some(now)), now));
        assert!(!plausible_times(&claims(u64::MAX, Some(now)), now));
        assert!(!plausible_times(&claims(now + 3600, Some(now + 7200)), now));
        assert!(plausible_times(&claims(now + 3600, None), now));
    }

    #[test]
    fn the_redirect_uri_follows_the_request_host() {
        let mut o = oidc();
        assert_eq!(
            o.redirect_uri("maple.shibari.photo"),
            "https://maple.shibari.photo/auth/callback"
        );
        o.settings.callback_url = Some("https://{host}/login/done".into());
        assert_eq!(
            o.redirect_uri("vermont.shibari.photo"),
            "https://vermont.shibari.photo/login/done"
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
                    "(v2|v1|)",
                    "[0-9]{0,20}|\\PC{0,6}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_=+/-]{0,50}"
                )
                    .prop_map(|(v, e, s, n, p, t)| format!("{v}.{e}.{s}.{n}.{p}.{t}")),
                "\\PC{0,120}",
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
                host in "\\PC{0,20}",
                state in "\\PC{0,40}",
                // The clock's time (not outside data), up to the year 9999.
                now in 0u64..=253_402_300_799,
            ) {
                prop_assert_eq!(oidc().login_state(&value, &tenant, &host, &state, now), None);
            }

            /// The cookie a login starts with gives its state, nonce and
            /// PKCE verifier back to the callback that carries its state,
            /// for its tenant and host only, until it expires.
            #[test]
            fn an_issued_state_comes_back_to_its_callback(
                tenant in "\\PC{1,20}",
                other in "\\PC{1,20}",
                host in "[a-z0-9]{1,10}\\.shibari\\.photo",
            ) {
                let o = oidc();
                with_provider(&o);
                let mut headers = HeaderMap::new();
                let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
                let authorize = runtime.block_on(o.start(&tenant, &host, &mut headers)).expect("a login starts");
                let url = url::Url::parse(&authorize).expect("a URL");
                let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
                let state = param("state").expect("state");
                let cookie = headers
                    .get_all(axum::http::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|v| cookie::Cookie::parse(v.to_string()).ok())
                    .find(|c| c.name() == STATE_COOKIE)
                    .expect("the state cookie");
                let now = unix_secs(o.clock.now());
                let login = o.login_state(cookie.value(), &tenant, &host, &state, now).expect("the login");
                prop_assert_eq!(Some(login.nonce.clone()), param("nonce"));
                prop_assert_eq!(Some(pkce_challenge(&login.verifier)), param("code_challenge"));
                prop_assert_eq!(o.login_state(cookie.value(), &tenant, &host, "another state", now), None);
                prop_assert_eq!(o.login_state(cookie.value(), &tenant, "other.example", &state, now), None);
                if other != tenant {
                    prop_assert_eq!(o.login_state(cookie.value(), &other, &host, &state, now), None);
                }
                let later = now + STATE_TTL.as_secs() + 1;
                prop_assert_eq!(o.login_state(cookie.value(), &tenant, &host, &state, later), None);
            }
        }
    }
}
