//! Per-tenant service sets: the credentials and the clients a tenant's
//! requests and publish runs use. Storage is built eagerly, when the set is
//! built, with the set's image listing cache; the OpenAI, Telegram and
//! FetLife clients are built lazily, once per set, on first use, and a
//! credential that cannot be had disables only that feature for the set's
//! lifetime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use crate::ai::{tenant_prompts, AiClient, Pacer};
use crate::bounded::Limits;
use crate::cache::{OutageHold, SingleFlight};
use crate::clock::Clock;
use crate::config::{RuntimeConfig, StorageProvider};
use crate::publishers::fetlife::Fetlife;
use crate::publishers::telegram::Telegram;
use crate::secrets::{Credential, CredentialErrorKind, Role};
use crate::settings::{CacheSettings, Settings};
use crate::source::ConfigSource;
use crate::static_config::{PlatformLimits, StaticConfig};
use crate::storage::{
    DropboxApp, DropboxStorage, FileEntry, Listing, ListingCache, LocalStorage, Storage,
    StorageError, TokenCache,
};

/// What a handler knows about the request's tenant.
#[derive(Clone)]
pub struct TenantContext {
    pub host: String,
    pub config: Arc<RuntimeConfig>,
    pub services: Arc<TenantServices>,
}

pub struct TenantServices {
    /// The configuration this set was built from.
    pub config: Arc<RuntimeConfig>,
    /// `None` for local storage, which needs no credential.
    storage_credential: Option<Arc<Credential>>,
    storage: Arc<dyn Storage>,
    /// The image folder (`storage.paths.root`) listing.
    listing: ListingCache,
    /// The lazily resolved credentials of the roles the tenant uses.
    lazy: HashMap<Role, OnceCell<Option<Arc<Credential>>>>,
    ai: OnceCell<Option<Arc<AiClient>>>,
    telegram: OnceCell<Option<Arc<Telegram>>>,
    fetlife: OnceCell<Option<Arc<Fetlife>>>,
    clients: Arc<Clients>,
    source: Arc<ConfigSource>,
    built_at: SystemTime,
}

impl TenantServices {
    pub fn tenant(&self) -> &str {
        &self.config.tenant
    }

    pub fn storage_credential(&self) -> Option<&Arc<Credential>> {
        self.storage_credential.as_ref()
    }

    /// The tenant's storage client.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The files of the image folder (`storage.paths.root`), cached for
    /// `WEB_IMAGE_CACHE_TTL_SECONDS`: one listing answers which images exist and
    /// which have a sidecar.
    pub async fn listing(&self) -> Result<Arc<Listing>, StorageError> {
        self.listing
            .get(self.storage.clone(), &self.config.config.storage.paths.root)
            .await
    }

    /// The images of the image folder (`.jpg .jpeg .png`, any case), sorted
    /// by the names' bytes; from the cached listing.
    pub async fn images(&self) -> Result<Arc<Vec<FileEntry>>, StorageError> {
        Ok(self.listing().await?.images().clone())
    }

    /// Every file of the image folder, sorted; from the cached listing.
    pub async fn files(&self) -> Result<Arc<Vec<FileEntry>>, StorageError> {
        Ok(self.listing().await?.files().clone())
    }

    /// The caption and image limits per platform (`platform_limits.yaml`).
    pub fn limits(&self) -> &PlatformLimits {
        &self.clients.statics.platforms
    }

    /// Drops the cached listing, after a file moved in or out of the folder.
    pub fn forget_images(&self) {
        self.listing.forget();
    }

    /// The credential for a lazily resolved role (openai, telegram, smtp).
    /// `None`: the tenant does not use the role, or its resolution failed, which
    /// turns the feature off until the set is rebuilt.
    pub async fn credential(&self, role: Role, request_id: &str) -> Option<Arc<Credential>> {
        let cell = self.lazy.get(&role)?;
        cell.get_or_init(|| async {
            match self.source.credential(&self.config, role, request_id).await {
                Ok(credential) => Some(credential),
                Err(kind) => {
                    tracing::warn!(
                        request_id, tenant = %self.config.tenant, %role, error = %kind,
                        "credential unavailable; feature disabled for this tenant until its services are rebuilt"
                    );
                    None
                }
            }
        })
        .await
        .clone()
    }

