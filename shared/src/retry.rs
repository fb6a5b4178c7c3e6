//! The one retry policy of every outbound client (orchestrator, Dropbox,
//! OpenAI, Telegram, DynamoDB batches): how many tries, how long between
//! them, how a server's `Retry-After` is read, and the loop itself.
//!
//! Hand-written rather than taken from a crate such as `backon`: the loop is
//! twenty lines, while what differs between the clients (which answers are
//! transient, a `Retry-After` in a header or in a JSON body, a token refresh
//! between tries) would have to be expressed around such a crate anyway, and
//! the waits must go through the injected [`Clock`] so that tests run on
//! manual time.
//!
//! What stays with each client: which answers are worth another try (the
//! [`Step`] its attempt returns) and anything done outside the loop, such as
//! rotating a token or refreshing an access token.

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::clock::Clock;

/// No `Retry-After` is read as longer than this, however large its value.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Tries per call, the first included (at least one is always made).
    pub attempts: u32,
    /// The wait after the first failed try without a `Retry-After`; it
    /// doubles with each further try.
    pub base: Duration,
    /// The longest wait between two tries.
    pub cap: Duration,
    /// Up to this fraction of the wait is added at random, so that
    /// instances that failed together do not retry together.
    pub jitter: f64,
    /// A `Retry-After` longer than `cap`: `false` waits `cap` and tries
    /// again; `true` ends the call at once (it could not finish in time).
    pub give_up_beyond_cap: bool,
}

impl Policy {
    /// The wait after `failed` tries (1 after the first), before jitter:
    /// the server's `Retry-After` when it gave one, else `base` doubled per
    /// earlier failure, capped. `None`: stop now (out of tries, or a
    /// `Retry-After` beyond the cap for a policy that gives up).
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if failed >= self.attempts.max(1) {
            return None;
        }
        match retry_after {
            Some(wait) if wait > self.cap && self.give_up_beyond_cap => None,
            Some(wait) => Some(wait.min(self.cap)),
            None => {
                let doublings = failed.saturating_sub(1).min(31);
                Some(self.base.saturating_mul(1 << doublings).min(self.cap))
            }
        }
    }

    /// `wait` plus a random share of up to `jitter` of it.
    fn jittered(&self, wait: Duration) -> Duration {
        let share = self.jitter.clamp(0.0, 1.0) * rand::random::<f64>();
        wait.saturating_add(wait.mul_f64(share))
    }
}

/// What one try came to.
#[derive(Debug)]
pub enum Step<T, E> {
    /// Finished: its value (the caller's success or a final answer).
    Done(T),
    /// Failed in a way another try may mend; `after` is the server's
    /// `Retry-After`, when it gave one.
    Retry { error: E, after: Option<Duration> },
    /// Failed for good: no further try.
    Fail(E),
}

impl<T, E> Step<T, E> {
    pub fn retry(error: E) -> Self {
        Step::Retry { error, after: None }
    }
}

/// A call's end: its result and how many tries it took.
#[derive(Debug)]
pub struct Finished<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

/// Runs `attempt` (given the 1-based try number) until it is done, fails
/// for good, or the policy says stop; waits on `clock` between tries.
///
/// (A closure returning a future rather than an async closure: the futures
/// of async closures that borrow are not provably `Send` yet.)
pub async fn run<T, E, F, Fut>(policy: &Policy, clock: &Clock, mut attempt: F) -> Finished<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Step<T, E>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let (error, after) = match attempt(tries).await {
            Step::Done(value) => {
                return Finished {
                    result: Ok(value),
                    attempts: tries,
                }
            }
            Step::Fail(error) => {
                return Finished {
                    result: Err(error),
                    attempts: tries,
                }
            }
            Step::Retry { error, after } => (error, after),
        };
        match policy.delay(tries, after) {
            Some(wait) => clock.sleep(policy.jittered(wait)).await,
            None => {
                return Finished {
                    result: Err(error),
                    attempts: tries,
                }
            }
        }
    }
}

