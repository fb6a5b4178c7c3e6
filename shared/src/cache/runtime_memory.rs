//! Memory tier of runtime configs: bounded, each entry kept until the end of
//! its stale window; a 404 is remembered for the negative TTL.
//!
//! Whether an entry may be served is decided against the injected clock;
//! the cache's own expiry only frees the memory of entries that can no
//! longer be served.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::sync::Cache;
use moka::Expiry;

use crate::clock::Clock;
use crate::config::RuntimeConfig;

#[derive(Clone)]
pub enum RuntimeEntry {
    Found(Arc<RuntimeConfig>),
    /// The orchestrator answered 404; remembered until `until`.
    NotFound {
        until: SystemTime,
    },
}

struct RuntimeExpiry {
    max_stale: Duration,
    clock: Clock,
}

impl Expiry<String, RuntimeEntry> for RuntimeExpiry {
    fn expire_after_create(
        &self,
        _host: &String,
        entry: &RuntimeEntry,
        _now: Instant,
    ) -> Option<Duration> {
        let now = self.clock.now();
        Some(match entry {
            RuntimeEntry::Found(config) => config
                .fresh_until
                .duration_since(now)
                .unwrap_or_default()
                .saturating_add(self.max_stale),
            RuntimeEntry::NotFound { until } => until.duration_since(now).unwrap_or_default(),
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

pub struct RuntimeCache {
    entries: Cache<String, RuntimeEntry>,
    negative_ttl: Duration,
    clock: Clock,
}

impl RuntimeCache {
    pub fn new(max_size: u64, max_stale: Duration, negative_ttl: Duration, clock: Clock) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_size)
                .expire_after(RuntimeExpiry {
                    max_stale,
                    clock: clock.clone(),
                })
                .build(),
            negative_ttl,
            clock,
        }
    }

    /// The host's entry; a remembered 404 only until its negative TTL ran out.
    pub fn get(&self, host: &str) -> Option<RuntimeEntry> {
        match self.entries.get(host)? {
            RuntimeEntry::NotFound { until } if until <= self.clock.now() => None,
            entry => Some(entry),
        }
    }

    pub fn insert(&self, host: &str, config: Arc<RuntimeConfig>) {
        self.entries
            .insert(host.to_string(), RuntimeEntry::Found(config));
    }

    /// Remembers the orchestrator's 404 for the negative TTL, or until
    /// `until` when another instance's 404 says when it ends (earlier).
    pub fn insert_not_found(&self, host: &str, until: Option<SystemTime>) {
        let now = self.clock.now();
        let latest = now.checked_add(self.negative_ttl).unwrap_or(now);
        let until = until.map_or(latest, |until| until.min(latest));
        self.entries
            .insert(host.to_string(), RuntimeEntry::NotFound { until });
    }
}
