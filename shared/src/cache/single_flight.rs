//! One in-flight computation per key: concurrent callers share its result.
//!
//! Hand-written because the cache crate's own coalescing (`moka`'s
//! `try_get_with`) would store the value, while callers here need the result of
//! one fetch shared without caching failures, and stale-serving decided by the
//! caller. The work runs in its own task, so a caller that gives up (a dropped
//! request) does not cancel it for the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

type SharedResult<V> = Shared<BoxFuture<'static, Option<V>>>;
/// Each running call, with the number that tells it from a later call of
/// the same key.
type InFlight<K, V> = Arc<Mutex<HashMap<K, (u64, SharedResult<V>)>>>;

pub struct SingleFlight<K, V: Clone> {
    in_flight: InFlight<K, V>,
    calls: AtomicU64,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Arc::default(),
            calls: AtomicU64::new(0),
        }
    }
}

/// Whether this caller started the work or joined a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    Leader,
    Joined,
}

/// Takes its call's key out of the map when dropped: when the work returns,
/// when it panics (the task drops it while unwinding) and when the task is
/// cancelled. A key left behind would make every later caller wait for a
/// call that never ends.
struct Release<K: Eq + Hash, V: Clone> {
    in_flight: InFlight<K, V>,
    key: K,
    call: u64,
}

impl<K: Eq + Hash, V: Clone> Drop for Release<K, V> {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|(call, _)| *call == self.call)
        {
            map.remove(&self.key);
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` unless a call for `key` is already running, in which case
    /// this waits for that one. `None` means the work panicked (or its task
    /// was cancelled); the next call of the key runs the work again.
    pub async fn run<F>(&self, key: K, work: F) -> (Option<V>, Flight)
    where
        F: std::future::Future<Output = V> + Send + 'static,
    {
        let (shared, flight) = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&key) {
                Some((_, existing)) => (existing.clone(), Flight::Joined),
                None => {
                    let call = self.calls.fetch_add(1, Ordering::Relaxed);
                    let release = Release {
                        in_flight: Arc::clone(&self.in_flight),
                        key: key.clone(),
                        call,
                    };
                    // The map is locked until the call is in it: the guard
                    // of a call that ends at once waits for that.
                    let handle = tokio::spawn(async move {
                        let _release = release;
                        work.await
                    });
                    let shared = handle.map(Result::ok).boxed().shared();
                    map.insert(key, (call, shared.clone()));
                    (shared, Flight::Leader)
                }
            }
        };
        (shared.await, flight)
    }

    /// How many calls are running (the map stays as small as that).
    pub fn running(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{pin_mut, poll};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn concurrent_callers_share_one_call() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let released = released.shared();
        let callers = futures::future::join_all((0..20).map(|_| {
            let (calls, released) = (calls.clone(), released.clone());
            flights.run("k", async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = released.await;
                7
            })
        }));
        pin_mut!(callers);
        // One poll: every caller has asked for the key while the work waits.
        assert!(poll!(&mut callers).is_pending());
        release.send(()).expect("the work waits");
        let mut leaders = 0;
        for (value, flight) in callers.await {
            assert_eq!(value, Some(7));
            leaders += usize::from(flight == Flight::Leader);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
    }

    #[tokio::test]
    async fn finished_calls_are_not_remembered() {
        let flights: SingleFlight<&str, Result<u32, String>> = SingleFlight::default();
        let (first, _) = flights.run("k", async { Err("boom".to_string()) }).await;
        assert_eq!(first, Some(Err("boom".into())));
        let (second, flight) = flights.run("k", async { Ok(1) }).await;
        assert_eq!((second, flight), (Some(Ok(1)), Flight::Leader));
    }

    #[tokio::test]
    async fn a_dropped_leader_does_not_cancel_the_work() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let (release, released) = oneshot::channel::<()>();
        let mut leader = Box::pin(flights.run("k", async {
            let _ = released.await;
            3
        }));
        let follower = flights.run("k", async { 99 });
        pin_mut!(follower);
        assert!(
            poll!(&mut leader).is_pending(),
            "the leader started the work"
        );
        assert!(poll!(&mut follower).is_pending(), "the follower joined it");
        // The leader's request goes away; the work goes on for the follower.
        drop(leader);
        release.send(()).expect("the work waits");
        assert_eq!(follower.await, (Some(3), Flight::Joined));
    }

    #[tokio::test]
    async fn a_panicking_call_answers_none_and_frees_its_key() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let (panicked, flight) = flights
            .run("k", async {
                if flights_panic() {
                    panic!("the work failed badly");
                }
                1
            })
            .await;
        assert_eq!((panicked, flight), (None, Flight::Leader));
        assert_eq!(flights.running(), 0, "no key left behind");
        let (next, flight) = flights.run("k", async { 2 }).await;
        assert_eq!((next, flight), (Some(2), Flight::Leader), "tried again");
    }

    #[test]
    fn a_cancelled_task_frees_its_key() {
        let flights: Arc<SingleFlight<&str, u32>> = Arc::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let caller = flights.clone();
        runtime.block_on(async move {
            let call = caller.run("k", std::future::pending::<u32>());
            pin_mut!(call);
            assert!(poll!(&mut call).is_pending());
        });
        assert_eq!(flights.running(), 1, "the work runs without its caller");
        // Ending the runtime cancels its tasks, the work's among them.
        drop(runtime);
        assert_eq!(flights.running(), 0, "no key left behind");
    }

    /// True, in a way the compiler cannot see through.
    fn flights_panic() -> bool {
        std::hint::black_box(true)
    }
}
