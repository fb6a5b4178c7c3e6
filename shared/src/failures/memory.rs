//! The failure counters of this instance: the fallback when the table
//! cannot be reached, and the only counters without a table. Bounded: idle
//! counters leave after the window, and there are at most
//! [`MAX_COUNTERS`] of them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use moka::sync::Cache;

use super::{window_end, Attempt, Counter, WINDOW};

const MAX_COUNTERS: u64 = 100_000;

pub(super) struct Memory {
    /// The times of the counted attempts per counter, oldest first.
    attempts: Cache<Counter, Arc<Mutex<VecDeque<SystemTime>>>>,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            attempts: Cache::builder()
                .max_capacity(MAX_COUNTERS)
                .time_to_idle(WINDOW)
                .build(),
        }
    }
}

impl Memory {
    pub(super) fn count(&self, counter: &Counter, now: SystemTime) -> Attempt {
        let times = self.attempts.get_with(counter.clone(), Default::default);
        let mut times = times.lock().unwrap_or_else(|e| e.into_inner());
        while times.front().is_some_and(|t| window_end(*t) <= now) {
            times.pop_front();
        }
        if let Some(oldest) = times
            .front()
            .filter(|_| times.len() >= counter.max() as usize)
        {
            let retry_after = window_end(*oldest).duration_since(now).unwrap_or_default();
            return Attempt::Refused { retry_after };
        }
        times.push_back(now);
        Attempt::Allowed
    }

    /// Takes the latest counted attempt back.
    pub(super) fn take_back(&self, counter: &Counter) {
        if let Some(times) = self.attempts.get(counter) {
            times.lock().unwrap_or_else(|e| e.into_inner()).pop_back();
        }
    }

    pub(super) fn forget(&self, counter: &Counter) {
        self.attempts.invalidate(counter);
    }
}
