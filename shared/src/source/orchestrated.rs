//! The orchestrated source's lookup path: fresh memory, then the table,
//! then the orchestrator (one call per host and instance at a time), with
//! stale copies served through an outage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::lease::Turn;
use super::SourceError;
use crate::cache::{
    CredentialCache, CredentialKey, OutageHold, RuntimeCache, RuntimeEntry, RuntimeItem,
    RuntimeTier, SingleFlight, TierError,
};
use crate::clock::Clock;
use crate::config::{parse_envelope_with, ConfigError, Envelope, RuntimeConfig, RuntimeEnvelope};
use crate::metrics::{self, Counter, Counters, Metric};
use crate::orchestrator::OrchestratorClient;
use crate::secrets::{Credential, CredentialErrorKind};
use crate::settings::{CacheSettings, OrchestratorSettings};
use crate::table::Table;

/// The key of the table's own [`OutageHold`].
const TABLE: &str = "table";

pub struct Orchestrated {
    pub(super) client: OrchestratorClient,
    pub(super) cache: CacheSettings,
    pub(super) base_domain: String,
    pub(super) runtime: RuntimeCache,
    runtime_flights: SingleFlight<String, Result<Arc<RuntimeConfig>, SourceError>>,
    /// Hosts whose refresh just found an outage: their stale copy is served
    /// without a new try for a while.
    pub(super) held: OutageHold,
    /// The DynamoDB tier, when `PUBLISHER_TABLE` is set.
    pub(super) tier: Option<RuntimeTier>,
    /// Held after a call found the table out of reach: lookups skip the
    /// tier, as they do when it fails, without waiting for the SDK's tries
    /// first, until a read of the table answers.
    table_out_of_reach: OutageHold,
    /// How long a refresh may take: the lease other instances respect.
    pub(super) lease_window: Duration,
    /// How long an instance without any copy waits for another's refresh.
    pub(super) lease_wait: Duration,
    pub(super) credentials: CredentialCache,
    pub(super) credential_flights:
        SingleFlight<CredentialKey, Result<Arc<Credential>, CredentialErrorKind>>,
    pub(super) counters: Arc<Counters>,
    pub(super) clock: Clock,
    /// `LOCAL_TENANT_STORAGE_DIR`: lets envelopes ask for local storage.
    local_storage: Option<PathBuf>,
}

/// What the table says of a host.
#[derive(Default)]
pub(super) struct TableView {
    pub(super) copy: Option<Arc<RuntimeConfig>>,
    /// A live `NOTFOUND` item: the host is unknown until then.
    pub(super) not_found_until: Option<SystemTime>,
    /// A `NOTFOUND` item is there (live or not), to delete when found.
    pub(super) not_found_marker: bool,
}

/// An orchestrator lookup, as written to memory and the table.
pub(super) struct Fetched {
    pub(super) result: Result<Arc<RuntimeConfig>, SourceError>,
    /// The `config_version` of the table's copy it replaced or deleted.
    pub(super) replaced: Option<String>,
}

impl Fetched {
    fn failed(error: SourceError) -> Self {
        Self {
            result: Err(error),
            replaced: None,
        }
    }
}

impl Orchestrated {
    pub fn new(
        settings: &OrchestratorSettings,
        cache: &CacheSettings,
        base_domain: &str,
        http: reqwest::Client,
        counters: Arc<Counters>,
        clock: Clock,
    ) -> Self {
        // Every attempt may time out, plus the backoff between them.
        let lease_window = settings
            .timeout
            .saturating_mul(settings.max_attempts.max(1))
            .saturating_add(Duration::from_secs(5));
        Self {
            client: OrchestratorClient::new(settings, http, counters.clone(), clock.clone()),
            runtime: RuntimeCache::new(
                cache.runtime_max_size,
                cache.max_stale,
                cache.negative_ttl,
                clock.clone(),
            ),
            runtime_flights: SingleFlight::default(),
            held: OutageHold::new(cache.runtime_max_size, clock.clone()),
            tier: None,
            table_out_of_reach: OutageHold::new(1, clock.clone()),
            lease_window,
            lease_wait: settings.timeout,
            credentials: CredentialCache::new(
                cache.credential_cache_enabled,
                cache.credential_max_size,
                clock.clone(),
            ),
            credential_flights: SingleFlight::default(),
            cache: cache.clone(),
            base_domain: base_domain.to_string(),
            counters,
            clock,
            local_storage: settings.local_storage_dir.clone(),
        }
    }

    /// Adds the DynamoDB tier on `table`.
    pub fn with_table(mut self, table: Table) -> Self {
        self.tier = Some(RuntimeTier::new(
            table,
            self.cache.max_stale,
            self.cache.ttl_max,
            self.cache.negative_ttl,
            self.clock.clone(),
        ));
        self
    }

    pub fn tier(&self) -> Option<&RuntimeTier> {
        self.tier.as_ref()
    }

