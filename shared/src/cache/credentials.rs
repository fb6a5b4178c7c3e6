//! Memory-only credential cache. The credential's own version is known only
//! after resolving, so entries are keyed by the tenant, the configuration
//! version that named the reference, and the reference: a new configuration
//! resolves again, and rotation without a configuration change is picked up
//! when the entry's TTL (at most the tenant's runtime TTL) runs out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::sync::Cache;
use moka::Expiry;

use crate::clock::Clock;
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
    /// When the entry stops being served, on the injected clock (the
    /// cache's own expiry after `ttl` only frees the memory).
    until: SystemTime,
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

pub struct CredentialCache {
    entries: Option<Cache<CredentialKey, Entry>>,
    clock: Clock,
}

impl CredentialCache {
    /// `enabled: false` caches nothing (`CREDENTIAL_CACHE_ENABLED`).
    pub fn new(enabled: bool, max_size: u64, clock: Clock) -> Self {
        Self {
            entries: enabled.then(|| {
                Cache::builder()
                    .max_capacity(max_size)
                    .expire_after(EntryTtl)
                    .build()
            }),
            clock,
        }
    }

    pub fn get(&self, key: &CredentialKey) -> Option<Arc<Credential>> {
        let entry = self.entries.as_ref()?.get(key)?;
        (self.clock.now() < entry.until).then_some(entry.credential)
    }

    pub fn insert(&self, key: CredentialKey, credential: Arc<Credential>, ttl: Duration) {
        if let Some(cache) = &self.entries {
            let now = self.clock.now();
            let until = now.checked_add(ttl).unwrap_or(now);
            cache.insert(
                key,
                Entry {
                    credential,
                    ttl,
                    until,
                },
            );
        }
    }

    pub fn remove(&self, key: &CredentialKey) {
        if let Some(cache) = &self.entries {
            cache.invalidate(key);
        }
    }
}
