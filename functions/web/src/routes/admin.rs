//! `/api/admin/*`: the admin status, password login and logout.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use publisher::failures::Attempt;
use publisher::tenant::TenantContext;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::client_addr::ClientAddress;
use crate::responses::{detail, too_many_failures};
use crate::signing::secrets_equal;
use crate::web_state::WebState;
use crate::RequestId;

pub async fn status(
    Extension(state): Extension<Arc<WebState>>,
    Extension(tenant): Extension<TenantContext>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let admin = state.sessions.is_admin(&headers, &tenant.config.tenant);
    Json(json!({"admin": admin, "error": null}))
}

#[derive(Deserialize)]
struct LoginBody {
    password: String,
}

pub async fn login(
    Extension(state): Extension<Arc<WebState>>,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    ClientAddress(client): ClientAddress,
    body: Bytes,
) -> Response {
    let Some(password) = &state.settings.web.admin_password else {
        return detail(StatusCode::NOT_FOUND, "Legacy login not enabled");
    };
    let tenant_id = &tenant.config.tenant;
    if let Attempt::Refused { retry_after } = state.failures.begin(&client, tenant_id).await {
        tracing::warn!(request_id = id.0, tenant = %tenant_id, client, "admin login refused: too many failures");
        return too_many_failures(retry_after);
    }
    let given = serde_json::from_slice::<LoginBody>(&body).ok();
    let matches = given
        .as_ref()
        .is_some_and(|g| secrets_equal(&g.password, password.expose_secret()));
    if !matches {
        tracing::info!(request_id = id.0, tenant = %tenant_id, client, "admin login failed");
        return match given {
            Some(_) => detail(StatusCode::UNAUTHORIZED, "Invalid password"),
            None => detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Body must be JSON: {\"password\": \"...\"}",
            ),
        };
    }
    state.failures.succeeded(&client, tenant_id).await;
    tracing::info!(request_id = id.0, tenant = %tenant_id, client, "admin logged in");
    let mut response = Json(json!({"admin": true, "error": null})).into_response();
    state.sessions.grant(response.headers_mut(), tenant_id);
    response
}

pub async fn logout(Extension(state): Extension<Arc<WebState>>) -> Response {
    let mut response = Json(json!({"admin": false, "error": null})).into_response();
    state.sessions.revoke(response.headers_mut());
    response
}
