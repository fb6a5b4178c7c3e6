//! Batch calls that DynamoDB answers in part when the table is busy: what it
//! hands back unprocessed is sent again, on the retry policy.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use super::DynamoError;
use crate::clock::Clock;
use crate::retry::{self, Policy, Step};

/// What was left unprocessed is sent again, 50 ms doubling, at most 2 s apart.
const UNPROCESSED_RETRY: Policy = Policy {
    attempts: 5,
    base: Duration::from_millis(50),
    cap: Duration::from_secs(2),
    jitter: 0.25,
    give_up_beyond_cap: false,
};

/// Sends `first` with `send`, then whatever `send` answers was left
/// unprocessed, until nothing is left; `operation` names the call in the
/// error when the table keeps some back.
pub(crate) async fn until_processed<B, F, Fut>(
    clock: &Clock,
    operation: &'static str,
    first: B,
    send: F,
) -> Result<(), DynamoError>
where
    F: Fn(B) -> Fut,
    Fut: Future<Output = Result<Option<B>, DynamoError>>,
{
    let pending = Mutex::new(Some(first));
    let (pending, send) = (&pending, &send);
    let finished = retry::run(&UNPROCESSED_RETRY, clock, |_| async move {
        let Some(batch) = pending.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Step::Done(());
        };
        match send(batch).await {
            Err(error) => Step::Fail(error),
            Ok(None) => Step::Done(()),
            Ok(Some(rest)) => {
                *pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(rest);
                Step::retry(DynamoError::new(operation, "left unprocessed"))
            }
        }
    })
    .await;
    finished.result
}
