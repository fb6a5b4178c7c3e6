//! Memory-only credential cache. The credential's own version is known only
//! after resolving, so entries are keyed by the tenant, the configuration
//! version that named the reference, and the reference: a new configuration
//! resolves again, and rotation without a configuration change is picked up
//! when the entry's TTL (at most the tenant's runtime TTL) runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use crate::secrets::{Credential, CredentialRef, Role};

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialKey {
    pub tenant: String,
    pub config_version: String,
    pub role: Role,
    pub cref: CredentialRef,
}

#[derive(Clone)]
struct Entry {
    credential: Arc<Credential>,
    ttl: Duration,
}

struct EntryTtl;

impl Expiry<CredentialKey, Entry> for EntryTtl {
    fn expire_after_create(
        &self,
        _key: &CredentialKey,
        entry: &Entry,
        _now: Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

pub struct CredentialCache(Option<Cache<CredentialKey, Entry>>);

impl CredentialCache {
    /// `enabled: false` caches nothing (`CREDENTIAL_CACHE_ENABLED`).
    pub fn new(enabled: bool, max_size: u64) -> Self {
        Self(enabled.then(|| {
            Cache::builder()
                .max_capacity(max_size)
                .expire_after(EntryTtl)
                .build()
        }))
    }

    pub fn get(&self, key: &CredentialKey) -> Option<Arc<Credential>> {
        self.0.as_ref()?.get(key).map(|e| e.credential)
    }

    pub fn insert(&self, key: CredentialKey, credential: Arc<Credential>, ttl: Duration) {
        if let Some(cache) = &self.0 {
            cache.insert(key, Entry { credential, ttl });
        }
    }

    pub fn remove(&self, key: &CredentialKey) {
        if let Some(cache) = &self.0 {
            cache.invalidate(key);
        }
    }
}
