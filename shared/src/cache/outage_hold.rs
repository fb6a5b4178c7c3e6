//! Keys that just failed through an outage, held back from another try for
//! a while. While a stale copy may be served, the requests meanwhile get it
//! at once instead of each waiting for the retries of a service that is
//! down: an outage costs one slow request per key and hold, not one per
//! request, and the service that is down is not called by every request.

use std::time::{Duration, SystemTime};

use moka::sync::Cache;

use crate::clock::Clock;

/// How long a key is held after an outage.
pub const OUTAGE_HOLD: Duration = Duration::from_secs(15);

pub struct OutageHold {
    until: Cache<String, SystemTime>,
    clock: Clock,
}

impl OutageHold {
    /// At most `capacity` keys held at once (the least recently used go).
    pub fn new(capacity: u64, clock: Clock) -> Self {
        Self {
            until: Cache::new(capacity),
            clock,
        }
    }

    /// `key` just failed through an outage: held for [`OUTAGE_HOLD`].
    pub fn start(&self, key: &str) {
        if let Some(until) = self.clock.now().checked_add(OUTAGE_HOLD) {
            self.until.insert(key.to_string(), until);
        }
    }

    /// `key` worked again.
    pub fn end(&self, key: &str) {
        self.until.invalidate(key);
    }

    pub fn is_held(&self, key: &str) -> bool {
        self.until
            .get(key)
            .is_some_and(|until| self.clock.now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_for_the_hold_only() {
        let clock = Clock::manual_now();
        let hold = OutageHold::new(10, clock.clone());
        assert!(!hold.is_held("a"));
        hold.start("a");
        assert!(hold.is_held("a"));
        assert!(!hold.is_held("b"));
        clock.advance(OUTAGE_HOLD - Duration::from_millis(1));
        assert!(hold.is_held("a"));
        clock.advance(Duration::from_millis(1));
        assert!(!hold.is_held("a"));
        hold.start("a");
        hold.end("a");
        assert!(!hold.is_held("a"));
    }
}
