//! A host's configuration as the functions serve it: the tenant's parsed
//! configuration with where it came from and how long it is fresh.

use std::time::{Duration, SystemTime};

use super::TenantConfig;

/// A runtime envelope as the orchestrator sent it (the bytes, kept to be
/// written to the table unchanged).
pub type Envelope = bytes::Bytes;

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
        match self.fresh_until.checked_add(max_stale) {
            Some(end) => now < end,
            None => true,
        }
    }
}
