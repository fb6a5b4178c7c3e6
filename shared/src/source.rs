//! Where a host's configuration and its tenant's credentials come from:
//! the environment (standalone) or the orchestrator behind the caches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use crate::cache::{
    Counter, Counters, CredentialCache, CredentialKey, Flight, RuntimeCache, RuntimeEntry,
    SingleFlight,
};
use crate::config::{parse_envelope, ConfigError, TenantConfig};
use crate::orchestrator::{Envelope, OrchestratorClient};
use crate::secrets::{credential_for, Credential, CredentialErrorKind, Role};
use crate::settings::{CacheSettings, OrchestratorSettings};

/// A host's configuration as served: the parsed config and when it is fresh.
#[derive(Debug)]
pub struct RuntimeConfig {
    /// The normalized host it was looked up by.
    pub host: String,
    /// The envelope's tenant: keys service sets, state and admin cookies.
    pub tenant: String,
    /// The host-derived tenant, sent as `X-Tenant` on credential calls.
    pub host_tenant: String,
    pub config_version: String,
    /// Clamped runtime TTL.
    pub ttl: Duration,
    pub config: TenantConfig,
    /// The envelope as fetched (standalone: empty).
    pub envelope: Envelope,
    pub fetched_at: SystemTime,
    pub fresh_until: SystemTime,
}

impl RuntimeConfig {
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until
    }

    /// May this copy still be served while the orchestrator is failing?
    pub fn within_max_stale(&self, now: SystemTime, max_stale: Duration) -> bool {
        now < self.fresh_until + max_stale
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("tenant not found")]
    NotFound,
    #[error("orchestrator unavailable")]
    Unavailable,
    #[error(transparent)]
    Configuration(#[from] ConfigError),
}

pub enum ConfigSource {
    Standalone(Standalone),
    Orchestrated(Arc<Orchestrated>),
}

pub struct Standalone {
    host: Option<String>,
    config: Arc<RuntimeConfig>,
    secrets: BTreeMap<&'static str, SecretString>,
}

impl Standalone {
    /// `host`: the only host served, when set (`STANDALONE_HOST`).
    pub fn new(
        host: Option<String>,
        config: TenantConfig,
        secrets: BTreeMap<&'static str, SecretString>,
    ) -> Self {
        let now = SystemTime::now();
        let config = RuntimeConfig {
            host: host.clone().unwrap_or_default(),
            tenant: "default".into(),
            host_tenant: "default".into(),
            config_version: "standalone".into(),
            ttl: Duration::MAX,
            config,
            envelope: Envelope::new(),
            fetched_at: now,
            fresh_until: now + Duration::from_secs(100 * 365 * 24 * 3600),
        };
        Self {
            host,
            config: Arc::new(config),
            secrets,
        }
    }
}

pub struct Orchestrated {
    client: OrchestratorClient,
    cache: CacheSettings,
    base_domain: String,
    runtime: RuntimeCache,
    runtime_flights: SingleFlight<String, Result<Arc<RuntimeConfig>, SourceError>>,
    credentials: CredentialCache,
    credential_flights: SingleFlight<CredentialKey, Result<Arc<Credential>, CredentialErrorKind>>,
    counters: Arc<Counters>,
}

