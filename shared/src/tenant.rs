//! Per-tenant service sets: the credentials and clients a tenant's requests
//! use. Storage is built eagerly, when the set is built, with the set's image
//! listing cache; AI and publishers are resolved lazily, on first use, a
//! failure disabling only that feature for the set's lifetime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use crate::cache::SingleFlight;
use crate::config::StorageProvider;
use crate::secrets::{Credential, CredentialErrorKind, Role};
use crate::settings::{CacheSettings, Settings};
use crate::source::{ConfigSource, RuntimeConfig};
use crate::storage::{
    DropboxApp, DropboxStorage, FileEntry, Listing, ListingCache, LocalStorage, Storage,
    StorageError, TokenCache,
};

pub struct TenantServices {
    /// The configuration this set was built from.
    pub config: Arc<RuntimeConfig>,
    /// `None` for local storage, which needs no credential.
    storage_credential: Option<Arc<Credential>>,
    storage: Arc<dyn Storage>,
    /// The image folder (`storage.paths.root`) listing.
    listing: ListingCache,
    lazy: HashMap<Role, OnceCell<Option<Arc<Credential>>>>,
    source: Arc<ConfigSource>,
    built_at: Instant,
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
}

/// Why a tenant's services could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} credential: {kind}")]
pub struct ServicesError {
    pub role: Role,
    pub kind: CredentialErrorKind,
}

pub struct TenantRegistry {
    sets: Cache<String, Arc<TenantServices>>,
    flights: SingleFlight<(String, String), Result<Arc<TenantServices>, ServicesError>>,
    source: Arc<ConfigSource>,
    ttl: Duration,
    max_stale: Duration,
    storage: Arc<StorageFactory>,
}

/// What every tenant's storage client is built from.
struct StorageFactory {
    dropbox: DropboxApp,
    tokens: TokenCache,
    image_cache_ttl: Duration,
}

impl TenantRegistry {
    pub fn new(source: Arc<ConfigSource>, settings: &Settings, http: reqwest::Client) -> Self {
        let cache: &CacheSettings = &settings.cache;
        Self {
            // Sets outlive their TTL by the stale window, to keep serving
            // through an orchestrator outage.
            sets: Cache::builder()
                .max_capacity(cache.tenant_max_size)
                .time_to_live(cache.tenant_ttl.saturating_add(cache.max_stale))
                .build(),
            flights: SingleFlight::default(),
            source,
            ttl: cache.tenant_ttl,
            max_stale: cache.max_stale,
            storage: Arc::new(StorageFactory {
                dropbox: DropboxApp::new(http, &settings.services),
                tokens: TokenCache::new(cache.tenant_max_size),
                image_cache_ttl: settings.web.image_cache_ttl,
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
            if set.config.config_version == config.config_version && set.built_at.elapsed() < ttl {
                return Ok(set.clone());
            }
        }
        let key = (config.tenant.clone(), config.config_version.clone());
        let build = Self::build(
            self.source.clone(),
            self.storage.clone(),
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
                self.sets.insert(config.tenant.clone(), set.clone());
                Ok(set)
            }
            Err(error) if !error.kind.is_rejection() => match existing {
                // An outage must not take down a tenant that was working.
                Some(set)
                    if set
                        .config
                        .within_max_stale(SystemTime::now(), self.max_stale) =>
                {
                    tracing::warn!(request_id, tenant = %config.tenant, %error, "keeping the existing services through an outage");
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
        factory: Arc<StorageFactory>,
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
                        tracing::error!(request_id, tenant = %config.tenant, dir = %dir.display(), %error, "LOCAL_STORAGE_DIR is not a usable directory");
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
                    factory.dropbox.clone(),
                    &factory.tokens,
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
            config,
            storage_credential,
            storage,
            listing: ListingCache::new(factory.image_cache_ttl),
            lazy,
            source,
            built_at: Instant::now(),
        }))
    }
}
