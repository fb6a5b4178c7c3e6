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
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::clock::Clock;
use crate::table::{epoch_millis, epoch_secs, is_condition_failure, n, s, DynamoError, Table};

const RUNTIME_SK: &str = "RUNTIME";
const NOT_FOUND_SK: &str = "NOTFOUND";
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

/// What the table holds for one host.
#[derive(Debug, Default)]
pub struct HostItems {
    /// The runtime item, when there is one; an error when it is malformed.
    pub runtime: Option<Result<RuntimeItem, TierError>>,
    /// Until when the host is known to be unknown: a live `NOTFOUND` item
    /// (one whose time is implausible counts as none).
    pub not_found_until: Option<SystemTime>,
    /// A `NOTFOUND` item is there, live or not.
    pub not_found_marker: bool,
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

impl TierError {
    /// Whether the table is out of reach ([`DynamoError::is_out_of_reach`]).
    pub fn is_out_of_reach(&self) -> bool {
        match self {
            TierError::Call(error) => error.is_out_of_reach(),
            TierError::Malformed(_) => false,
        }
    }
}

pub struct RuntimeTier {
    table: Table,
    /// Identifies this instance as a lease holder.
    holder: String,
    max_stale: Duration,
    /// The longest TTL a copy can have (`RUNTIME_CONFIG_TTL_MAX_SECONDS`): a
    /// `fresh_until` further ahead is not a copy this service wrote.
    max_ttl: Duration,
    /// How long an unknown host is remembered
    /// (`RUNTIME_CONFIG_NEGATIVE_TTL_SECONDS`).
    negative_ttl: Duration,
    clock: Clock,
}

impl RuntimeTier {
    pub fn new(
        table: Table,
        max_stale: Duration,
        max_ttl: Duration,
        negative_ttl: Duration,
        clock: Clock,
    ) -> Self {
        Self {
            table,
            holder: uuid::Uuid::new_v4().to_string(),
            max_stale,
            max_ttl,
            negative_ttl,
            clock,
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// What the table holds for the host, in one query: its runtime item
    /// (checked: a malformed one is an error of its own) and its unknown-host
    /// marker. `consistent`: see the writes of other instances made just
    /// before.
    pub async fn get(&self, host: &str, consistent: bool) -> Result<HostItems, TierError> {
        let output = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(host)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("Query", &e))?;
        let now = self.clock.now();
        let mut found = HostItems::default();
        for item in output.items() {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(RUNTIME_SK) => found.runtime = Some(runtime_item(item, now, self.max_ttl)),
                Some(NOT_FOUND_SK) => {
                    found.not_found_marker = true;
                    found.not_found_until = not_found_until(item, now, self.negative_ttl);
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// Remembers for the fleet that the orchestrator does not know the host,
    /// for the negative TTL (the item's TTL attribute deletes it after).
    pub async fn put_not_found(&self, host: &str) -> Result<(), TierError> {
        let now = self.clock.now();
        let until = epoch_secs(now).saturating_add(self.negative_ttl.as_secs());
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("pk", s(pk(host)))
            .item("sk", s(NOT_FOUND_SK))
            .item("expires_at", n(until))
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("PutItem", &e))?;
        Ok(())
    }

    /// Forgets the host's unknown-host marker (the orchestrator knows it now).
    pub async fn delete_not_found(&self, host: &str) -> Result<(), TierError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(NOT_FOUND_SK))
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("DeleteItem", &e))?;
        Ok(())
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

    /// Claims the host's refresh for the warmup consumer of a batch handed
    /// out at `since`, for `window`: `false` when its copy was fetched since
    /// then, or another consumer holds the claim (a message SQS delivered
    /// twice). A host without a copy is always claimed. The claim lives on
    /// the runtime item and goes with its next write.
    pub async fn claim_refresh(
        &self,
        host: &str,
        since: SystemTime,
        window: Duration,
    ) -> Result<bool, TierError> {
        let now = self.clock.now();
        let until = now.checked_add(window).unwrap_or(now);
        let claimed = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(pk(host)))
            .key("sk", s(RUNTIME_SK))
            .update_expression("SET warming_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND fetched_at < :since \
                 AND (attribute_not_exists(warming_until) OR warming_until < :now)",
            )
            .expression_attribute_values(":until", n(epoch_millis(until)))
            .expression_attribute_values(":since", n(epoch_millis(since)))
            .expression_attribute_values(":now", n(epoch_millis(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => {
                let had_copy = error
                    .as_service_error()
                    .and_then(|e| match e {
                        UpdateItemError::ConditionalCheckFailedException(old) => old.item(),
                        _ => None,
                    })
                    .is_some_and(|item| !item.is_empty());
                Ok(!had_copy)
            }
            Err(error) => Err(DynamoError::from_sdk("UpdateItem", &error).into()),
        }
    }

    /// Every host with a runtime item, and until when its copy is fresh
    /// (the warmup refreshes those that need it, oldest first).
    pub async fn copies(&self) -> Result<Vec<HostCopy>, TierError> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .table
            .client
            .scan()
            .table_name(&self.table.name)
            .filter_expression("sk = :sk")
            .expression_attribute_values(":sk", s(RUNTIME_SK))
            .projection_expression("pk, fresh_until")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| DynamoError::from_sdk("Scan", &e))?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let host = item.get("pk")?.as_s().ok()?.strip_prefix("HOST#")?;
                let fresh_until = item
                    .get("fresh_until")
                    .and_then(|v| v.as_n().ok()?.parse().ok())
                    .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
                Some(HostCopy {
                    host: host.to_string(),
                    fresh_until,
                })
            })
            .collect())
    }
}

