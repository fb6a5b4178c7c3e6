//! A token bucket, as a rate-limited service keeps one: `per_second`
//! tokens a second, at most `burst` saved up; a call without a token is
//! refused with how long until the next one. Time comes from a
//! [`Clock`], so that a test on manual time sees the limit the code under
//! test paces itself against.

use std::time::{Duration, SystemTime};

use publisher::clock::Clock;

pub struct RateLimit {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: SystemTime,
    clock: Clock,
}

impl RateLimit {
    pub fn new(per_second: f64, burst: f64, clock: Clock) -> Self {
        Self {
            per_second,
            burst,
            tokens: burst,
            at: clock.now(),
            clock,
        }
    }

    /// Takes a token; `Err(wait)` when there is none.
    pub fn take(&mut self) -> Result<(), Duration> {
        let now = self.clock.now();
        let elapsed = now.duration_since(self.at).unwrap_or_default();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let clock = Clock::manual_now();
        let mut limit = RateLimit::new(10.0, 10.0, clock.clone());
        assert!((0..10).all(|_| limit.take().is_ok()));
        let wait = limit.take().expect_err("the bucket is empty");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        clock.advance(Duration::from_millis(100));
        assert!(limit.take().is_ok());
        assert!(limit.take().is_err());
    }
}
