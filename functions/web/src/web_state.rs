//! What the web function keeps beside the shared `App`: the admin sessions,
//! the login limiter and the OIDC client. Built once per router and handed to
//! handlers as an extension.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::response::Response;
use publisher::app::App;
use publisher::failures::FailureLimits;
use publisher::settings::Settings;
use publisher::tenant::TenantContext;

use crate::admin_session::AdminSessions;
use crate::oidc::Oidc;
use crate::responses;
use crate::routes::Readiness;
use crate::signing::Signer;

pub struct WebState {
    pub settings: Arc<Settings>,
    pub sessions: AdminSessions,
    /// Login and API-credential failures, counted for the fleet.
    pub failures: FailureLimits,
    /// Present when Auth0 is configured.
    pub oidc: Option<Oidc>,
    /// The last answer of the readiness probe.
    pub readiness: Readiness,
}

impl WebState {
    pub fn new(app: &App) -> Self {
        let web = &app.settings.web;
        let signer = Signer::from_settings(web);
        Self {
            settings: app.settings.clone(),
            sessions: AdminSessions::new(signer.clone(), web, app.clock.clone()),
            failures: FailureLimits::new(app.table.clone(), app.clock.clone()),
            oidc: web.auth0.as_ref().map(|auth0| {
                Oidc::new(
                    auth0.clone(),
                    app.http.clone(),
                    signer,
                    web,
                    app.table.clone(),
                    app.clock.clone(),
                )
            }),
            readiness: Readiness::default(),
        }
    }

    /// The state and tenant of a request behind the tenant layer.
    pub fn of(parts: &Parts) -> Result<(Arc<WebState>, TenantContext), Response> {
        let state = parts.extensions.get::<Arc<WebState>>().cloned();
        let tenant = parts.extensions.get::<TenantContext>().cloned();
        match (state, tenant) {
            (Some(state), Some(tenant)) => Ok((state, tenant)),
            // Only a router assembled without its layers gets here.
            _ => Err(responses::unavailable()),
        }
    }
}