/// The server's wish for the next try, from `retry-after-ms` (OpenAI's
/// milliseconds) or `Retry-After` (delta seconds, whole or fractional, or an
/// HTTP date, read against `now`). Any value saturates at
/// [`MAX_RETRY_AFTER`]; a negative, non-numeric or unreadable value is
/// ignored. Never panics.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(number) {
        return Some(saturating_secs(ms / 1000.0));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Some(seconds) = number(value) {
        return Some(saturating_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(MAX_RETRY_AFTER),
    )
}

/// A non-negative, finite number, as servers write them.
fn number(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

/// `seconds` as a duration, at most [`MAX_RETRY_AFTER`].
fn saturating_secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
        .unwrap_or(MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const POLICY: Policy = Policy {
        attempts: 4,
        base: Duration::from_millis(250),
        cap: Duration::from_secs(5),
        jitter: 0.25,
        give_up_beyond_cap: false,
    };

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn retry_after_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let in_30s = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        type Case<'a> = (&'a [(&'static str, &'a str)], Option<Duration>);
        let cases: [Case; 17] = [
            (&[], None),
            (&[("retry-after", "2")], Some(s(2))),
            (&[("retry-after", " 7 ")], Some(s(7))),
            (&[("retry-after", "0")], Some(Duration::ZERO)),
            (&[("retry-after", "1.5")], Some(ms(1500))),
            (&[("retry-after", &in_30s)], Some(s(30))),
            (&[("retry-after", &past)], Some(Duration::ZERO)),
            (&[("retry-after", "soon")], None),
            (&[("retry-after", "-3")], None),
            (&[("retry-after", "NaN")], None),
            (&[("retry-after", "inf")], None),
            (
                &[("retry-after", "18446744073709551616")],
                Some(MAX_RETRY_AFTER),
            ),
            (&[("retry-after", "1e300")], Some(MAX_RETRY_AFTER)),
            (&[("retry-after-ms", "150")], Some(ms(150))),
            (
                &[("retry-after-ms", "150"), ("retry-after", "9")],
                Some(ms(150)),
            ),
            (
                &[("retry-after-ms", "9999999999999")],
                Some(MAX_RETRY_AFTER),
            ),
            (&[("retry-after-ms", "x"), ("retry-after", "9")], Some(s(9))),
        ];
        for (pairs, want) in cases {
            assert_eq!(retry_after(&headers(pairs), now), want, "{pairs:?}");
        }
    }

    #[test]
    fn delays_double_honour_retry_after_and_cap() {
        let ms = Duration::from_millis;
        let cases = [
            (1, None, Some(ms(250))),
            (2, None, Some(ms(500))),
            (3, None, Some(ms(1000))),
            (4, None, None),
            (1, Some(ms(2000)), Some(ms(2000))),
            (1, Some(Duration::from_secs(60)), Some(ms(5000))),
            (1, Some(MAX_RETRY_AFTER), Some(ms(5000))),
            (4, Some(ms(1)), None),
        ];
        for (failed, after, want) in cases {
            assert_eq!(POLICY.delay(failed, after), want, "{failed} {after:?}");
        }
        let long = Policy {
            attempts: 40,
            ..POLICY
        };
        assert_eq!(long.delay(39, None), Some(ms(5000)), "no overflow");
        let strict = Policy {
            give_up_beyond_cap: true,
            ..POLICY
        };
        assert_eq!(strict.delay(1, Some(Duration::from_secs(60))), None);
        assert_eq!(strict.delay(1, Some(ms(5000))), Some(ms(5000)));
        let once = Policy {
            attempts: 0,
            ..POLICY
        };
        assert_eq!(once.delay(1, None), None, "at least one try, no more");
    }

    #[test]
    fn jitter_adds_at_most_its_share() {
        for _ in 0..200 {
            let wait = POLICY.jittered(Duration::from_millis(1000));
            assert!((1000..=1250).contains(&wait.as_millis()), "{wait:?}");
        }
        assert_eq!(POLICY.jittered(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_loop_retries_waits_on_the_clock_and_stops() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = Clock::manual(start);
        let no_jitter = Policy {
            jitter: 0.0,
            ..POLICY
        };
        let seen = std::sync::Mutex::new(Vec::new());
        let seen = &seen;
        let finished = run(&no_jitter, &clock, |n| async move {
            seen.lock().unwrap().push(n);
            match n {
                1 => Step::retry("503"),
                2 => Step::Retry {
                    error: "429",
                    after: Some(Duration::from_secs(2)),
                },
                _ => Step::Done(n * 10),
            }
        })
        .await;
        assert_eq!((finished.result, finished.attempts), (Ok(30), 3));
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
        assert_eq!(clock.since(start), Duration::from_millis(2250));

        let failed: Finished<(), &str> =
            run(&no_jitter, &clock, |_| async { Step::retry("down") }).await;
        assert_eq!((failed.result, failed.attempts), (Err("down"), 4));

        let refused: Finished<(), &str> =
            run(&no_jitter, &clock, |_| async { Step::Fail("400") }).await;
        assert_eq!((refused.result, refused.attempts), (Err("400"), 1));
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn now() -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        }

        /// `value` under `name`, when it is a valid header value at all.
        fn header(name: &'static str, value: &[u8]) -> Option<HeaderMap> {
            let value = HeaderValue::from_bytes(value).ok()?;
            let mut map = HeaderMap::new();
            map.insert(name, value);
            Some(map)
        }

        proptest! {
            #[test]
            fn any_value_is_read_or_ignored_never_more_than_the_cap(
                bytes in prop::collection::vec(any::<u8>(), 0..64),
                text in "\\PC{0,40}",
                now_secs in any::<u64>(),
            ) {
                let now = SystemTime::UNIX_EPOCH
                    .checked_add(Duration::from_secs(now_secs))
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                for value in [bytes.as_slice(), text.as_bytes()] {
                    for name in ["retry-after", "retry-after-ms"] {
                        if let Some(map) = header(name, value) {
                            let wait = retry_after(&map, now);
                            prop_assert!(wait.is_none_or(|w| w <= MAX_RETRY_AFTER));
                        }
                    }
                }
            }

            #[test]
            fn whole_seconds_come_back(seconds in any::<u64>()) {
                let map = header("retry-after", seconds.to_string().as_bytes()).unwrap_or_default();
                let want = Duration::from_secs(seconds).min(MAX_RETRY_AFTER);
                // Past 2^53 a second is below f64's precision: read within one.
                let got = retry_after(&map, now()).unwrap_or_default();
                prop_assert!(got.abs_diff(want) <= Duration::from_secs(1), "{got:?} {want:?}");
            }

            #[test]
            fn milliseconds_come_back(ms in 0u64..=10_000_000_000) {
                let map = header("retry-after-ms", ms.to_string().as_bytes()).unwrap_or_default();
                let want = Duration::from_millis(ms).min(MAX_RETRY_AFTER);
                let got = retry_after(&map, now()).unwrap_or_default();
                prop_assert!(got.abs_diff(want) <= Duration::from_micros(1), "{got:?} {want:?}");
            }

            #[test]
            fn an_http_date_comes_back_as_the_wait_until_it(ahead in 0u64..10_000_000, behind in any::<bool>()) {
                let at = if behind {
                    now() - Duration::from_secs(ahead)
                } else {
                    now() + Duration::from_secs(ahead)
                };
                let map = header("retry-after", httpdate::fmt_http_date(at).as_bytes()).unwrap_or_default();
                let want = if behind { Duration::ZERO } else { Duration::from_secs(ahead).min(MAX_RETRY_AFTER) };
                prop_assert_eq!(retry_after(&map, now()), Some(want));
            }
        }
    }
}
