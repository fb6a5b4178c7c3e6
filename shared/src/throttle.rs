//! A ceiling on one process's orchestrator calls per second, for the
//! warmup (`docs/operations.md`, Warmup at scale): each call books the next
//! free slot, so calls are spread evenly at the rate rather than started
//! all at once (a token bucket: after a pause, at most `burst` calls go at
//! once), and a 429's `Retry-After` holds every later call back, so that a
//! throttled orchestrator sees the process pause rather than a storm of
//! retries.
//!
//! Off (no wait at all) until a rate is set: the web and publish functions
//! never set one. Hand-written rather than taken from a crate such as
//! `governor`: the waits must go through the injected [`Clock`] so that
//! tests run on manual time, and the hold on a 429 is not a rate limiter's
//! notion.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;

pub struct Throttle {
    state: Mutex<State>,
    clock: Clock,
}

#[derive(Clone, Copy)]
struct State {
    /// Between two calls; zero: no ceiling.
    spacing: Duration,
    /// How far behind the present a slot may lie: the burst.
    lag: Duration,
    next: SystemTime,
}

impl Throttle {
    pub fn new(clock: Clock) -> Self {
        Self {
            state: Mutex::new(State {
                spacing: Duration::ZERO,
                lag: Duration::ZERO,
                next: SystemTime::UNIX_EPOCH,
            }),
            clock,
        }
    }

    /// At most `per_second` calls a second from now on, `burst` of them at
    /// once after a pause; zero, negative or not a number: no ceiling.
    pub fn set_rate(&self, per_second: f64, burst: u32) {
        let spacing = match per_second {
            rate if rate.is_finite() && rate > 0.0 => {
                Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::ZERO)
            }
            _ => Duration::ZERO,
        };
        let mut state = self.lock();
        state.spacing = spacing;
        state.lag = spacing.saturating_mul(burst.saturating_sub(1));
    }

    /// Waits for this call's slot and books the one after it.
    pub async fn wait_turn(&self) {
        let slot = {
            let mut state = self.lock();
            if state.spacing.is_zero() {
                return;
            }
            let now = self.clock.now();
            let slot = state.next.max(now.checked_sub(state.lag).unwrap_or(now));
            state.next = slot.checked_add(state.spacing).unwrap_or(slot);
            slot
        };
        self.clock.sleep_until(slot).await;
    }

    /// No call before `wait` from now (the orchestrator's `Retry-After`).
    pub fn hold(&self, wait: Duration) {
        let now = self.clock.now();
        let until = now.checked_add(wait).unwrap_or(now);
        let mut state = self.lock();
        if !state.spacing.is_zero() {
            state.next = state.next.max(until);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_spread_at_the_rate_and_held_by_a_429() {
        let clock = Clock::manual_now();
        let throttle = Throttle::new(clock.clone());
        let start = clock.now();
        for _ in 0..5 {
            throttle.wait_turn().await;
        }
        assert_eq!(
            clock.since(start),
            Duration::ZERO,
            "off until a rate is set"
        );

        throttle.set_rate(50.0, 1);
        let start = clock.now();
        for _ in 0..51 {
            throttle.wait_turn().await;
        }
        // The first call goes at once; 50 more take a second.
        assert_eq!(clock.since(start), Duration::from_secs(1));

        // After a pause, a burst goes at once, then the rate again.
        throttle.set_rate(50.0, 10);
        clock.advance(Duration::from_secs(60));
        let start = clock.now();
        for _ in 0..10 {
            throttle.wait_turn().await;
        }
        assert_eq!(clock.since(start), Duration::ZERO);
        for _ in 0..50 {
            throttle.wait_turn().await;
        }
        assert_eq!(clock.since(start), Duration::from_secs(1));

        let held = clock.now();
        throttle.hold(Duration::from_secs(3));
        throttle.wait_turn().await;
        assert_eq!(clock.since(held), Duration::from_secs(3));

        throttle.set_rate(0.0, 1);
        let off = clock.now();
        throttle.hold(Duration::from_secs(60));
        throttle.wait_turn().await;
        assert_eq!(clock.since(off), Duration::ZERO);
    }
}
