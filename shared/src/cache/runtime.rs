//! Memory tier of runtime configs: bounded, each entry kept until the end of
//! its stale window; a 404 is remembered for the negative TTL.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::sync::Cache;
use moka::Expiry;

use crate::source::RuntimeConfig;

#[derive(Clone)]
pub enum RuntimeEntry {
    Found(Arc<RuntimeConfig>),
    NotFound,
}

struct RuntimeExpiry {
    max_stale: Duration,
    negative_ttl: Duration,
}

impl Expiry<String, RuntimeEntry> for RuntimeExpiry {
    fn expire_after_create(
        &self,
        _host: &String,
        entry: &RuntimeEntry,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match entry {
            RuntimeEntry::Found(config) => config
                .fresh_until
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_add(self.max_stale),
            RuntimeEntry::NotFound => self.negative_ttl,
        })
    }

    fn expire_after_update(
        &self,
        host: &String,
        entry: &RuntimeEntry,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(host, entry, now)
    }
}

pub struct RuntimeCache(Cache<String, RuntimeEntry>);

impl RuntimeCache {
    pub fn new(max_size: u64, max_stale: Duration, negative_ttl: Duration) -> Self {
        Self(
            Cache::builder()
                .max_capacity(max_size)
                .expire_after(RuntimeExpiry {
                    max_stale,
                    negative_ttl,
                })
                .build(),
        )
    }

    pub fn get(&self, host: &str) -> Option<RuntimeEntry> {
        self.0.get(host)
    }

    pub fn insert(&self, host: &str, entry: RuntimeEntry) {
        self.0.insert(host.to_string(), entry);
    }
}
