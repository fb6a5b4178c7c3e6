//! A tenant's publish state (publish.md §Tenant state): the posted set, by
//! SHA-256 and by storage content hash, and the publish claims that make a
//! scheduled event publish at most once. In DynamoDB when `PUBLISHER_TABLE`
//! is set, in process memory otherwise (local runs).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::Value;

use crate::dynamo::{epoch_secs, n, s, DynamoError, Table};

/// How long a claim record is kept (the DynamoDB TTL).
pub const CLAIM_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
const BATCH_GET_LIMIT: usize = 100;
const CLAIM_TRIES: u32 = 3;

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// An image that was published, as recorded in the posted set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedImage {
    pub sha256: String,
    pub content_hash: Option<String>,
    pub image_name: String,
    pub posted_at: SystemTime,
    pub platforms: Vec<String>,
}

/// The answer to a claim on `(tenant, idempotency key)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This run owns the event.
    Acquired,
    /// Another run completed it (with its result) or is still at it (no result).
    Duplicate {
        completed: bool,
        result: Option<Value>,
    },
}

#[derive(Clone)]
pub enum Store {
    Memory(Arc<Memory>),
    Dynamo(Table),
}

impl Store {
    /// DynamoDB when a table is configured, else a fresh in-memory store.
    pub fn new(table: Option<Table>) -> Store {
        match table {
            Some(table) => Store::Dynamo(table),
            None => Store::Memory(Arc::default()),
        }
    }

    /// Which of `content_hashes` are in the tenant's posted set.
    pub async fn posted_content_hashes(
        &self,
        tenant: &str,
        content_hashes: &[String],
    ) -> Result<HashSet<String>, DynamoError> {
        match self {
            Store::Memory(memory) => {
                let posted = memory.posted.lock().unwrap_or_else(|e| e.into_inner());
                Ok(content_hashes
                    .iter()
                    .filter(|ch| posted.contains_key(&(tenant.to_string(), content_hash_sk(ch))))
                    .cloned()
                    .collect())
            }
            Store::Dynamo(table) => {
                dynamo::posted_content_hashes(table, tenant, content_hashes).await
            }
        }
    }

