//! DynamoDB tier of runtime configs, shared by every instance of the three
//! functions (`docs/tenants.md`, `docs/table.md`):
//!
//! - `HOST#<host>` / `RUNTIME`: the envelope as fetched, `config_version`,
//!   `fetched_at` (epoch ms), `fresh_until` (epoch s) and `expires_at`
//!   (epoch s, the table's TTL attribute: fresh_until + max stale);
//! - `HOST#<host>` / `LEASE`: which instance refreshes the host from the
//!   orchestrator right now (`holder`, `lease_until` in epoch ms), so that the
//!   fleet makes one call per host and refresh window. The holder deletes it
//!   when its refresh is done, or marks it `failed` when the orchestrator was
//!   unavailable, which makes the others back off for the rest of the window.
//!   A lease whose holder died runs out by itself.
//!
//! Nothing secret goes here: the envelope holds references, never secrets.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::clock::Clock;
use crate::table::{epoch_millis, epoch_secs, n, s, DynamoError, Table};

const RUNTIME_SK: &str = "RUNTIME";
const LEASE_SK: &str = "LEASE";
/// How long DynamoDB keeps a lease item after it ran out, before its TTL
/// deletes it (expired leases are ignored whether deleted or not).
const LEASE_RETENTION: Duration = Duration::from_secs(3600);

/// A host's runtime config as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeItem {
    /// The envelope JSON exactly as the orchestrator sent it.
    pub envelope: String,
    pub config_version: String,
    pub fetched_at: SystemTime,
    pub fresh_until: SystemTime,
}

/// The answer to a lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This instance refreshes the host now.
    Acquired,
    /// Another instance does; `failed`: it found the orchestrator unavailable.
    Held { failed: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Call(#[from] DynamoError),
    #[error("malformed runtime item: {0}")]
    Malformed(&'static str),
}

pub struct RuntimeTier {
    table: Table,
    /// Identifies this instance as a lease holder.
    holder: String,
    max_stale: Duration,
    clock: Clock,
}

impl RuntimeTier {
    pub fn new(table: Table, max_stale: Duration, clock: Clock) -> Self {
        Self {
            table,
            holder: uuid::Uuid::new_v4().to_string(),
            max_stale,
            clock,
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The host's item, if any. `consistent`: see the writes of other
    /// instances made just before.
    pub async fn get(
        &self,
        host: &str,
        consistent: bool,
    ) -> Result<Option<RuntimeItem>, TierError> {
        let output = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(RUNTIME_SK))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("GetItem", &e))?;
        output.item().map(runtime_item).transpose()
    }

    /// Writes (or overwrites) the host's item; answers the `config_version`
    /// of the item it replaced.
    pub async fn put(&self, host: &str, item: &RuntimeItem) -> Result<Option<String>, TierError> {
        let fresh_until = epoch_secs(item.fresh_until);
        let output = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("pk", s(pk(host)))
            .item("sk", s(RUNTIME_SK))
            .item("config", s(&item.envelope))
            .item("config_version", s(&item.config_version))
            .item("fetched_at", n(epoch_millis(item.fetched_at)))
            .item("fresh_until", n(fresh_until))
            .item(
                "expires_at",
                n(fresh_until.saturating_add(self.max_stale.as_secs())),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("PutItem", &e))?;
        Ok(config_version(output.attributes()))
    }

    /// Deletes the host's item; answers the `config_version` it had.
    pub async fn delete(&self, host: &str) -> Result<Option<String>, TierError> {
        let output = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(RUNTIME_SK))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("DeleteItem", &e))?;
        Ok(config_version(output.attributes()))
    }

    /// Takes the host's lease for `window` unless another instance holds a
    /// lease that has not run out.
    pub async fn try_lease(&self, host: &str, window: Duration) -> Result<Lease, TierError> {
        let now = self.clock.now();
        let until = now.checked_add(window).unwrap_or(now);
        let attempt = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("pk", s(pk(host)))
            .item("sk", s(LEASE_SK))
            .item("holder", s(&self.holder))
            .item("lease_until", n(epoch_millis(until)))
            .item(
                "expires_at",
                n(epoch_secs(until).saturating_add(LEASE_RETENTION.as_secs())),
            )
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", n(epoch_millis(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match attempt {
            Ok(_) => Ok(Lease::Acquired),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(held)) => {
                    let failed = held
                        .item()
                        .and_then(|item| item.get("failed"))
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false);
                    Ok(Lease::Held { failed })
                }
                _ => Err(DynamoError::from_sdk("PutItem", &error).into()),
            },
        }
    }

    /// Gives the lease up (only this instance's own lease).
    pub async fn release(&self, host: &str) -> Result<(), TierError> {
        let deleted = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(LEASE_SK))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(&self.holder))
            .send()
            .await;
        match deleted {
            Err(error) if !is_condition_failure(&error) => {
                Err(DynamoError::from_sdk("DeleteItem", &error).into())
            }
            _ => Ok(()),
        }
    }

    /// Keeps this instance's lease until it runs out, marked `failed`: the
    /// others do not call the orchestrator again for the rest of the window.
    pub async fn mark_failed(&self, host: &str) -> Result<(), TierError> {
        let updated = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(LEASE_SK))
            .update_expression("SET failed = :yes")
            .condition_expression("holder = :me")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":me", s(&self.holder))
            .send()
            .await;
        match updated {
            Err(error) if !is_condition_failure(&error) => {
                Err(DynamoError::from_sdk("UpdateItem", &error).into())
            }
            _ => Ok(()),
        }
    }

    /// Every host with a runtime item (the warmup refreshes them all).
    pub async fn hosts(&self) -> Result<Vec<String>, TierError> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .table
            .client
            .scan()
            .table_name(&self.table.name)
            .filter_expression("sk = :sk")
            .expression_attribute_values(":sk", s(RUNTIME_SK))
            .projection_expression("pk")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| DynamoError::from_sdk("Scan", &e))?;
        Ok(items
            .iter()
            .filter_map(|item| item.get("pk")?.as_s().ok()?.strip_prefix("HOST#"))
            .map(str::to_string)
            .collect())
    }
}

