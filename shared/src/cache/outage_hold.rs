//! Keys that just failed through an outage, held back from another try for
//! a while. While a stale copy may be served, the requests meanwhile get it
//! at once instead of each waiting for the retries of a service that is
//! down: an outage costs one slow request per key and hold, not one per
//! request, and the service that is down is not called by every request.
//! When a hold runs out, one caller tries again while the others keep
//! being held, so a service still down costs one slow request per hold, not
//! a burst of them.

use std::time::{Duration, SystemTime};

use moka::ops::compute::Op;
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

    /// Whether `key` is held now.
    pub fn is_held(&self, key: &str) -> bool {
        self.until
            .get(key)
            .is_some_and(|until| self.clock.now() < until)
    }

    /// Whether the caller should do without `key`'s service for now: while
    /// held, yes. A key whose hold ran out is held again at once, and this
    /// one caller is told to try, and to report with [`start`](Self::start)
    /// or [`end`](Self::end); a try that does neither leaves the others held
    /// for one more [`OUTAGE_HOLD`].
    pub fn should_wait(&self, key: &str) -> bool {
        let now = self.clock.now();
        let mut held = false;
        self.until
            .entry_by_ref(key)
            .and_compute_with(|entry| match entry {
                Some(entry) if now < *entry.value() => {
                    held = true;
                    Op::Nop
                }
                Some(_) => match now.checked_add(OUTAGE_HOLD) {
                    Some(until) => Op::Put(until),
                    None => Op::Remove,
                },
                None => Op::Nop,
            });
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_for_the_hold_only() {
        let clock = Clock::manual_now();
        let hold = OutageHold::new(10, clock.clone());
        assert!(!hold.should_wait("a"));
        hold.start("a");
        assert!(hold.should_wait("a"));
        assert!(hold.is_held("a"));
        assert!(!hold.should_wait("b"));
        clock.advance(OUTAGE_HOLD - Duration::from_millis(1));
        assert!(hold.should_wait("a"));
        clock.advance(Duration::from_millis(1));
        assert!(!hold.is_held("a"), "looking does not take the turn");
        assert!(
            !hold.should_wait("a"),
            "the first caller after the hold tries"
        );
        assert!(hold.should_wait("a"), "the others wait for its outcome");
        assert!(hold.is_held("a"));
        hold.end("a");
        assert!(!hold.should_wait("a"));
        assert!(!hold.should_wait("a"));
        assert!(!hold.is_held("a"));
    }

    #[test]
    fn a_failed_try_holds_again_and_a_lost_one_for_one_hold() {
        let clock = Clock::manual_now();
        let hold = OutageHold::new(10, clock.clone());
        hold.start("a");
        clock.advance(OUTAGE_HOLD);
        assert!(!hold.should_wait("a"));
        hold.start("a");
        clock.advance(OUTAGE_HOLD - Duration::from_millis(1));
        assert!(hold.should_wait("a"), "held from the failed try on");
        clock.advance(Duration::from_millis(1));
        // This try never reports: the others are held for one more hold.
        assert!(!hold.should_wait("a"));
        clock.advance(OUTAGE_HOLD - Duration::from_millis(1));
        assert!(hold.should_wait("a"));
        clock.advance(Duration::from_millis(1));
        assert!(!hold.should_wait("a"));
    }
}
