//! A tenant's credential checks: which roles are due, the checks
//! themselves (the secret dropped at once), and their record in the table.

use std::collections::BTreeMap;
use std::time::Duration;

use publisher::app::App;
use publisher::config::RuntimeConfig;
use publisher::metrics::{self, Metric};
use publisher::secrets::Role;
use publisher::source::Orchestrated;
use publisher::table::{CredentialCheck, RecordedCheck};

use crate::plan::Budget;

/// Is `role`'s check due: never checked, checked for another config
/// version, failed last time (so that a fixed credential is seen at the next
/// run, and a broken one keeps its alarm), or older than `every`?
fn due(
    recorded: Option<&RecordedCheck>,
    config: &RuntimeConfig,
    app: &App,
    every: Duration,
) -> bool {
    let Some(check) = recorded else {
        return true;
    };
    !check.ok
        || check.config_version.as_deref() != Some(config.config_version.as_str())
        || app.clock.since(check.checked_at) >= every
}

/// Checks the credentials of `config` that are due (all of them when
/// `forced`, or when the table cannot say), at once; records the outcomes
/// and forgets the checks of roles the tenant no longer uses. Answers the
/// outcome per role checked.
pub(crate) async fn check_due(
    app: &App,
    orchestrated: &Orchestrated,
    config: &RuntimeConfig,
    forced: bool,
    budget: &Budget,
    request_id: &str,
) -> BTreeMap<&'static str, String> {
    let recorded: Option<Vec<RecordedCheck>> = match (&app.table, forced) {
        (Some(table), false) => match table.credential_checks(&config.tenant).await {
            Ok(recorded) => Some(recorded),
            Err(error) => {
                tracing::warn!(request_id, tenant = %config.tenant, %error, "cannot read the credential checks; checking every role");
                None
            }
        },
        _ => None,
    };
    let find = |role: Role| recorded.as_ref()?.iter().find(|c| c.role == role);
    let every = app.settings.warmup.credential_check;
    let (used, unused): (Vec<Role>, Vec<Role>) = Role::ALL
        .into_iter()
        .partition(|&role| config.config.credential_ref(role).is_some());
    let mut due_roles: Vec<Role> = used
        .into_iter()
        .filter(|&role| recorded.is_none() || due(find(role), config, app, every))
        .collect();
    if !due_roles.is_empty() && !budget.checks(due_roles.len()) {
        tracing::debug!(request_id, tenant = %config.tenant, "credential checks wait for a later run");
        due_roles.clear();
    }
    // Without a record to go by, every unused role may have an old check.
    let dropped: Vec<Role> = unused
        .into_iter()
        .filter(|&role| recorded.is_none() || find(role).is_some())
        .collect();
    let checks = futures::future::join_all(due_roles.into_iter().map(|role| async move {
        let error = orchestrated
            .check_credential(config, role, request_id)
            .await
            .err();
        if let Some(kind) = error {
            tracing::warn!(
                request_id, host = %config.host, tenant = %config.tenant, %role, error = %kind,
                "credential check failed"
            );
            metrics::record(Metric::CredentialCheckFailed {
                tenant: &config.tenant,
                role,
            });
        }
        CredentialCheck {
            role,
            error,
            checked_at: app.clock.now(),
            config_version: config.config_version.clone(),
        }
    }))
    .await;
    if let Some(table) = app
        .table
        .as_ref()
        .filter(|_| !checks.is_empty() || !dropped.is_empty())
    {
        if let Err(error) = table
            .record_credential_checks(&config.tenant, &checks, &dropped, &app.clock)
            .await
        {
            tracing::warn!(request_id, host = %config.host, tenant = %config.tenant, %error, "cannot record the credential checks");
        }
    }
    checks
        .iter()
        .map(|check| {
            let status = check
                .error
                .map_or_else(|| "ok".to_string(), |kind| kind.to_string());
            (check.role.as_str(), status)
        })
        .collect()
}