    /// The tenant's OpenAI client; `None` when analysis is off or its
    /// credential cannot be had.
    pub async fn ai(&self, request_id: &str) -> Option<Arc<AiClient>> {
        self.ai
            .get_or_init(|| async {
                let config = &self.config.config;
                if !config.analysis_enabled() {
                    return None;
                }
                let ai = config.ai.clone()?;
                let credential = self.credential(Role::Openai, request_id).await?;
                let clients = &self.clients;
                let prompts = tenant_prompts(&ai, &config.confirmation, &clients.statics.prompts);
                Some(Arc::new(
                    AiClient::new(
                        clients.http.clone(),
                        &clients.openai_url,
                        credential.secret().clone(),
                        ai,
                        &self.config.tenant,
                        clients.pacer.clone(),
                        clients.limits.openai,
                        clients.clock.clone(),
                    )
                    .with_prompts(prompts),
                ))
            })
            .await
            .clone()
    }

    /// The tenant's Telegram channel; `None` when not configured or its bot
    /// token cannot be had.
    pub async fn telegram(&self, request_id: &str) -> Option<Arc<Telegram>> {
        self.telegram
            .get_or_init(|| async {
                let config = self.config.config.publishers.telegram.as_ref()?;
                let credential = self.credential(Role::Telegram, request_id).await?;
                let clients = &self.clients;
                Some(Arc::new(Telegram::new(
                    clients.http.clone(),
                    &clients.telegram_url,
                    credential.secret().clone(),
                    &config.channel_id,
                    clients.limits.telegram,
                    clients.clock.clone(),
                )))
            })
            .await
            .clone()
    }

    /// The tenant's FetLife upload by e-mail; `None` when not configured or
    /// its SMTP password cannot be had.
    pub async fn fetlife(&self, request_id: &str) -> Option<Arc<Fetlife>> {
        self.fetlife
            .get_or_init(|| async {
                let config = &self.config.config;
                let (fetlife, server) = (
                    config.publishers.fetlife.as_ref()?,
                    config.email_server.as_ref()?,
                );
                let credential = self.credential(Role::Smtp, request_id).await?;
                Some(Arc::new(Fetlife {
                    server: server.clone(),
                    config: fetlife.clone(),
                    confirmation: config.confirmation.clone(),
                    password: credential.secret().clone(),
                    extra_ca: self.clients.smtp_tls_ca_file.clone(),
                    statics: self.clients.statics.clone(),
                    mail_timeout: self.clients.limits.smtp,
                }))
            })
            .await
            .clone()
    }
}

/// Why a tenant's services could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} credential: {kind}")]
pub struct ServicesError {
    pub role: Role,
    pub kind: CredentialErrorKind,
}

/// What every tenant's clients are built from: the process's HTTP client,
/// the services' addresses, and what the clients of all tenants share.
struct Clients {
    http: reqwest::Client,
    dropbox: DropboxApp,
    /// Dropbox access tokens, shared by a tenant's successive service sets.
    tokens: TokenCache,
    image_cache_ttl: Duration,
    openai_url: String,
    telegram_url: String,
    smtp_tls_ca_file: Option<PathBuf>,
    pacer: Arc<Pacer>,
    /// How long each client's calls may take and how much of an answer
    /// they read.
    limits: Limits,
    /// Prompts, limits and e-mail defaults (`PV2_STATIC_CONFIG_DIR`).
    statics: Arc<StaticConfig>,
    clock: Clock,
}

pub struct TenantRegistry {
    sets: Cache<String, Arc<TenantServices>>,
    /// Tenants whose rebuild failed through an outage: their existing set is
    /// served without a new try for a while.
    held: OutageHold,
    flights: SingleFlight<(String, String), Result<Arc<TenantServices>, ServicesError>>,
    source: Arc<ConfigSource>,
    ttl: Duration,
    max_stale: Duration,
    clients: Arc<Clients>,
}

impl TenantRegistry {
    pub fn new(
        source: Arc<ConfigSource>,
        settings: &Settings,
        http: reqwest::Client,
        limits: Limits,
        clock: Clock,
    ) -> Self {
        let cache: &CacheSettings = &settings.cache;
        let services = &settings.services;
        Self {
            // Sets outlive their TTL by the stale window, to keep serving
            // through an orchestrator outage.
            sets: Cache::builder()
                .max_capacity(cache.tenant_max_size)
                .time_to_live(cache.tenant_ttl.saturating_add(cache.max_stale))
                .build(),
            held: OutageHold::new(cache.tenant_max_size, clock.clone()),
            flights: SingleFlight::default(),
            source,
            ttl: cache.tenant_ttl,
            max_stale: cache.max_stale,
            clients: Arc::new(Clients {
                dropbox: DropboxApp::new(http.clone(), services, clock.clone())
                    .with_limits(limits.dropbox),
                tokens: TokenCache::new(cache.tenant_max_size),
                image_cache_ttl: settings.web.image_cache_ttl,
                openai_url: services.openai.clone(),
                telegram_url: services.telegram.clone(),
                smtp_tls_ca_file: services.smtp_tls_ca_file.clone(),
                pacer: Arc::new(Pacer::new(settings.ai_rate_per_minute, clock.clone())),
                limits,
                statics: settings.statics.clone(),
                http,
                clock,
            }),
        }
    }

