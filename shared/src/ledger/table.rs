//! The ledger in the DynamoDB table: `TENANT#<tenant>` items for posted
//! images (`POSTED#<sha256>`, `POSTEDCH#<content hash>`) and event claims
//! (`RUN#<idempotency key>`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::DeleteBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use serde_json::Value;

use super::{
    content_hash_sk, image_sk, record_expiry, run_sk, sha_sk, tenant_pk, Claim, Claimed,
    ImageClaim, PostedImage, COMPLETED, IMAGE_CLAIM_RETENTION, IN_PROGRESS, MAX_CLAIM,
};
use crate::clock::Clock;
use crate::table::{epoch_secs, is_condition_failure, n, s, until_processed, DynamoError, Table};

const BATCH_GET_LIMIT: usize = 100;
const CLAIM_TRIES: u32 = 3;

pub(super) async fn is_posted(
    table: &Table,
    tenant: &str,
    sha256: &str,
) -> Result<bool, DynamoError> {
    let item = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", s(tenant_pk(tenant)))
        .key("sk", s(sha_sk(sha256)))
        .projection_expression("sk")
        .send()
        .await
        .map_err(|e| DynamoError::from_sdk("GetItem", &e))?;
    Ok(item.item.is_some())
}

pub(super) async fn complete(
    table: &Table,
    tenant: &str,
    key: &str,
    result: &Value,
    now: SystemTime,
) -> Result<(), DynamoError> {
    table
        .client
        .update_item()
        .table_name(&table.name)
        .key("pk", s(tenant_pk(tenant)))
        .key("sk", s(run_sk(key)))
        .update_expression("SET #status = :completed, #result = :result, expires_at = :expires")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#result", "result")
        .expression_attribute_values(":completed", s(COMPLETED))
        .expression_attribute_values(":result", s(result.to_string()))
        .expression_attribute_values(":expires", n(epoch_secs(record_expiry(now))))
        .send()
        .await
        .map_err(|e| DynamoError::from_sdk("UpdateItem", &e))?;
    Ok(())
}

pub(super) async fn release(table: &Table, tenant: &str, key: &str) -> Result<(), DynamoError> {
    table
        .client
        .delete_item()
        .table_name(&table.name)
        .key("pk", s(tenant_pk(tenant)))
        .key("sk", s(run_sk(key)))
        .send()
        .await
        .map_err(|e| DynamoError::from_sdk("DeleteItem", &e))?;
    Ok(())
}

