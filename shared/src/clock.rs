//! The one clock every time-dependent decision reads: freshness of cached
//! configs, leases, claims, token lifetimes, rate windows, and the waits
//! between retries.
//!
//! In production it is the system clock. Tests use a manual clock that they
//! move forward themselves, so that a TTL, a lease or a backoff passes
//! without a real sleep: on a manual clock, `sleep` moves the time forward by
//! the wait at once (so concurrent sleepers move it by the sum of their
//! waits, and a test reads how long the code waited from the clock).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system clock.
    manual: Option<Arc<Mutex<SystemTime>>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.manual {
            None => "Clock(system)",
            Some(_) => "Clock(manual)",
        })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that shows `start` until it is moved forward.
    pub fn manual(start: SystemTime) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// A manual clock starting at the system's time.
    pub fn manual_now() -> Self {
        Self::manual(SystemTime::now())
    }

    pub fn now(&self) -> SystemTime {
        match &self.manual {
            None => SystemTime::now(),
            Some(time) => *time.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// How long ago `earlier` was; zero when it is in the future.
    pub fn since(&self, earlier: SystemTime) -> Duration {
        self.now().duration_since(earlier).unwrap_or_default()
    }

    /// Moves a manual clock forward by `by`. The system clock cannot be moved.
    ///
    /// # Panics
    /// On the system clock: only tests move time, and only a manual clock.
    pub fn advance(&self, by: Duration) {
        let time = self
            .manual
            .as_ref()
            .expect("only a manual clock can be moved");
        let mut now = time.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.checked_add(by).unwrap_or(*now);
    }

    /// Waits `duration`: really on the system clock; on a manual clock the
    /// time moves to the end of the wait (if it is not already past it) and
    /// the task yields once.
    pub async fn sleep(&self, duration: Duration) {
        match &self.manual {
            None => tokio::time::sleep(duration).await,
            Some(time) => {
                {
                    let mut now = time.lock().unwrap_or_else(|e| e.into_inner());
                    let end = now.checked_add(duration).unwrap_or(*now);
                    *now = (*now).max(end);
                }
                tokio::task::yield_now().await;
            }
        }
    }

    /// Waits until `at` (at once when it is not in the future).
    pub async fn sleep_until(&self, at: SystemTime) {
        match &self.manual {
            None => {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Some(time) => {
                {
                    let mut now = time.lock().unwrap_or_else(|e| e.into_inner());
                    *now = (*now).max(at);
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_told_or_slept() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.since(start), Duration::from_secs(5));
        clock.sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.since(start), Duration::from_millis(5250));
        // A deadline already past does not move time back.
        clock.sleep_until(start).await;
        assert_eq!(clock.since(start), Duration::from_millis(5250));
        clock.sleep_until(start + Duration::from_secs(9)).await;
        assert_eq!(clock.since(start), Duration::from_secs(9));
        assert_eq!(clock.since(start + Duration::from_secs(60)), Duration::ZERO);
    }

    #[test]
    fn a_manual_clock_saturates_instead_of_overflowing() {
        let clock = Clock::manual(SystemTime::UNIX_EPOCH);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    }
}
