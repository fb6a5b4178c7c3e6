//! Failed password logins, counted per client address and tenant: after
//! `max` failures within `window`, every attempt is refused until the oldest
//! of them has left the window (10 in 5 minutes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use moka::sync::Cache;
use publisher::clock::Clock;

pub struct LoginLimiter {
    max: usize,
    window: Duration,
    /// Attempt times per (client address, tenant); idle keys expire.
    attempts: Cache<(String, String), Arc<Mutex<VecDeque<SystemTime>>>>,
    clock: Clock,
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration, clock: Clock) -> Self {
        Self {
            max,
            window,
            attempts: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(window)
                .build(),
            clock,
        }
    }

    /// Starts an attempt: counted as a failure right away, so concurrent
    /// attempts cannot slip past the limit together, and cleared by
    /// [`LoginLimiter::succeeded`]. `Err(retry_after)` when the client is over
    /// the limit (that refusal is not counted).
    pub fn begin(&self, client: &str, tenant: &str) -> Result<(), Duration> {
        let key = (client.to_string(), tenant.to_string());
        let entry = self.attempts.get_with(key, Default::default);
        let mut times = entry.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let age = |t: &SystemTime| now.duration_since(*t).unwrap_or_default();
        while times.front().is_some_and(|t| age(t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().map(age).unwrap_or_default();
            return Err(self.window.saturating_sub(oldest));
        }
        times.push_back(now);
        Ok(())
    }

    /// A successful login forgets the client's failures.
    pub fn succeeded(&self, client: &str, tenant: &str) {
        self.attempts
            .invalidate(&(client.to_string(), tenant.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_after_max_failures_is_refused_until_the_window_passes() {
        let clock = Clock::manual_now();
        let limiter = LoginLimiter::new(3, Duration::from_millis(300), clock.clone());
        for _ in 0..3 {
            assert!(limiter.begin("1.2.3.4", "maple").is_ok());
        }
        let retry = limiter.begin("1.2.3.4", "maple").unwrap_err();
        assert!(retry <= Duration::from_millis(300));
        assert!(limiter.begin("1.2.3.5", "maple").is_ok(), "other client");
        assert!(limiter.begin("1.2.3.4", "vermont").is_ok(), "other tenant");
        clock.advance(Duration::from_millis(320));
        assert!(limiter.begin("1.2.3.4", "maple").is_ok(), "window passed");
    }

    #[test]
    fn success_clears_the_count() {
        let limiter = LoginLimiter::new(2, Duration::from_secs(60), Clock::system());
        limiter.begin("c", "t").unwrap();
        limiter.begin("c", "t").unwrap();
        limiter.succeeded("c", "t");
        assert!(limiter.begin("c", "t").is_ok());
    }
}