fn config_version(item: Option<&HashMap<String, AttributeValue>>) -> Option<String> {
    item?.get("config_version")?.as_s().ok().cloned()
}

fn pk(host: &str) -> String {
    format!("HOST#{host}")
}

fn is_condition_failure<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn runtime_item(item: &HashMap<String, AttributeValue>) -> Result<RuntimeItem, TierError> {
    let string = |name: &'static str| -> Result<String, TierError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(TierError::Malformed(name))
    };
    let number = |name: &'static str| -> Result<u64, TierError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or(TierError::Malformed(name))
    };
    // A time past what `SystemTime` holds is malformed, not a panic.
    let time = |name: &'static str, since_epoch: Duration| {
        UNIX_EPOCH
            .checked_add(since_epoch)
            .ok_or(TierError::Malformed(name))
    };
    Ok(RuntimeItem {
        envelope: string("config")?,
        config_version: string("config_version")?,
        fetched_at: time("fetched_at", Duration::from_millis(number("fetched_at")?))?,
        fresh_until: time("fresh_until", Duration::from_secs(number("fresh_until")?))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("config".to_string(), s("{}")),
            ("config_version".to_string(), s("v1")),
            ("fetched_at".to_string(), n(1_700_000_000_123)),
            ("fresh_until".to_string(), n(1_700_000_600)),
        ])
    }

    #[test]
    fn reads_an_item_with_its_times() {
        let item = runtime_item(&good()).expect("valid item");
        assert_eq!(item.config_version, "v1");
        assert_eq!(epoch_millis(item.fetched_at), 1_700_000_000_123);
        assert_eq!(epoch_secs(item.fresh_until), 1_700_000_600);
    }

    #[test]
    fn a_missing_or_mistyped_attribute_names_itself() {
        for (name, bad) in [
            ("config", None),
            ("config", Some(n(1))),
            ("config_version", Some(s(""))),
            ("fetched_at", Some(s("soon"))),
            ("fresh_until", Some(AttributeValue::N("-1".into()))),
            // Past what a `SystemTime` holds (this panicked once).
            ("fresh_until", Some(n(u64::MAX))),
        ] {
            let mut item = good();
            match bad {
                Some(value) => item.insert(name.to_string(), value),
                None => item.remove(name),
            };
            let error = runtime_item(&item).expect_err(name);
            assert_eq!(error.to_string(), format!("malformed runtime item: {name}"));
        }
    }
}
