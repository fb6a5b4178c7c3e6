//! The failure counters in the table: `LIMIT#<client address>` /
//! `LOGIN#<tenant>` and `/ LOGIN`, with `count` and `expires_at` (the end of
//! the window the first counted failure started; the table's TTL deletes
//! the item after it). Counting is one conditional update: it adds one only
//! while the window is open and the count under the limit.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{window_end, Attempt, Counter, WINDOW};
use crate::table::{epoch_secs, is_condition_failure, n, s, DynamoError, Table};

/// How far ahead of this instance's clock another instance's may be.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

fn key(counter: &Counter) -> [(String, AttributeValue); 2] {
    let sk = match &counter.tenant {
        Some(tenant) => format!("LOGIN#{tenant}"),
        None => "LOGIN".to_string(),
    };
    [
        ("pk".to_string(), s(format!("LIMIT#{}", counter.client))),
        ("sk".to_string(), s(sk)),
    ]
}

/// Counts one failure, unless the counter is at its limit in an open window.
pub(super) async fn count(
    table: &Table,
    counter: &Counter,
    now: SystemTime,
) -> Result<Attempt, DynamoError> {
    // Twice at most: a window found over is started again once.
    for _ in 0..2 {
        let added = table
            .client
            .update_item()
            .table_name(&table.name)
            .set_key(Some(HashMap::from(key(counter))))
            .update_expression("ADD #count :one SET expires_at = if_not_exists(expires_at, :end)")
            .condition_expression(
                "(attribute_not_exists(expires_at) OR expires_at > :now) \
                 AND (attribute_not_exists(#count) OR #count < :max)",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(epoch_secs(now)))
            .expression_attribute_values(":end", n(epoch_secs(window_end(now))))
            .expression_attribute_values(":max", n(u64::from(counter.max())))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let ends = match &added {
            Ok(_) => return Ok(Attempt::Allowed),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(held)) => held
                    .item()
                    .and_then(|item| item.get("expires_at"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u64>().ok()),
                _ => return Err(DynamoError::from_sdk("UpdateItem", error)),
            },
        };
        // A window that never ends (or ends later than one can) is not one
        // this service started: it is over, like one that has ended.
        let latest = epoch_secs(now).saturating_add((WINDOW + CLOCK_SKEW).as_secs());
        match ends {
            Some(end) if end > epoch_secs(now) && end <= latest => {
                let end = SystemTime::UNIX_EPOCH + Duration::from_secs(end);
                let retry_after = end.duration_since(now).unwrap_or_default();
                return Ok(Attempt::Refused { retry_after });
            }
            _ => restart(table, counter, ends).await?,
        }
    }
    Err(DynamoError::new("UpdateItem", "the counter kept changing"))
}

/// Clears a counter whose window is over (`ends`, as read) so that the next
/// count starts a new one, unless another instance did so first.
async fn restart(table: &Table, counter: &Counter, ends: Option<u64>) -> Result<(), DynamoError> {
    let mut delete = table
        .client
        .delete_item()
        .table_name(&table.name)
        .set_key(Some(HashMap::from(key(counter))));
    delete = match ends {
        Some(end) => delete
            .condition_expression("expires_at = :ends")
            .expression_attribute_values(":ends", n(end)),
        None => delete.condition_expression("attribute_not_exists(expires_at)"),
    };
    match delete.send().await {
        Ok(_) => Ok(()),
        // Someone else restarted it: count again on theirs.
        Err(error) if is_condition_failure(&error) => Ok(()),
        Err(error) => Err(DynamoError::from_sdk("DeleteItem", &error)),
    }
}

/// Takes one counted failure back (never below zero).
pub(super) async fn take_back(table: &Table, counter: &Counter) -> Result<(), DynamoError> {
    let taken = table
        .client
        .update_item()
        .table_name(&table.name)
        .set_key(Some(HashMap::from(key(counter))))
        .update_expression("ADD #count :minus_one")
        .condition_expression("#count > :zero")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
        .expression_attribute_values(":zero", n(0))
        .send()
        .await;
    match taken {
        Err(error) if !is_condition_failure(&error) => {
            Err(DynamoError::from_sdk("UpdateItem", &error))
        }
        _ => Ok(()),
    }
}

/// Forgets the counter.
pub(super) async fn forget(table: &Table, counter: &Counter) -> Result<(), DynamoError> {
    table
        .client
        .delete_item()
        .table_name(&table.name)
        .set_key(Some(HashMap::from(key(counter))))
        .send()
        .await
        .map_err(|e| DynamoError::from_sdk("DeleteItem", &e))?;
    Ok(())
}