    /// The service set for `config`'s tenant, rebuilt when the config version
    /// changed or the set is older than min(service TTL, runtime TTL).
    pub async fn services(
        &self,
        config: &Arc<RuntimeConfig>,
        request_id: &str,
    ) -> Result<Arc<TenantServices>, ServicesError> {
        let existing = self.sets.get(&config.tenant);
        if let Some(set) = &existing {
            let ttl = self.ttl.min(config.ttl);
            if set.config.config_version == config.config_version
                && self.clients.clock.since(set.built_at) < ttl
            {
                return Ok(set.clone());
            }
            if set
                .config
                .within_max_stale(self.clients.clock.now(), self.max_stale)
                && (self.source.is_out_of_reach() || self.held.should_wait(&config.tenant))
            {
                return Ok(set.clone());
            }
        }
        let key = (config.tenant.clone(), config.config_version.clone());
        let build = Self::build(
            self.source.clone(),
            self.clients.clone(),
            config.clone(),
            request_id.to_string(),
        );
        let (result, _) = self.flights.run(key, build).await;
        let result = result.unwrap_or(Err(ServicesError {
            role: Role::Storage,
            kind: CredentialErrorKind::Unavailable,
        }));
        match result {
            Ok(set) => {
                self.held.end(&config.tenant);
                self.sets.insert(config.tenant.clone(), set.clone());
                Ok(set)
            }
            Err(error) if !error.kind.is_rejection() => match existing {
                // An outage must not take down a tenant that was working.
                Some(set)
                    if set
                        .config
                        .within_max_stale(self.clients.clock.now(), self.max_stale) =>
                {
                    tracing::warn!(request_id, tenant = %config.tenant, %error, "keeping the existing services through an outage");
                    self.held.start(&config.tenant);
                    Ok(set)
                }
                _ => Err(error),
            },
            Err(error) => {
                self.sets.invalidate(&config.tenant);
                Err(error)
            }
        }
    }

    async fn build(
        source: Arc<ConfigSource>,
        clients: Arc<Clients>,
        config: Arc<RuntimeConfig>,
        request_id: String,
    ) -> Result<Arc<TenantServices>, ServicesError> {
        let storage_error = |kind| ServicesError {
            role: Role::Storage,
            kind,
        };
        let (storage_credential, storage): (_, Arc<dyn Storage>) = match &config
            .config
            .storage
            .provider
        {
            StorageProvider::Local { dir } => {
                let local = LocalStorage::new(dir).map_err(|error| {
                        tracing::error!(request_id, tenant = %config.tenant, dir = %dir.display(), %error, "the local storage directory is not usable");
                        storage_error(CredentialErrorKind::Unavailable)
                    })?;
                (None, Arc::new(local))
            }
            StorageProvider::Dropbox => {
                let credential = source
                    .credential(&config, Role::Storage, &request_id)
                    .await
                    .map_err(storage_error)?;
                let dropbox = DropboxStorage::new(
                    clients.dropbox.clone(),
                    &clients.tokens,
                    &config.tenant,
                    credential.secret().clone(),
                );
                (Some(credential), Arc::new(dropbox))
            }
        };
        let lazy = [Role::Openai, Role::Telegram, Role::Smtp]
            .into_iter()
            .filter(|&role| config.config.credential_ref(role).is_some())
            .map(|role| (role, OnceCell::new()))
            .collect();
        Ok(Arc::new(TenantServices {
            listing: ListingCache::new(clients.image_cache_ttl, clients.clock.clone()),
            built_at: clients.clock.now(),
            config,
            storage_credential,
            storage,
            lazy,
            ai: OnceCell::new(),
            telegram: OnceCell::new(),
            fetlife: OnceCell::new(),
            clients,
            source,
        }))
    }
}
