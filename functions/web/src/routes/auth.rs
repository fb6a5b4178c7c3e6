//! `/auth/*`: OIDC admin login. Every failure is a redirect to
//! `/?auth_error=<reason>`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use publisher::tenant::TenantContext;

use crate::oidc::{AuthError, CallbackParams};
use crate::web_state::WebState;
use crate::RequestId;

pub async fn login(
    Extension(state): Extension<Arc<WebState>>,
    Extension(tenant): Extension<TenantContext>,
    request: HeaderMap,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return failed(AuthError::NotConfigured);
    };
    let host = request_host(&request, &tenant);
    let mut headers = HeaderMap::new();
    match oidc.start(&tenant.config.tenant, &host, &mut headers).await {
        Ok(authorize_url) => (headers, Redirect::to(&authorize_url)).into_response(),
        Err(error) => failed(error),
    }
}

pub async fn callback(
    Extension(state): Extension<Arc<WebState>>,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    params: Result<Query<CallbackParams>, QueryRejection>,
    request: HeaderMap,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return failed(AuthError::NotConfigured);
    };
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let tenant_id = &tenant.config.tenant;
    let host = request_host(&request, &tenant);
    let mut response = match oidc.finish(tenant_id, &host, &params, &request).await {
        Ok(_) => {
            tracing::info!(request_id = id.0, tenant = %tenant_id, "admin logged in through OIDC");
            let mut response = Redirect::to("/").into_response();
            state.sessions.grant(response.headers_mut(), tenant_id);
            response
        }
        Err(error) => {
            tracing::info!(request_id = id.0, tenant = %tenant_id, reason = error.reason(), "OIDC login failed");
            failed(error)
        }
    };
    // The state is single-use, whatever the outcome.
    oidc.clear_state(response.headers_mut());
    response
}

pub async fn logout(Extension(state): Extension<Arc<WebState>>) -> Response {
    let mut response = Redirect::to("/").into_response();
    state.sessions.revoke(response.headers_mut());
    response
}

/// The host the browser asked for, port included (the redirect URI must
/// name it exactly); the tenant's normalized host when the header is not a
/// plain host.
fn request_host(headers: &HeaderMap, tenant: &TenantContext) -> String {
    let plain = |host: &&str| {
        let (name, port) = host.split_once(':').unwrap_or((host, "0"));
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && port.parse::<u16>().is_ok()
    };
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| plain(&h.as_str()))
        .unwrap_or_else(|| tenant.host.clone())
}

fn failed(error: AuthError) -> Response {
    let reason: String = url::form_urlencoded::byte_serialize(error.reason().as_bytes()).collect();
    Redirect::to(&format!("/?auth_error={reason}")).into_response()
}
