//! Credential resolution in orchestrated mode: cached in memory per tenant,
//! configuration version and reference, one resolution in flight per key;
//! and the warmup's uncached check.

use std::sync::Arc;

use super::Orchestrated;
use crate::cache::{CredentialKey, Flight};
use crate::config::RuntimeConfig;
use crate::metrics::Counter;
use crate::secrets::{Credential, CredentialErrorKind, Role};

impl Orchestrated {
    /// Resolves `role`'s credential of `config` straight from the orchestrator,
    /// bypassing and not filling the cache, and drops the secret at once.
    pub async fn check_credential(
        &self,
        config: &RuntimeConfig,
        role: Role,
        request_id: &str,
    ) -> Result<(), CredentialErrorKind> {
        let cref = config
            .config
            .credential_ref(role)
            .ok_or(CredentialErrorKind::NotFound)?;
        self.client
            .resolve_credential(&config.host_tenant, role, cref, request_id)
            .await
            .map(drop)
    }

    pub(super) async fn credential(
        self: &Arc<Self>,
        config: &RuntimeConfig,
        role: Role,
        request_id: &str,
    ) -> Result<Arc<Credential>, CredentialErrorKind> {
        let cref = config
            .config
            .credential_ref(role)
            .ok_or(CredentialErrorKind::NotFound)?
            .clone();
        let key = CredentialKey {
            tenant: config.tenant.clone(),
            config_version: config.config_version.clone(),
            role,
            cref,
        };
        if let Some(credential) = self.credentials.get(&key) {
            self.counters.incr(Counter::CredentialHit);
            return Ok(credential);
        }
        self.counters.incr(Counter::CredentialMiss);
        let this = Arc::clone(self);
        let (host_tenant, owned_id, ttl) = (
            config.host_tenant.clone(),
            request_id.to_string(),
            config.ttl,
        );
        let flight_key = key.clone();
        let (result, flight) = self
            .credential_flights
            .run(flight_key, async move {
                let resolved = this
                    .client
                    .resolve_credential(&host_tenant, role, &key.cref, &owned_id)
                    .await
                    .map(Arc::new);
                match &resolved {
                    Ok(credential) => {
                        let ttl = ttl.min(this.cache.credential_ttl);
                        this.credentials.insert(key, credential.clone(), ttl);
                    }
                    Err(kind) => {
                        // A rejected reference is dropped at once and never reused.
                        this.credentials.remove(&key);
                        tracing::warn!(request_id = %owned_id, tenant = %key.tenant, %role, error = %kind, "credential resolution failed");
                    }
                }
                resolved
            })
            .await;
        if flight == Flight::Joined {
            self.counters.incr(Counter::CredentialCoalesced);
        }
        result.unwrap_or(Err(CredentialErrorKind::Unavailable))
    }
}
