//! Where a host's configuration and its tenant's credentials come from:
//! the environment (standalone) or the orchestrator behind the caches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use crate::cache::{
    Counter, Counters, CredentialCache, CredentialKey, Flight, Lease, RuntimeCache, RuntimeEntry,
    RuntimeItem, RuntimeTier, SingleFlight, TierError,
};
use crate::config::{parse_envelope, ConfigError, RuntimeEnvelope, TenantConfig};
use crate::dynamo::Table;
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
    /// The DynamoDB tier, when `PUBLISHER_TABLE` is set.
    tier: Option<RuntimeTier>,
    /// How long a refresh may take: the lease other instances respect.
    lease_window: Duration,
    /// How long an instance without any copy waits for another's refresh.
    lease_wait: Duration,
    credentials: CredentialCache,
    credential_flights: SingleFlight<CredentialKey, Result<Arc<Credential>, CredentialErrorKind>>,
    counters: Arc<Counters>,
}

/// How often an instance waiting for another's refresh looks at the table.
const LEASE_POLL: Duration = Duration::from_millis(50);

/// What a forced refresh (the warmup) found.
#[derive(Debug)]
pub enum Refresh {
    /// The config, and whether its version differs from the copy held before
    /// (the table's, else this instance's memory; no copy counts as a change).
    Found {
        config: Arc<RuntimeConfig>,
        version_changed: bool,
    },
    /// The orchestrator does not know the host (any copy was deleted);
    /// `existed`: there was a copy.
    NotFound { existed: bool },
}

/// An orchestrator lookup, as written to memory and the table.
struct Fetched {
    result: Result<Arc<RuntimeConfig>, SourceError>,
    /// The `config_version` of the table's copy it replaced or deleted.
    replaced: Option<String>,
}

impl Fetched {
    fn failed(error: SourceError) -> Self {
        Self {
            result: Err(error),
            replaced: None,
        }
    }
}

/// Whose turn it is to refresh a host whose copies are stale or missing.
enum Turn {
    /// This instance calls the orchestrator, holding the lease or not.
    Refresh { leased: bool },
    /// Another instance refreshes: use this copy meanwhile, or its result.
    Use(Arc<RuntimeConfig>),
    /// Another instance found the orchestrator unavailable within the window.
    Unavailable,
}