impl Orchestrated {
    pub fn new(
        settings: &OrchestratorSettings,
        cache: &CacheSettings,
        base_domain: &str,
        http: reqwest::Client,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            client: OrchestratorClient::new(settings, http, counters.clone()),
            runtime: RuntimeCache::new(cache.runtime_max_size, cache.max_stale, cache.negative_ttl),
            runtime_flights: SingleFlight::default(),
            credentials: CredentialCache::new(
                cache.credential_cache_enabled,
                cache.credential_max_size,
            ),
            credential_flights: SingleFlight::default(),
            cache: cache.clone(),
            base_domain: base_domain.to_string(),
            counters,
        }
    }

    async fn runtime_config(
        self: &Arc<Self>,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        let now = SystemTime::now();
        let stale = match self.runtime.get(host) {
            Some(RuntimeEntry::NotFound) => {
                self.counters.incr(Counter::RuntimeNegativeHit);
                return Err(SourceError::NotFound);
            }
            Some(RuntimeEntry::Found(config)) if config.is_fresh(now) => {
                self.counters.incr(Counter::RuntimeHit);
                return Ok(config);
            }
            Some(RuntimeEntry::Found(config)) => Some(config),
            None => None,
        };
        self.counters.incr(Counter::RuntimeMiss);
        let this = Arc::clone(self);
        let (owned_host, owned_id) = (host.to_string(), request_id.to_string());
        let (result, _) = self
            .runtime_flights
            .run(host.to_string(), async move {
                this.fetch_runtime(&owned_host, &owned_id).await
            })
            .await;
        match result.unwrap_or(Err(SourceError::Unavailable)) {
            Err(SourceError::Unavailable) => match stale {
                Some(config)
                    if config.within_max_stale(SystemTime::now(), self.cache.max_stale) =>
                {
                    self.counters.incr(Counter::RuntimeStaleServe);
                    tracing::warn!(
                        request_id,
                        tenant = %config.tenant,
                        config_version = %config.config_version,
                        "orchestrator unavailable; serving a stale runtime config"
                    );
                    Ok(config)
                }
                _ => Err(SourceError::Unavailable),
            },
            other => other,
        }
    }

    async fn fetch_runtime(
        &self,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        let fetched = self
            .client
            .runtime_by_host(host, request_id)
            .await
            .map_err(|_| SourceError::Unavailable)?;
        let parsed = match fetched {
            Some(envelope) => parse_envelope(&envelope)
                .inspect_err(
                    |e| tracing::error!(request_id, host, error = %e, "unusable runtime config"),
                )?
                .map(|parsed| (parsed, envelope)),
            None => None,
        };
        let Some((parsed, envelope)) = parsed else {
            // Not found, or not a publisher tenant: remembered in memory only.
            self.runtime.insert(host, RuntimeEntry::NotFound);
            return Err(SourceError::NotFound);
        };
        let fetched_at = SystemTime::now();
        let ttl = self.cache.runtime_ttl(parsed.ttl_seconds);
        let config = Arc::new(RuntimeConfig {
            host: host.to_string(),
            tenant: parsed.tenant,
            host_tenant: crate::host::tenant_of(host, &self.base_domain),
            config_version: parsed.config_version,
            ttl,
            config: parsed.config,
            envelope,
            fetched_at,
            fresh_until: fetched_at + ttl,
        });
        self.runtime
            .insert(host, RuntimeEntry::Found(config.clone()));
        Ok(config)
    }

    async fn credential(
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

impl ConfigSource {
    /// The configuration of a validated, normalized host.
    pub async fn runtime_config(
        &self,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        match self {
            ConfigSource::Standalone(s) => match &s.host {
                Some(only) if only != host => Err(SourceError::NotFound),
                _ => Ok(s.config.clone()),
            },
            ConfigSource::Orchestrated(o) => o.runtime_config(host, request_id).await,
        }
    }

    /// Resolves the credential `config` names for `role`.
    pub async fn credential(
        &self,
        config: &RuntimeConfig,
        role: Role,
        request_id: &str,
    ) -> Result<Arc<Credential>, CredentialErrorKind> {
        match self {
            ConfigSource::Standalone(s) => {
                let name = config
                    .config
                    .credential_ref(role)
                    .ok_or(CredentialErrorKind::NotFound)?;
                let secret = s
                    .secrets
                    .get(name.expose())
                    .ok_or(CredentialErrorKind::NotFound)?;
                Ok(Arc::new(credential_for(role, secret.clone())))
            }
            ConfigSource::Orchestrated(o) => o.credential(config, role, request_id).await,
        }
    }

    /// Readiness: standalone is always ready; orchestrated is ready when the
    /// orchestrator answers a lookup of `healthcheck.<base domain>` (200 or 404).
    pub async fn ready(&self, request_id: &str) -> bool {
        match self {
            ConfigSource::Standalone(_) => true,
            ConfigSource::Orchestrated(o) => {
                let probe = format!("healthcheck.{}", o.base_domain);
                o.client.runtime_by_host(&probe, request_id).await.is_ok()
            }
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            ConfigSource::Standalone(_) => "standalone",
            ConfigSource::Orchestrated(_) => "orchestrated",
        }
    }
}
