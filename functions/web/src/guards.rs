//! The two route guards of `docs/http-api.md` (Guards), as extractors: put `View` or
//! `Mutate` first in a handler's arguments and the handler runs only for
//! requests that pass. They answer 401 (API auth; 429 when the client is
//! over its failure limit) before 403 / 503 (admin).

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use publisher::failures::Attempt;
use publisher::settings::{AuthMode, WebSettings};
use secrecy::ExposeSecret;

use crate::client_addr::client_address;
use crate::responses::{detail, too_many_failures};
use crate::signing::secrets_equal;
use crate::web_state::WebState;

/// Viewing images: anyone under auto-view, else an admin.
pub struct View;

/// Changing anything: the API credentials when configured, then an admin
/// when admin login is configured; closed when neither is, outside `WEB_DEBUG`.
pub struct Mutate;

impl<S: Send + Sync> FromRequestParts<S> for View {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let (state, tenant) = WebState::of(parts)?;
        if tenant.config.config.features.auto_view_enabled {
            return Ok(View);
        }
        if state.settings.web.auth_mode() == AuthMode::None {
            return Err(detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Image viewing requires admin mode but admin is not configured",
            ));
        }
        if !state
            .sessions
            .is_admin(&parts.headers, &tenant.config.tenant)
        {
            return Err(admin_required());
        }
        Ok(View)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Mutate {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let (state, tenant) = WebState::of(parts)?;
        let web = &state.settings.web;
        let api_auth = web.auth_token.is_some() || web.auth_basic.is_some();
        if api_auth {
            // Wrong API credentials are failures like wrong passwords.
            let client = client_address(parts);
            let tenant_id = &tenant.config.tenant;
            if let Attempt::Refused { retry_after } = state.failures.begin(&client, tenant_id).await
            {
                tracing::warn!(tenant = %tenant_id, client, "API call refused: too many failures");
                return Err(too_many_failures(retry_after));
            }
            if !api_credentials_match(web, &parts.headers) {
                tracing::info!(tenant = %tenant_id, client, "API credentials refused");
                return Err(unauthorized(web));
            }
            state.failures.succeeded(&client, tenant_id).await;
        }
        if web.auth_mode() != AuthMode::None {
            if !state
                .sessions
                .is_admin(&parts.headers, &tenant.config.tenant)
            {
                return Err(admin_required());
            }
        } else if !api_auth && !web.debug {
            return Err(detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Admin mode not configured",
            ));
        }
        Ok(Mutate)
    }
}

fn admin_required() -> Response {
    detail(StatusCode::FORBIDDEN, "Admin privileges required")
}

fn unauthorized(web: &WebSettings) -> Response {
    let mut response = detail(
        StatusCode::UNAUTHORIZED,
        "Invalid or missing API credentials",
    );
    let challenge = if web.auth_token.is_some() {
        "Bearer"
    } else {
        "Basic realm=\"publisher\", charset=\"UTF-8\""
    };
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// `Authorization: Bearer <WEB_AUTH_TOKEN>` or `Basic <WEB_AUTH_USER:WEB_AUTH_PASS>`,
/// compared in constant time.
pub fn api_credentials_match(web: &WebSettings, headers: &HeaderMap) -> bool {
    let Some((scheme, credentials)) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return web
            .auth_token
            .as_ref()
            .is_some_and(|token| secrets_equal(credentials, token.expose_secret()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let (Some((user, pass)), Some(decoded)) = (
            web.auth_basic.as_ref(),
            STANDARD
                .decode(credentials)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
        ) else {
            return false;
        };
        let Some((given_user, given_pass)) = decoded.split_once(':') else {
            return false;
        };
        // Both compared, so timing does not tell which one was wrong.
        let user_ok = secrets_equal(given_user, user);
        let pass_ok = secrets_equal(given_pass, pass.expose_secret());
        return user_ok & pass_ok;
    }
    false
}
