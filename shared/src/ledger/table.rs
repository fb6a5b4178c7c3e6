//! The ledger in the DynamoDB table: `TENANT#<tenant>` items for posted
//! images (`POSTED#<sha256>`, `POSTEDCH#<content hash>`) and event claims
//! (`RUN#<idempotency key>`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::Value;

use super::{
    content_hash_sk, record_expiry, run_sk, sha_sk, tenant_pk, Claim, PostedImage, COMPLETED,
    IN_PROGRESS,
};
use crate::clock::Clock;
use crate::table::{epoch_secs, n, s, until_processed, DynamoError, Table};

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

pub(super) async fn record_posted(
    table: &Table,
    tenant: &str,
    image: &PostedImage,
) -> Result<(), DynamoError> {
    let mut put = table
        .client
        .put_item()
        .table_name(&table.name)
        .item("pk", s(tenant_pk(tenant)))
        .item("sk", s(sha_sk(&image.sha256)))
        .item("image_name", s(image.image_name.clone()))
        .item("posted_at", n(epoch_secs(image.posted_at)))
        .item(
            "platforms",
            AttributeValue::L(
                image
                    .platforms
                    .iter()
                    .cloned()
                    .map(AttributeValue::S)
                    .collect(),
            ),
        );
    if let Some(ch) = &image.content_hash {
        put = put.item("content_hash", s(ch.clone()));
    }
    put.send()
        .await
        .map_err(|e| DynamoError::from_sdk("PutItem", &e))?;
    if let Some(ch) = &image.content_hash {
        table
            .client
            .put_item()
            .table_name(&table.name)
            .item("pk", s(tenant_pk(tenant)))
            .item("sk", s(content_hash_sk(ch)))
            .item("sha256", s(image.sha256.clone()))
            .send()
            .await
            .map_err(|e| DynamoError::from_sdk("PutItem", &e))?;
    }
    Ok(())
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
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress AND in_progress_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(epoch_secs(now)))
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
