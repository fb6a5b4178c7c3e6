//! `AI_RATE_PER_MINUTE`: each tenant's OpenAI calls spaced evenly. One pacer
//! per process, shared by every client of every service set, so that a
//! rebuilt service set keeps its tenant's pace.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;

/// Slots already past are forgotten once this many tenants are tracked.
const MAX_TRACKED: usize = 10_000;

pub struct Pacer {
    spacing: Duration,
    /// The next free call slot per tenant.
    next: Mutex<HashMap<String, SystemTime>>,
    clock: Clock,
}

impl Pacer {
    /// `rate_per_minute` calls a minute per tenant; 0: no spacing.
    pub fn new(rate_per_minute: u32, clock: Clock) -> Self {
        let spacing = match rate_per_minute {
            0 => Duration::ZERO,
            rate => Duration::from_secs(60) / rate,
        };
        Self {
            spacing,
            next: Mutex::default(),
            clock,
        }
    }

    /// Waits until `tenant` may call again and books the slot after it.
    pub async fn wait_turn(&self, tenant: &str) {
        if self.spacing.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.clock.now();
            if next.len() > MAX_TRACKED {
                next.retain(|_, slot| *slot > now);
            }
            let slot = next
                .get(tenant)
                .copied()
                .filter(|slot| *slot > now)
                .unwrap_or(now);
            next.insert(
                tenant.to_string(),
                slot.checked_add(self.spacing).unwrap_or(slot),
            );
            slot
        };
        self.clock.sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_spaced_per_tenant() {
        let clock = Clock::manual_now();
        let pacer = Pacer::new(1000, clock.clone());
        assert_eq!(pacer.spacing, Duration::from_millis(60));
        let started = clock.now();
        for _ in 0..3 {
            pacer.wait_turn("spacing-test-a").await;
        }
        assert!(
            clock.since(started) >= Duration::from_millis(120),
            "{:?}",
            clock.since(started)
        );
        let other = clock.now();
        pacer.wait_turn("spacing-test-b").await;
        assert!(
            clock.since(other) < Duration::from_millis(50),
            "another tenant is not held up"
        );
        assert_eq!(
            Pacer::new(20, clock.clone()).spacing,
            Duration::from_secs(3)
        );
        assert_eq!(Pacer::new(0, clock).spacing, Duration::ZERO);
    }
}