/// A host the table holds a copy of, and until when the copy is fresh
/// (`None`: unreadable, refreshed first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCopy {
    pub host: String,
    pub fresh_until: Option<SystemTime>,
}

fn config_version(item: Option<&HashMap<String, AttributeValue>>) -> Option<String> {
    item?.get("config_version")?.as_s().ok().cloned()
}

fn pk(host: &str) -> String {
    format!("HOST#{host}")
}

/// When a `NOTFOUND` item stops counting: its `expires_at` when it is in
/// the future and no further ahead than the negative TTL allows.
fn not_found_until(
    item: &HashMap<String, AttributeValue>,
    now: SystemTime,
    negative_ttl: Duration,
) -> Option<SystemTime> {
    let until = item.get("expires_at")?.as_n().ok()?.parse::<u64>().ok()?;
    let latest = epoch_secs(now).saturating_add(negative_ttl.saturating_add(CLOCK_SKEW).as_secs());
    let until = UNIX_EPOCH.checked_add(Duration::from_secs(until.min(latest)))?;
    (until > now).then_some(until)
}

/// How far ahead of this instance's clock another instance's may be.
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// 9999-12-31T23:59:59Z: later times are not times this service writes.
const LATEST_TIME_SECS: u64 = 253_402_300_799;

/// The item's attributes, when they are a copy this service could have
/// written by `now`: the times checked, not trusted (a `fetched_at` in the
/// future, a `fresh_until` further ahead than `max_ttl` allows, or anything
/// past the year 9999 is malformed).
fn runtime_item(
    item: &HashMap<String, AttributeValue>,
    now: SystemTime,
    max_ttl: Duration,
) -> Result<RuntimeItem, TierError> {
    let string = |name: &'static str| -> Result<String, TierError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(TierError::Malformed(name))
    };
    let time = |name: &'static str, per_second: u64| -> Result<SystemTime, TierError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| n / per_second <= LATEST_TIME_SECS)
            .and_then(|n| {
                let since_epoch = Duration::from_secs(n / per_second)
                    + Duration::from_millis((n % per_second) * 1000 / per_second);
                UNIX_EPOCH.checked_add(since_epoch)
            })
            .ok_or(TierError::Malformed(name))
    };
    let fetched_at = time("fetched_at", 1000)?;
    let fresh_until = time("fresh_until", 1)?;
    let latest = |ahead: Duration| now.checked_add(ahead).unwrap_or(now);
    if fetched_at > latest(CLOCK_SKEW) {
        return Err(TierError::Malformed("fetched_at"));
    }
    if fresh_until > latest(max_ttl.saturating_add(CLOCK_SKEW)) {
        return Err(TierError::Malformed("fresh_until"));
    }
    Ok(RuntimeItem {
        envelope: string("config")?,
        config_version: string("config_version")?,
        fetched_at,
        fresh_until,
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

    /// Shortly after the `good` item was fetched.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_010)
    }

    const MAX_TTL: Duration = Duration::from_secs(3600);

    #[test]
    fn reads_an_item_with_its_times() {
        let item = runtime_item(&good(), now(), MAX_TTL).expect("valid item");
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
        ] {
            let mut item = good();
            match bad {
                Some(value) => item.insert(name.to_string(), value),
                None => item.remove(name),
            };
            let error = runtime_item(&item, now(), MAX_TTL).expect_err(name);
            assert_eq!(error.to_string(), format!("malformed runtime item: {name}"));
        }
    }

    #[test]
    fn implausible_times_are_malformed_and_never_panic() {
        let huge = u64::MAX.to_string();
        let cases = [
            // The attack: both times at 2^64 - 1.
            ("fetched_at", huge.as_str()),
            ("fresh_until", huge.as_str()),
            // Past the year 9999.
            ("fresh_until", "253402300800"),
            ("fetched_at", "253402300800000"),
            // Fetched in the future, beyond another clock's skew.
            ("fetched_at", "1700000200000"),
            // Fresh for longer than the longest TTL allows.
            ("fresh_until", "1700009999"),
        ];
        for (name, value) in cases {
            let mut item = good();
            item.insert(name.to_string(), AttributeValue::N(value.to_string()));
            if name == "fetched_at" && value == huge {
                item.insert("fresh_until".to_string(), AttributeValue::N(huge.clone()));
            }
            let error = runtime_item(&item, now(), MAX_TTL).expect_err(value);
            assert_eq!(error.to_string(), format!("malformed runtime item: {name}"));
        }
        // Within the skew and the TTL: a copy another instance could write.
        let mut item = good();
        item.insert("fetched_at".to_string(), n(1_700_000_050_000));
        item.insert("fresh_until".to_string(), n(1_700_003_600));
        assert!(runtime_item(&item, now(), MAX_TTL).is_ok());
    }
}