impl Orchestrated {
    pub fn new(
        settings: &OrchestratorSettings,
        cache: &CacheSettings,
        base_domain: &str,
        http: reqwest::Client,
        counters: Arc<Counters>,
    ) -> Self {
        // Every attempt may time out, plus the backoff between them.
        let lease_window = settings
            .timeout
            .saturating_mul(settings.max_attempts.max(1))
            .saturating_add(Duration::from_secs(5));
        Self {
            client: OrchestratorClient::new(settings, http, counters.clone()),
            runtime: RuntimeCache::new(cache.runtime_max_size, cache.max_stale, cache.negative_ttl),
            runtime_flights: SingleFlight::default(),
            tier: None,
            lease_window,
            lease_wait: settings.timeout,
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

    /// Adds the DynamoDB tier on `table`.
    pub fn with_table(mut self, table: Table) -> Self {
        self.tier = Some(RuntimeTier::new(table, self.cache.max_stale));
        self
    }

    pub fn tier(&self) -> Option<&RuntimeTier> {
        self.tier.as_ref()
    }

    /// Fresh memory, else (once per host and instance) the table, another
    /// instance's refresh or the orchestrator; stale copies within max-stale
    /// while the orchestrator fails or another instance refreshes.
    async fn runtime_config(
        self: &Arc<Self>,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        let now = SystemTime::now();
        match self.runtime.get(host) {
            Some(RuntimeEntry::NotFound) => {
                self.counters.incr(Counter::RuntimeNegativeHit);
                return Err(SourceError::NotFound);
            }
            Some(RuntimeEntry::Found(config)) if config.is_fresh(now) => {
                self.counters.incr(Counter::RuntimeHit);
                return Ok(config);
            }
            _ => {}
        }
        self.counters.incr(Counter::RuntimeMiss);
        let this = Arc::clone(self);
        let (owned_host, owned_id) = (host.to_string(), request_id.to_string());
        let (result, _) = self
            .runtime_flights
            .run(host.to_string(), async move {
                this.load(&owned_host, &owned_id).await
            })
            .await;
        let result = result.unwrap_or(Err(SourceError::Unavailable));
        if matches!(&result, Ok(config) if !config.is_fresh(now)) {
            self.counters.incr(Counter::RuntimeStaleServe);
        }
        result
    }

    /// The slow path of one lookup, shared by the instance's concurrent callers.
    async fn load(&self, host: &str, request_id: &str) -> Result<Arc<RuntimeConfig>, SourceError> {
        let memory = match self.runtime.get(host) {
            Some(RuntimeEntry::Found(config)) => Some(config),
            _ => None,
        };
        let Some(tier) = &self.tier else {
            return self.refresh_or_stale(host, request_id, memory).await;
        };
        let table = self.table_copy(tier, host, request_id, false).await;
        if let Some(config) = table.as_ref().filter(|c| c.is_fresh(SystemTime::now())) {
            self.counters.incr(Counter::RuntimeDynamoHit);
            self.runtime
                .insert(host, RuntimeEntry::Found(config.clone()));
            return Ok(config.clone());
        }
        let stale = newest(memory, table)
            .filter(|c| c.within_max_stale(SystemTime::now(), self.cache.max_stale));
        match self.take_turn(tier, host, request_id, stale.clone()).await {
            Turn::Use(config) => {
                if !config.is_fresh(SystemTime::now()) {
                    tracing::debug!(
                        request_id,
                        host,
                        "another instance is refreshing; serving the stale copy"
                    );
                }
                self.runtime
                    .insert(host, RuntimeEntry::Found(config.clone()));
                Ok(config)
            }
            Turn::Unavailable => {
                tracing::warn!(
                    request_id,
                    host,
                    "orchestrator found unavailable by another instance; no copy to serve"
                );
                Err(SourceError::Unavailable)
            }
            Turn::Refresh { leased } => {
                let result = self.refresh_or_stale(host, request_id, stale).await;
                if leased {
                    // An outage keeps the lease, marked, until it runs out:
                    // the fleet's backoff. Otherwise the others may go on.
                    let outage = match &result {
                        Ok(config) => !config.is_fresh(SystemTime::now()),
                        Err(error) => *error == SourceError::Unavailable,
                    };
                    let released = if outage {
                        tier.mark_failed(host).await
                    } else {
                        tier.release(host).await
                    };
                    if let Err(error) = released {
                        self.tier_failed(host, request_id, &error);
                    }
                }
                result
            }
        }
    }

    /// Decides who refreshes `host`: this instance when it gets the lease;
    /// otherwise it serves `stale`, or waits a little for the holder's result.
    async fn take_turn(
        &self,
        tier: &RuntimeTier,
        host: &str,
        request_id: &str,
        stale: Option<Arc<RuntimeConfig>>,
    ) -> Turn {
        let give_up = tokio::time::Instant::now() + self.lease_wait;
        loop {
            match tier.try_lease(host, self.lease_window).await {
                Err(error) => {
                    self.tier_failed(host, request_id, &error);
                    return Turn::Refresh { leased: false };
                }
                Ok(Lease::Acquired) => {
                    // Another instance may have refreshed between our read
                    // and the lease: its copy saves the call.
                    return match self.table_copy(tier, host, request_id, true).await {
                        Some(config) if config.is_fresh(SystemTime::now()) => {
                            if let Err(error) = tier.release(host).await {
                                self.tier_failed(host, request_id, &error);
                            }
                            self.counters.incr(Counter::RuntimeDynamoHit);
                            Turn::Use(config)
                        }
                        _ => Turn::Refresh { leased: true },
                    };
                }
                Ok(Lease::Held { failed }) => {
                    if let Some(config) = stale {
                        return Turn::Use(config);
                    }
                    if failed {
                        return Turn::Unavailable;
                    }
                }
            }
            if tokio::time::Instant::now() >= give_up {
                // The holder is slow or gone: do not keep the request waiting.
                return Turn::Refresh { leased: false };
            }
            tokio::time::sleep(LEASE_POLL).await;
            if let Some(config) = self.table_copy(tier, host, request_id, true).await {
                if config.is_fresh(SystemTime::now()) {
                    self.counters.incr(Counter::RuntimeDynamoHit);
                    return Turn::Use(config);
                }
            }
        }
    }

    /// Calls the orchestrator; on an outage, serves `stale` when it is within
    /// max-stale.
    async fn refresh_or_stale(
        &self,
        host: &str,
        request_id: &str,
        stale: Option<Arc<RuntimeConfig>>,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        match self.fetch_runtime(host, request_id).await.result {
            Err(SourceError::Unavailable) => match stale {
                Some(config)
                    if config.within_max_stale(SystemTime::now(), self.cache.max_stale) =>
                {
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

    /// One orchestrator lookup, written to memory and the table (a 404 is
    /// remembered in memory only, and deletes the table's copy).
    async fn fetch_runtime(&self, host: &str, request_id: &str) -> Fetched {
        let fetched = match self.client.runtime_by_host(host, request_id).await {
            Ok(fetched) => fetched,
            Err(_) => return Fetched::failed(SourceError::Unavailable),
        };
        let parsed = match fetched {
            Some(envelope) => match parse_envelope(&envelope) {
                Ok(parsed) => parsed.map(|parsed| (parsed, envelope)),
                Err(error) => {
                    tracing::error!(request_id, host, %error, "unusable runtime config");
                    return Fetched::failed(error.into());
                }
            },
            None => None,
        };
        let Some((parsed, envelope)) = parsed else {
            self.runtime.insert(host, RuntimeEntry::NotFound);
            let replaced = match &self.tier {
                Some(tier) => tier.delete(host).await.unwrap_or_else(|error| {
                    self.tier_failed(host, request_id, &error);
                    None
                }),
                None => None,
            };
            return Fetched {
                result: Err(SourceError::NotFound),
                replaced,
            };
        };
        let fetched_at = SystemTime::now();
        let ttl = self.cache.runtime_ttl(parsed.ttl_seconds);
        let config =
            Arc::new(self.runtime_config_of(host, parsed, envelope, fetched_at, fetched_at + ttl));
        self.runtime
            .insert(host, RuntimeEntry::Found(config.clone()));
        let replaced = match &self.tier {
            Some(tier) => self.write_back(tier, &config, request_id).await,
            None => None,
        };
        Fetched {
            result: Ok(config),
            replaced,
        }
    }

    fn runtime_config_of(
        &self,
        host: &str,
        parsed: RuntimeEnvelope,
        envelope: Envelope,
        fetched_at: SystemTime,
        fresh_until: SystemTime,
    ) -> RuntimeConfig {
        RuntimeConfig {
            host: host.to_string(),
            tenant: parsed.tenant,
            host_tenant: crate::host::tenant_of(host, &self.base_domain),
            config_version: parsed.config_version,
            ttl: self.cache.runtime_ttl(parsed.ttl_seconds),
            config: parsed.config,
            envelope,
            fetched_at,
            fresh_until,
        }
    }

    /// Writes `config` to the table; answers the version it replaced.
    async fn write_back(
        &self,
        tier: &RuntimeTier,
        config: &RuntimeConfig,
        request_id: &str,
    ) -> Option<String> {
        let Ok(envelope) = std::str::from_utf8(&config.envelope) else {
            // Parsed JSON is UTF-8; this guards the conversion, not a real case.
            tracing::warn!(request_id, host = %config.host, "runtime config is not UTF-8; not written to DynamoDB");
            return None;
        };
        let item = RuntimeItem {
            envelope: envelope.to_string(),
            config_version: config.config_version.clone(),
            fetched_at: config.fetched_at,
            fresh_until: config.fresh_until,
        };
        tier.put(&config.host, &item).await.unwrap_or_else(|error| {
            self.tier_failed(&config.host, request_id, &error);
            None
        })
    }

    /// The table's copy of `host`, parsed; `None` when there is none or it
    /// cannot be read (counted and logged: the next good fetch overwrites it).
    async fn table_copy(
        &self,
        tier: &RuntimeTier,
        host: &str,
        request_id: &str,
        consistent: bool,
    ) -> Option<Arc<RuntimeConfig>> {
        let item = match tier.get(host, consistent).await {
            Ok(item) => item?,
            Err(error) => {
                self.tier_failed(host, request_id, &error);
                return None;
            }
        };
        let envelope = Envelope::from(item.envelope.into_bytes());
        match parse_envelope(&envelope) {
            Ok(Some(parsed)) => Some(Arc::new(self.runtime_config_of(
                host,
                parsed,
                envelope,
                item.fetched_at,
                item.fresh_until,
            ))),
            Ok(None) => {
                self.tier_failed(host, request_id, &TierError::Malformed("config"));
                None
            }
            Err(error) => {
                self.counters.incr(Counter::RuntimeDynamoError);
                tracing::warn!(request_id, host, %error, "DynamoDB runtime item unusable; skipped");
                None
            }
        }
    }

    fn tier_failed(&self, host: &str, request_id: &str, error: &TierError) {
        self.counters.incr(Counter::RuntimeDynamoError);
        tracing::warn!(request_id, host, %error, "DynamoDB tier skipped");
    }

    /// Fetches `host` from the orchestrator whatever the caches hold, and
    /// writes memory and the table (the warmup's refresh-ahead). A 404
    /// deletes the table's copy.
    pub async fn refresh(&self, host: &str, request_id: &str) -> Result<Refresh, SourceError> {
        let in_memory = match self.runtime.get(host) {
            Some(RuntimeEntry::Found(config)) => Some(config.config_version.clone()),
            _ => None,
        };
        let fetched = self.fetch_runtime(host, request_id).await;
        let previous = match self.tier {
            Some(_) => fetched.replaced,
            None => in_memory,
        };
        match fetched.result {
            Ok(config) => Ok(Refresh::Found {
                version_changed: previous.as_deref() != Some(config.config_version.as_str()),
                config,
            }),
            Err(SourceError::NotFound) => Ok(Refresh::NotFound {
                existed: previous.is_some(),
            }),
            Err(error) => Err(error),
        }
    }

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

/// The copy fetched last.
fn newest(
    a: Option<Arc<RuntimeConfig>>,
    b: Option<Arc<RuntimeConfig>>,
) -> Option<Arc<RuntimeConfig>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.fetched_at > a.fetched_at { b } else { a }),
        (a, b) => a.or(b),
    }
}

impl ConfigSource {
    /// The orchestrated source, for the warmup's direct refreshes.
    pub fn orchestrated(&self) -> Option<&Arc<Orchestrated>> {
        match self {
            ConfigSource::Orchestrated(o) => Some(o),
            ConfigSource::Standalone(_) => None,
        }
    }

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
