//! Which instance of the fleet refreshes a host whose copies are stale or
//! missing: the one that wins the host's lease in the table. The others
//! serve their stale copy meanwhile, or wait briefly for the holder's result.

use std::sync::Arc;
use std::time::Duration;

use super::Orchestrated;
use crate::cache::{Lease, RuntimeTier};
use crate::config::RuntimeConfig;
use crate::metrics::Counter;

/// How often an instance waiting for another's refresh looks at the table.
const LEASE_POLL: Duration = Duration::from_millis(50);

/// Whose turn it is to refresh a host whose copies are stale or missing.
pub(super) enum Turn {
    /// This instance calls the orchestrator, holding the lease or not.
    Refresh { leased: bool },
    /// Another instance refreshes: use this copy meanwhile, or its result.
    Use(Arc<RuntimeConfig>),
    /// Another instance found the orchestrator unavailable within the window.
    Unavailable,
}

impl Orchestrated {
    /// Decides who refreshes `host`: this instance when it gets the lease;
    /// otherwise it serves `stale`, or waits a little for the holder's result.
    pub(super) async fn take_turn(
        &self,
        tier: &RuntimeTier,
        host: &str,
        request_id: &str,
        stale: Option<Arc<RuntimeConfig>>,
    ) -> Turn {
        let give_up = self.clock.now().checked_add(self.lease_wait);
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
                        Some(config) if config.is_fresh(self.clock.now()) => {
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
            if give_up.is_none_or(|at| self.clock.now() >= at) {
                // The holder is slow or gone: do not keep the request waiting.
                return Turn::Refresh { leased: false };
            }
            self.clock.sleep(LEASE_POLL).await;
            if let Some(config) = self.table_copy(tier, host, request_id, true).await {
                if config.is_fresh(self.clock.now()) {
                    self.counters.incr(Counter::RuntimeDynamoHit);
                    return Turn::Use(config);
                }
            }
        }
    }
}