    /// The tier for a request's lookup: none while the table is held out of
    /// reach (except for the one lookup due to try it again).
    fn reachable_tier(&self) -> Option<&RuntimeTier> {
        self.tier
            .as_ref()
            .filter(|_| !self.table_out_of_reach.should_wait(TABLE))
    }

    /// Fresh memory, else (once per host and instance) the table, another
    /// instance's refresh or the orchestrator; stale copies within max-stale
    /// while the orchestrator fails or another instance refreshes.
    pub(super) async fn runtime_config(
        self: &Arc<Self>,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        let now = self.clock.now();
        match self.runtime.get(host) {
            Some(RuntimeEntry::NotFound { .. }) => {
                self.counters.incr(Counter::RuntimeNegativeHit);
                return Err(SourceError::NotFound);
            }
            Some(RuntimeEntry::Found(config)) if config.is_fresh(now) => {
                self.counters.incr(Counter::RuntimeHit);
                return Ok(config);
            }
            Some(RuntimeEntry::Found(config))
                if config.within_max_stale(now, self.cache.max_stale)
                    && self.held.should_wait(host) =>
            {
                self.counters
                    .incr_for(Counter::RuntimeStaleServe, &config.tenant);
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
        let result = result.unwrap_or_else(|| {
            // The lookup panicked: answered like any failed lookup, and the
            // next request tries again.
            tracing::error!(request_id, host, "runtime lookup failed unexpectedly");
            self.stale_copy(host).ok_or(SourceError::Unavailable)
        });
        if let Some(config) = result.as_ref().ok().filter(|c| !c.is_fresh(now)) {
            self.counters
                .incr_for(Counter::RuntimeStaleServe, &config.tenant);
        }
        result
    }

    /// The memory copy of `host`, while it may still be served stale.
    fn stale_copy(&self, host: &str) -> Option<Arc<RuntimeConfig>> {
        match self.runtime.get(host)? {
            RuntimeEntry::Found(config)
                if config.within_max_stale(self.clock.now(), self.cache.max_stale) =>
            {
                Some(config)
            }
            _ => None,
        }
    }

    /// The slow path of one lookup, shared by the instance's concurrent callers.
    async fn load(&self, host: &str, request_id: &str) -> Result<Arc<RuntimeConfig>, SourceError> {
        // A request that missed memory just as the previous lookup finished
        // finds that lookup's answer here instead of starting another.
        let memory = match self.runtime.get(host) {
            Some(RuntimeEntry::Found(config)) if config.is_fresh(self.clock.now()) => {
                return Ok(config)
            }
            Some(RuntimeEntry::NotFound { .. }) => return Err(SourceError::NotFound),
            Some(RuntimeEntry::Found(config)) => Some(config),
            None => None,
        };
        let Some(tier) = self.reachable_tier() else {
            return self
                .refresh_or_stale(None, host, request_id, memory, false)
                .await;
        };
        let view = self.table_view(tier, host, request_id, false).await;
        if let Some(until) = view.not_found_until {
            // Another instance's 404, shared by the fleet until it runs out.
            self.counters.incr(Counter::RuntimeNegativeHit);
            self.runtime.insert_not_found(host, Some(until));
            return Err(SourceError::NotFound);
        }
        let clear_marker = view.not_found_marker;
        let table = view.copy;
        if let Some(config) = table.as_ref().filter(|c| c.is_fresh(self.clock.now())) {
            self.counters.incr(Counter::RuntimeDynamoHit);
            self.runtime.insert(host, config.clone());
            return Ok(config.clone());
        }
        let stale = newest(memory, table)
            .filter(|c| c.within_max_stale(self.clock.now(), self.cache.max_stale));
        match self.take_turn(tier, host, request_id, stale.clone()).await {
            Turn::Use(config) => {
                if !config.is_fresh(self.clock.now()) {
                    tracing::debug!(
                        request_id,
                        host,
                        "another instance is refreshing; serving the stale copy"
                    );
                }
                self.runtime.insert(host, config.clone());
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
            Turn::NotFound(until) => {
                self.runtime.insert_not_found(host, Some(until));
                Err(SourceError::NotFound)
            }
            Turn::Refresh { leased } => {
                let result = self
                    .refresh_or_stale(Some(tier), host, request_id, stale, clear_marker)
                    .await;
                if leased {
                    // An outage keeps the lease, marked, until it runs out:
                    // the fleet's backoff. Otherwise the others may go on.
                    let outage = match &result {
                        Ok(config) => !config.is_fresh(self.clock.now()),
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

    /// Calls the orchestrator and writes its answer to `tier`; on an outage,
    /// serves `stale` when it is within max-stale.
    async fn refresh_or_stale(
        &self,
        tier: Option<&RuntimeTier>,
        host: &str,
        request_id: &str,
        stale: Option<Arc<RuntimeConfig>>,
        clear_marker: bool,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        let stale =
            stale.filter(|config| config.within_max_stale(self.clock.now(), self.cache.max_stale));
        let result = match &stale {
            // Out of reach for every host: not tried for this one either.
            Some(_) if self.client.should_wait() => Err(SourceError::Unavailable),
            _ => {
                self.fetch_runtime(tier, host, request_id, clear_marker)
                    .await
                    .result
            }
        };
        match (result, stale) {
            (Err(SourceError::Unavailable), Some(config))
                if config.within_max_stale(self.clock.now(), self.cache.max_stale) =>
            {
                tracing::warn!(
                    request_id,
                    tenant = %config.tenant,
                    config_version = %config.config_version,
                    "orchestrator unavailable; serving a stale runtime config"
                );
                self.held.start(host);
                Ok(config)
            }
            (result, _) => result,
        }
    }

    /// One orchestrator lookup, written to memory and `tier`. A 404 is
    /// remembered in memory and, for the fleet, as the host's `NOTFOUND`
    /// item, and deletes the table's copy; a config found deletes the
    /// `NOTFOUND` item when `clear_marker` says there is one.
    pub(super) async fn fetch_runtime(
        &self,
        tier: Option<&RuntimeTier>,
        host: &str,
        request_id: &str,
        clear_marker: bool,
    ) -> Fetched {
        let fetched = match self.client.runtime_by_host(host, request_id).await {
            Ok(fetched) => fetched,
            Err(_) => return Fetched::failed(SourceError::Unavailable),
        };
        let parsed = match fetched {
            Some(envelope) => match self.parse(&envelope) {
                Ok(parsed) => parsed.map(|parsed| (parsed, envelope)),
                Err(error) => {
                    tracing::error!(request_id, host, %error, "unusable runtime config");
                    return Fetched::failed(error.into());
                }
            },
            None => None,
        };
        let Some((parsed, envelope)) = parsed else {
            self.runtime.insert_not_found(host, None);
            let replaced = match tier {
                Some(tier) => {
                    let replaced = tier.delete(host).await.unwrap_or_else(|error| {
                        self.tier_failed(host, request_id, &error);
                        None
                    });
                    if let Err(error) = tier.put_not_found(host).await {
                        self.tier_failed(host, request_id, &error);
                    }
                    replaced
                }
                None => None,
            };
            return Fetched {
                result: Err(SourceError::NotFound),
                replaced,
            };
        };
        metrics::record(Metric::RuntimeFromOrchestrator);
        let fetched_at = self.clock.now();
        let ttl = self.cache.runtime_ttl(parsed.ttl_seconds);
        let config = Arc::new(self.runtime_config_of(
            host,
            parsed,
            envelope,
            fetched_at,
            fetched_at.checked_add(ttl).unwrap_or(fetched_at),
        ));
        self.runtime.insert(host, config.clone());
        self.held.end(host);
        let replaced = match tier {
            Some(tier) => {
                if clear_marker {
                    if let Err(error) = tier.delete_not_found(host).await {
                        self.tier_failed(host, request_id, &error);
                    }
                }
                self.write_back(tier, &config, request_id).await
            }
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

    /// What the table says of `host`: its copy, parsed (`None` when there
    /// is none or it cannot be read: counted and logged, and the next good
    /// fetch overwrites it), and whether the fleet knows the host is unknown.
    pub(super) async fn table_view(
        &self,
        tier: &RuntimeTier,
        host: &str,
        request_id: &str,
        consistent: bool,
    ) -> TableView {
        let items = match tier.get(host, consistent).await {
            Ok(items) => {
                self.table_out_of_reach.end(TABLE);
                items
            }
            Err(error) => {
                self.tier_failed(host, request_id, &error);
                return TableView::default();
            }
        };
        let copy = match items.runtime {
            None => None,
            Some(Err(error)) => {
                self.tier_failed(host, request_id, &error);
                None
            }
            Some(Ok(item)) => self.parse_item(host, item, request_id),
        };
        TableView {
            copy,
            not_found_until: items.not_found_until,
            not_found_marker: items.not_found_marker,
        }
    }

    fn parse_item(
        &self,
        host: &str,
        item: RuntimeItem,
        request_id: &str,
    ) -> Option<Arc<RuntimeConfig>> {
        let envelope = Envelope::from(item.envelope.into_bytes());
        match self.parse(&envelope) {
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

    /// An envelope, from the orchestrator or the table, as this process
    /// reads it.
    fn parse(&self, envelope: &[u8]) -> Result<Option<RuntimeEnvelope>, ConfigError> {
        parse_envelope_with(envelope, self.local_storage.as_deref())
    }

    pub(super) fn tier_failed(&self, host: &str, request_id: &str, error: &TierError) {
        if error.is_out_of_reach() {
            self.table_out_of_reach.start(TABLE);
        }
        self.counters.incr(Counter::RuntimeDynamoError);
        tracing::warn!(request_id, host, %error, "DynamoDB tier skipped");
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