pub(super) async fn posted_content_hashes(
    table: &Table,
    clock: &Clock,
    tenant: &str,
    content_hashes: &[String],
) -> Result<HashSet<String>, DynamoError> {
    let unique: HashSet<&String> = content_hashes.iter().collect();
    let unique: Vec<&String> = unique.into_iter().collect();
    let posted = Mutex::new(HashSet::new());
    for chunk in unique.chunks(BATCH_GET_LIMIT) {
        let keys: Vec<HashMap<String, AttributeValue>> = chunk
            .iter()
            .map(|ch| key(tenant_pk(tenant), content_hash_sk(ch)))
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression("sk")
            .build()
            .map_err(|e| DynamoError::new("BatchGetItem", e.to_string()))?;
        let posted = &posted;
        until_processed(clock, "BatchGetItem", request, |request| async move {
            let answer = table
                .client
                .batch_get_item()
                .request_items(&table.name, request)
                .send()
                .await
                .map_err(|e| DynamoError::from_sdk("BatchGetItem", &e))?;
            let found = answer
                .responses
                .as_ref()
                .and_then(|r| r.get(&table.name))
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let sk = item.get("sk")?.as_s().ok()?;
                    Some(sk.strip_prefix("POSTEDCH#")?.to_string())
                });
            posted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(found);
            Ok(answer
                .unprocessed_keys
                .and_then(|mut u| u.remove(&table.name))
                .filter(|k| !k.keys.is_empty()))
        })
        .await?;
    }
    Ok(posted.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The items that record `image` as posted: `POSTED#<sha256>` and, with a
/// content hash, `POSTEDCH#<content hash>`.
fn posted_items(tenant: &str, image: &PostedImage) -> Vec<HashMap<String, AttributeValue>> {
    let platforms = image.platforms.iter().cloned().map(AttributeValue::S);
    let mut posted = HashMap::from([
        ("pk".to_string(), s(tenant_pk(tenant))),
        ("sk".to_string(), s(sha_sk(&image.sha256))),
        ("image_name".to_string(), s(image.image_name.clone())),
        ("posted_at".to_string(), n(epoch_secs(image.posted_at))),
        (
            "platforms".to_string(),
            AttributeValue::L(platforms.collect()),
        ),
    ]);
    if image.uncertain {
        posted.insert("uncertain".to_string(), AttributeValue::Bool(true));
    }
    let mut items = Vec::new();
    if let Some(ch) = &image.content_hash {
        posted.insert("content_hash".to_string(), s(ch.clone()));
        items.push(HashMap::from([
            ("pk".to_string(), s(tenant_pk(tenant))),
            ("sk".to_string(), s(content_hash_sk(ch))),
            ("sha256".to_string(), s(image.sha256.clone())),
        ]));
    }
    items.insert(0, posted);
    items
}

/// Claims an image for `holder` until `until`: a conditional put of
/// `IMAGE#<sha256>`. A live claim of another run is left alone; one found
/// past its `until` (or with a `until` no run could have set) belongs to a
/// run that died while sending, and becomes the image's posted record,
/// uncertain, in the same transaction that removes it.
pub(super) async fn claim_image(
    table: &Table,
    tenant: &str,
    image: &Claimed,
    holder: &str,
    until: SystemTime,
    now: SystemTime,
) -> Result<ImageClaim, DynamoError> {
    let put = table
        .client
        .put_item()
        .table_name(&table.name)
        .item("pk", s(tenant_pk(tenant)))
        .item("sk", s(image_sk(&image.sha256)))
        .item("holder", s(holder))
        .item("until", n(epoch_secs(until)))
        .item("image_name", s(image.name.clone()))
        .item(
            "expires_at",
            n(epoch_secs(until).saturating_add(IMAGE_CLAIM_RETENTION.as_secs())),
        )
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let held = match &put {
        Ok(_) => return Ok(ImageClaim::Acquired),
        Err(error) => match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(held)) => held.item().cloned(),
            _ => return Err(DynamoError::from_sdk("PutItem", error)),
        },
    };
    let Some(held) = held else {
        // Settled between the two calls: the run may claim it again next time.
        return Ok(ImageClaim::Held);
    };
    let seen_until = held
        .get("until")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let plausible = |until: u64| until <= epoch_secs(now).saturating_add(MAX_CLAIM.as_secs());
    if seen_until.is_some_and(|until| until > epoch_secs(now) && plausible(until)) {
        return Ok(ImageClaim::Held);
    }
    let name = held
        .get("image_name")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_else(|| image.name.clone());
    let record = PostedImage {
        sha256: image.sha256.clone(),
        content_hash: image.content_hash.clone(),
        image_name: name.clone(),
        posted_at: now,
        platforms: Vec::new(),
        uncertain: true,
    };
    let mut delete = Delete::builder()
        .table_name(&table.name)
        .key("pk", s(tenant_pk(tenant)))
        .key("sk", s(image_sk(&image.sha256)));
    delete = match seen_until {
        Some(until) => delete
            .condition_expression("#until = :seen")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":seen", n(until)),
        None => delete
            .condition_expression("attribute_not_exists(#until)")
            .expression_attribute_names("#until", "until"),
    };
    match write_posted(table, tenant, &record, delete).await {
        Ok(()) => Ok(ImageClaim::Uncertain { image_name: name }),
        // Another run converted it first: posted either way.
        Err(Settle::ConditionFailed) => Ok(ImageClaim::Uncertain { image_name: name }),
        Err(Settle::Call(error)) => Err(error),
    }
}

