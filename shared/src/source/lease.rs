//! Which instance of the fleet refreshes a host whose copies are stale or
//! missing: the one that wins the host's lease in the table. The others
//! serve their stale copy meanwhile, or wait briefly for the holder's result.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// Another instance found the host unknown, until then.
    NotFound(SystemTime),
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
                    // and the lease: its answer saves the call.
                    return match self.settled(tier, host, request_id).await {
                        Some(turn) => {
                            if let Err(error) = tier.release(host).await {
                                self.tier_failed(host, request_id, &error);
                            }
                            turn
                        }
                        None => Turn::Refresh { leased: true },
                    };
                }
                Ok(Lease::Held { failed }) => {
                    if let Some(config) = stale {
                        if failed {
                            // The fleet's backoff: this instance's too.
                            self.held.start(host);
                        }
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
            if let Some(turn) = self.settled(tier, host, request_id).await {
                return turn;
            }
        }
    }

    /// The answer another instance left in the table: a fresh copy, or its
    /// 404.
    async fn settled(&self, tier: &RuntimeTier, host: &str, request_id: &str) -> Option<Turn> {
        let view = self.table_view(tier, host, request_id, true).await;
        if let Some(until) = view.not_found_until {
            return Some(Turn::NotFound(until));
        }
        let config = view.copy.filter(|c| c.is_fresh(self.clock.now()))?;
        self.counters.incr(Counter::RuntimeDynamoHit);
        Some(Turn::Use(config))
    }
}
