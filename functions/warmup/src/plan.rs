//! Which hosts a run refreshes, in which order, and how many orchestrator
//! calls it may make.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use publisher::cache::HostCopy;
use publisher::host;

/// One host to warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// As named (normalized); validated when it is warmed.
    pub host: String,
    /// Named in the event: refreshed, and every credential checked, whatever
    /// is due (an operator's "check this tenant now").
    pub forced: bool,
    /// Handed out through the queue at this time: a copy fetched since then
    /// (by another consumer or instance) needs nothing more.
    pub dispatched_at: Option<SystemTime>,
}

/// The hosts of a scheduled run: those the event names, in its order,
/// then those of `WARMUP_HOSTS` and of the table whose copy will be stale
/// before the next run (or that have none), the oldest copy first. Each host
/// once.
pub(crate) fn plan(
    forced: &[String],
    extra: &[String],
    copies: Vec<HostCopy>,
    now: SystemTime,
    interval: Duration,
) -> Vec<Job> {
    let mut seen = HashSet::new();
    let mut jobs: Vec<Job> = forced
        .iter()
        .map(|h| host::normalize(h))
        .filter(|h| seen.insert(h.clone()))
        .map(|host| Job {
            host,
            forced: true,
            dispatched_at: None,
        })
        .collect();
    let next_run = now.checked_add(interval).unwrap_or(now);
    let without_copy = extra.iter().map(|h| HostCopy {
        host: host::normalize(h),
        fresh_until: None,
    });
    let mut due: Vec<(Option<SystemTime>, String)> = copies
        .into_iter()
        .chain(without_copy)
        .filter(|copy| seen.insert(copy.host.clone()))
        .filter(|copy| copy.fresh_until.is_none_or(|until| until < next_run))
        .map(|copy| (copy.fresh_until, copy.host))
        .collect();
    // `None` (no copy) sorts first.
    due.sort();
    jobs.extend(due.into_iter().map(|(_, host)| Job {
        host,
        forced: false,
        dispatched_at: None,
    }));
    jobs
}

/// How many orchestrator calls a run may make: the ceiling times its time.
/// Runtime lookups come first: a credential check is made only when the
/// lookups still ahead keep their share.
pub(crate) struct Budget {
    /// `None`: no count (the consumer of a queue batch, held by its deadline).
    total: Option<u64>,
    /// (calls spent, lookups still ahead)
    state: Mutex<(u64, u64)>,
}

impl Budget {
    pub fn new(total: Option<u64>, lookups: usize) -> Self {
        Self {
            total,
            state: Mutex::new((0, lookups as u64)),
        }
    }

    /// Takes one runtime lookup; `false`: the run is out of calls.
    pub fn lookup(&self) -> bool {
        let mut state = self.lock();
        state.1 = state.1.saturating_sub(1);
        match self.total {
            Some(total) if state.0 >= total => false,
            _ => {
                state.0 += 1;
                true
            }
        }
    }

    /// Takes `calls` credential checks; `false`: they wait for a later run.
    pub fn checks(&self, calls: usize) -> bool {
        let mut state = self.lock();
        let calls = calls as u64;
        match self.total {
            Some(total) if state.0 + state.1 + calls > total => false,
            _ => {
                state.0 += calls;
                true
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(host: &str, fresh_for: Option<u64>, now: SystemTime) -> HostCopy {
        HostCopy {
            host: host.into(),
            fresh_until: fresh_for.map(|s| now + Duration::from_secs(s)),
        }
    }

    #[test]
    fn forced_first_then_due_copies_oldest_first() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let copies = vec![
            copy("late.shibari.photo", Some(200), now),
            copy("fresh.shibari.photo", Some(900), now),
            copy("early.shibari.photo", Some(10), now),
            copy("broken.shibari.photo", None, now),
            copy("event.shibari.photo", Some(5), now),
        ];
        let jobs = plan(
            &["Event.Shibari.Photo".into()],
            &["extra.shibari.photo".into(), "late.shibari.photo".into()],
            copies,
            now,
            Duration::from_secs(300),
        );
        let order: Vec<(&str, bool)> = jobs.iter().map(|j| (j.host.as_str(), j.forced)).collect();
        assert_eq!(
            order,
            [
                ("event.shibari.photo", true),
                ("broken.shibari.photo", false),
                ("extra.shibari.photo", false),
                ("early.shibari.photo", false),
                ("late.shibari.photo", false),
            ]
        );
    }

    #[test]
    fn lookups_keep_their_share_of_the_budget() {
        let budget = Budget::new(Some(5), 3);
        assert!(budget.lookup());
        assert!(!budget.checks(3), "1 spent + 2 lookups ahead + 3 > 5");
        assert!(budget.checks(2));
        assert!(budget.lookup());
        assert!(budget.lookup());
        assert!(!budget.lookup(), "five calls spent");
        let open = Budget::new(None, 0);
        assert!(open.checks(1000) && open.lookup());
    }
}