    /// Is an image with this SHA-256 in the tenant's posted set?
    pub async fn is_posted(&self, tenant: &str, sha256: &str) -> Result<bool, DynamoError> {
        match self {
            Store::Memory(memory) => {
                let posted = memory.posted.lock().unwrap_or_else(|e| e.into_inner());
                Ok(posted.contains_key(&(tenant.to_string(), sha_sk(sha256))))
            }
            Store::Dynamo(table) => {
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
        }
    }

    pub async fn record_posted(
        &self,
        tenant: &str,
        image: &PostedImage,
    ) -> Result<(), DynamoError> {
        match self {
            Store::Memory(memory) => {
                let mut posted = memory.posted.lock().unwrap_or_else(|e| e.into_inner());
                posted.insert((tenant.to_string(), sha_sk(&image.sha256)), image.clone());
                if let Some(ch) = &image.content_hash {
                    posted.insert((tenant.to_string(), content_hash_sk(ch)), image.clone());
                }
                Ok(())
            }
            Store::Dynamo(table) => dynamo::record_posted(table, tenant, image).await,
        }
    }

    /// Claims `(tenant, key)` for this run until `in_progress_until`. A claim
    /// whose holder ran past that time (crashed or timed out) is taken over.
    pub async fn claim(
        &self,
        tenant: &str,
        key: &str,
        in_progress_until: SystemTime,
    ) -> Result<Claim, DynamoError> {
        match self {
            Store::Memory(memory) => Ok(memory.claim(tenant, key, in_progress_until)),
            Store::Dynamo(table) => dynamo::claim(table, tenant, key, in_progress_until).await,
        }
    }

    /// Marks the claim completed with the run's result.
    pub async fn complete(
        &self,
        tenant: &str,
        key: &str,
        result: &Value,
    ) -> Result<(), DynamoError> {
        match self {
            Store::Memory(memory) => {
                let mut claims = memory.claims.lock().unwrap_or_else(|e| e.into_inner());
                claims.insert(
                    (tenant.to_string(), key.to_string()),
                    MemoryClaim {
                        completed: true,
                        in_progress_until: SystemTime::now(),
                        result: Some(result.clone()),
                        expires_at: SystemTime::now() + CLAIM_RECORD_TTL,
                    },
                );
                Ok(())
            }
            Store::Dynamo(table) => {
                table
                    .client
                    .update_item()
                    .table_name(&table.name)
                    .key("pk", s(tenant_pk(tenant)))
                    .key("sk", s(run_sk(key)))
                    .update_expression(
                        "SET #status = :completed, #result = :result, expires_at = :expires",
                    )
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#result", "result")
                    .expression_attribute_values(":completed", s(COMPLETED))
                    .expression_attribute_values(":result", s(result.to_string()))
                    .expression_attribute_values(
                        ":expires",
                        n(epoch_secs(SystemTime::now() + CLAIM_RECORD_TTL)),
                    )
                    .send()
                    .await
                    .map_err(|e| DynamoError::from_sdk("UpdateItem", &e))?;
                Ok(())
            }
        }
    }

    /// Gives the claim up, so that a retry of the event can run.
    pub async fn release(&self, tenant: &str, key: &str) -> Result<(), DynamoError> {
        match self {
            Store::Memory(memory) => {
                let mut claims = memory.claims.lock().unwrap_or_else(|e| e.into_inner());
                claims.remove(&(tenant.to_string(), key.to_string()));
                Ok(())
            }
            Store::Dynamo(table) => {
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
        }
    }
}

/// The in-memory store, for runs without a table.
#[derive(Default)]
pub struct Memory {
    /// Keyed like the table: (tenant, `POSTED#sha` or `POSTEDCH#hash`).
    posted: Mutex<HashMap<(String, String), PostedImage>>,
    claims: Mutex<HashMap<(String, String), MemoryClaim>>,
}

struct MemoryClaim {
    completed: bool,
    in_progress_until: SystemTime,
    result: Option<Value>,
    expires_at: SystemTime,
}

impl Memory {
    fn claim(&self, tenant: &str, key: &str, in_progress_until: SystemTime) -> Claim {
        let now = SystemTime::now();
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.retain(|_, claim| claim.expires_at > now);
        let id = (tenant.to_string(), key.to_string());
        match claims.get(&id) {
            Some(claim) if claim.completed => Claim::Duplicate {
                completed: true,
                result: claim.result.clone(),
            },
            Some(claim) if claim.in_progress_until > now => Claim::Duplicate {
                completed: false,
                result: None,
            },
            _ => {
                claims.insert(
                    id,
                    MemoryClaim {
                        completed: false,
                        in_progress_until,
                        result: None,
                        expires_at: now + CLAIM_RECORD_TTL,
                    },
                );
                Claim::Acquired
            }
        }
    }
}

mod dynamo {
    use super::*;

    pub(super) async fn posted_content_hashes(
        table: &Table,
        tenant: &str,
        content_hashes: &[String],
    ) -> Result<HashSet<String>, DynamoError> {
        let unique: HashSet<&String> = content_hashes.iter().collect();
        let unique: Vec<&String> = unique.into_iter().collect();
        let mut posted = HashSet::new();
        for chunk in unique.chunks(BATCH_GET_LIMIT) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|ch| key(tenant_pk(tenant), content_hash_sk(ch)))
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("sk")
                .build()
                .map_err(|e| DynamoError::new("BatchGetItem", e.to_string()))?;
            let mut backoff = Duration::from_millis(50);
            loop {
                let answer = table
                    .client
                    .batch_get_item()
                    .request_items(&table.name, request.clone())
                    .send()
                    .await
                    .map_err(|e| DynamoError::from_sdk("BatchGetItem", &e))?;
                for item in answer
                    .responses
                    .as_ref()
                    .and_then(|r| r.get(&table.name))
                    .into_iter()
                    .flatten()
                {
                    if let Some(ch) = item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|sk| sk.strip_prefix("POSTEDCH#"))
                    {
                        posted.insert(ch.to_string());
                    }
                }
                match answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&table.name))
                    .filter(|k| !k.keys.is_empty())
                {
                    Some(rest) => {
                        request = rest;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    None => break,
                }
            }
        }
        Ok(posted)
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
    ) -> Result<Claim, DynamoError> {
        for _ in 0..CLAIM_TRIES {
            let now = SystemTime::now();
            let put = table
                .client
                .put_item()
                .table_name(&table.name)
                .item("pk", s(tenant_pk(tenant)))
                .item("sk", s(run_sk(key)))
                .item("status", s(IN_PROGRESS))
                .item("in_progress_until", n(epoch_secs(in_progress_until)))
                .item("expires_at", n(epoch_secs(now + CLAIM_RECORD_TTL)))
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
}

fn tenant_pk(tenant: &str) -> String {
    format!("TENANT#{tenant}")
}

fn sha_sk(sha256: &str) -> String {
    format!("POSTED#{sha256}")
}

fn content_hash_sk(content_hash: &str) -> String {
    format!("POSTEDCH#{content_hash}")
}

fn run_sk(key: &str) -> String {
    format!("RUN#{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn posted(sha: &str, ch: Option<&str>) -> PostedImage {
        PostedImage {
            sha256: sha.into(),
            content_hash: ch.map(String::from),
            image_name: "a.jpg".into(),
            posted_at: SystemTime::now(),
            platforms: vec!["telegram".into()],
        }
    }

    #[tokio::test]
    async fn memory_posted_set_is_per_tenant() {
        let store = Store::new(None);
        store
            .record_posted("t1", &posted("sha-a", Some("ch-a")))
            .await
            .unwrap();
        assert!(store.is_posted("t1", "sha-a").await.unwrap());
        assert!(!store.is_posted("t2", "sha-a").await.unwrap());
        let hashes = ["ch-a".to_string(), "ch-b".to_string()];
        assert_eq!(
            store.posted_content_hashes("t1", &hashes).await.unwrap(),
            HashSet::from(["ch-a".to_string()])
        );
        assert!(store
            .posted_content_hashes("t2", &hashes)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn memory_claims_follow_the_protocol() {
        let store = Store::new(None);
        let until = SystemTime::now() + Duration::from_secs(900);
        assert_eq!(store.claim("t", "k", until).await.unwrap(), Claim::Acquired);
        assert_eq!(
            store.claim("t", "k", until).await.unwrap(),
            Claim::Duplicate {
                completed: false,
                result: None
            }
        );
        assert_eq!(
            store.claim("other", "k", until).await.unwrap(),
            Claim::Acquired
        );
        store
            .complete("t", "k", &json!({"status": "published"}))
            .await
            .unwrap();
        assert_eq!(
            store.claim("t", "k", until).await.unwrap(),
            Claim::Duplicate {
                completed: true,
                result: Some(json!({"status": "published"}))
            }
        );
        store.release("other", "k").await.unwrap();
        assert_eq!(
            store.claim("other", "k", until).await.unwrap(),
            Claim::Acquired
        );
        // A holder past its in-progress expiry has died: the claim is taken over.
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            store.claim("t", "stale", past).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            store.claim("t", "stale", until).await.unwrap(),
            Claim::Acquired
        );
    }
}