/// Ends `holder`'s claim on an image: with `posted`, the posted record and
/// the claim's removal in one transaction; without, only the removal. Both
/// only while `holder` still holds it.
pub(super) async fn settle_image(
    table: &Table,
    tenant: &str,
    sha256: &str,
    holder: &str,
    posted: Option<&PostedImage>,
) -> Result<(), DynamoError> {
    let settled = match posted {
        Some(image) => {
            let release = Delete::builder()
                .table_name(&table.name)
                .key("pk", s(tenant_pk(tenant)))
                .key("sk", s(image_sk(sha256)))
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", s(holder));
            write_posted(table, tenant, image, release).await
        }
        None => {
            let released = table
                .client
                .delete_item()
                .table_name(&table.name)
                .key("pk", s(tenant_pk(tenant)))
                .key("sk", s(image_sk(sha256)))
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", s(holder))
                .send()
                .await;
            match released {
                Ok(_) => Ok(()),
                Err(error) if is_condition_failure(&error) => Err(Settle::ConditionFailed),
                Err(error) => Err(Settle::Call(DynamoError::from_sdk("DeleteItem", &error))),
            }
        }
    };
    match settled {
        Ok(()) => Ok(()),
        Err(Settle::ConditionFailed) => Err(DynamoError::new(
            "TransactWriteItems",
            "the image claim was no longer this run's",
        )),
        Err(Settle::Call(error)) => Err(error),
    }
}

/// Why a conditional settlement did not happen.
enum Settle {
    ConditionFailed,
    Call(DynamoError),
}

/// Writes the posted record of `image` and `delete` (a claim's removal,
/// with its condition) in one transaction.
async fn write_posted(
    table: &Table,
    tenant: &str,
    image: &PostedImage,
    delete: DeleteBuilder,
) -> Result<(), Settle> {
    let built = |what: &'static str| {
        move |e: BuildError| Settle::Call(DynamoError::new(what, e.to_string()))
    };
    let mut items = Vec::new();
    for item in posted_items(tenant, image) {
        let put = Put::builder()
            .table_name(&table.name)
            .set_item(Some(item))
            .build()
            .map_err(built("Put"))?;
        items.push(TransactWriteItem::builder().put(put).build());
    }
    let delete = delete.build().map_err(built("Delete"))?;
    items.push(TransactWriteItem::builder().delete(delete).build());
    let written = table
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(error) => {
            let cancelled = error.as_service_error().is_some_and(|e| {
                matches!(e, TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")))
            });
            if cancelled {
                Err(Settle::ConditionFailed)
            } else {
                Err(Settle::Call(DynamoError::from_sdk(
                    "TransactWriteItems",
                    &error,
                )))
            }
        }
    }
}

pub(super) async fn claim(
    table: &Table,
    tenant: &str,
    key: &str,
    in_progress_until: SystemTime,
    now: SystemTime,
) -> Result<Claim, DynamoError> {
    for _ in 0..CLAIM_TRIES {
        let put = table
            .client
            .put_item()
            .table_name(&table.name)
            .item("pk", s(tenant_pk(tenant)))
            .item("sk", s(run_sk(key)))
            .item("status", s(IN_PROGRESS))
            .item("in_progress_until", n(epoch_secs(in_progress_until)))
            .item("expires_at", n(epoch_secs(record_expiry(now))))
            // A holder past its deadline is gone; one whose deadline is
            // further ahead than any run's was not set by a run.
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress \
                 AND (in_progress_until < :now OR in_progress_until > :latest))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(epoch_secs(now)))
            .expression_attribute_values(
                ":latest",
                n(epoch_secs(now).saturating_add(MAX_CLAIM.as_secs())),
            )
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Claim::Acquired),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(error) => return Err(DynamoError::from_sdk("PutItem", &error)),
        }
        let existing = table
            .client
            .get_item()
            .table_name(&table.name)
            .key("pk", s(tenant_pk(tenant)))
            .key("sk", s(run_sk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("GetItem", &e))?;
        // Gone between the two calls: its holder released it; try again.
        let Some(item) = existing.item else { continue };
        let completed = item
            .get("status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(COMPLETED);
        let result = item
            .get("result")
            .and_then(|v| v.as_s().ok())
            .and_then(|text| serde_json::from_str(text).ok());
        return Ok(Claim::Duplicate { completed, result });
    }
    Err(DynamoError::new("PutItem", "the claim kept changing hands"))
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}
