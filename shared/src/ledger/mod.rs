//! A tenant's publish ledger: the posted set, by SHA-256 and by storage
//! content hash; the event claims that make a scheduled event publish at
//! most once; and the image claims that make each image published at most
//! once, whichever runs choose it. In the DynamoDB table when
//! `PUBLISHER_TABLE` is set (items described in `docs/table.md`), in process
//! memory otherwise (local runs).

mod memory;
mod table;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::clock::Clock;
use crate::table::{DynamoError, Table};

/// How long a claim record is kept (the DynamoDB TTL).
pub const CLAIM_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// How long a settled-or-not image claim is kept past its `until` (the
/// table's TTL): long enough for a later run to find the claim of a run
/// that died, and record its image as posted.
pub const IMAGE_CLAIM_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// No run holds an image longer than this: a claim's `until` further ahead
/// is not one a run set.
pub const MAX_CLAIM: Duration = Duration::from_secs(3600);

/// An image that was published, as recorded in the posted set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedImage {
    pub sha256: String,
    pub content_hash: Option<String>,
    pub image_name: String,
    pub posted_at: SystemTime,
    pub platforms: Vec<String>,
    /// A run that held the image died while sending: it may have been
    /// posted, and is never sent again.
    pub uncertain: bool,
}

/// The image a run claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub sha256: String,
    pub content_hash: Option<String>,
    pub name: String,
}

/// The answer to an image claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageClaim {
    /// This run holds the image; it must settle the claim.
    Acquired,
    /// Another run holds it now.
    Held,
    /// A run that held it died while sending: it is recorded as posted,
    /// uncertain, now.
    Uncertain { image_name: String },
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
pub struct Ledger {
    backend: Backend,
    clock: Clock,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<memory::Memory>),
    Table(Table),
}

impl Ledger {
    /// On `table` when one is configured, else a fresh in-memory ledger.
    pub fn new(table: Option<Table>, clock: Clock) -> Ledger {
        let backend = match table {
            Some(table) => Backend::Table(table),
            None => Backend::Memory(Arc::default()),
        };
        Ledger { backend, clock }
    }

    /// Which of `content_hashes` are in the tenant's posted set.
    pub async fn posted_content_hashes(
        &self,
        tenant: &str,
        content_hashes: &[String],
    ) -> Result<HashSet<String>, DynamoError> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.posted_content_hashes(tenant, content_hashes)),
            Backend::Table(table) => {
                table::posted_content_hashes(table, &self.clock, tenant, content_hashes).await
            }
        }
    }

    /// Is an image with this SHA-256 in the tenant's posted set?
    pub async fn is_posted(&self, tenant: &str, sha256: &str) -> Result<bool, DynamoError> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.is_posted(tenant, sha256)),
            Backend::Table(table) => table::is_posted(table, tenant, sha256).await,
        }
    }

    /// Claims `image` for `holder` until `until`, before any publisher is
    /// contacted.
    pub async fn claim_image(
        &self,
        tenant: &str,
        image: &Claimed,
        holder: &str,
        until: SystemTime,
    ) -> Result<ImageClaim, DynamoError> {
        let now = self.clock.now();
        let claim = match &self.backend {
            Backend::Memory(memory) => memory.claim_image(tenant, image, holder, until, now),
            Backend::Table(table) => {
                table::claim_image(table, tenant, image, holder, until, now).await?
            }
        };
        if let ImageClaim::Uncertain { image_name } = &claim {
            tracing::warn!(
                tenant,
                image = %image_name,
                "a run died while publishing this image: recorded as posted (uncertain), never sent again"
            );
        }
        Ok(claim)
    }

    /// Ends `holder`'s claim on an image: `posted` (something was sent)
    /// becomes its posted record at once; `None` frees the image.
    pub async fn settle_image(
        &self,
        tenant: &str,
        sha256: &str,
        holder: &str,
        posted: Option<&PostedImage>,
    ) -> Result<(), DynamoError> {
        match &self.backend {
            Backend::Memory(memory) => {
                memory.settle_image(tenant, sha256, holder, posted);
                Ok(())
            }
            Backend::Table(table) => {
                table::settle_image(table, tenant, sha256, holder, posted).await
            }
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
        let now = self.clock.now();
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.claim(tenant, key, in_progress_until, now)),
            Backend::Table(table) => table::claim(table, tenant, key, in_progress_until, now).await,
        }
    }

    /// Marks the claim completed with the run's result.
    pub async fn complete(
        &self,
        tenant: &str,
        key: &str,
        result: &Value,
    ) -> Result<(), DynamoError> {
        let now = self.clock.now();
        match &self.backend {
            Backend::Memory(memory) => {
                memory.complete(tenant, key, result, now);
                Ok(())
            }
            Backend::Table(table) => table::complete(table, tenant, key, result, now).await,
        }
    }

    /// Gives the claim up, so that a retry of the event can run.
    pub async fn release(&self, tenant: &str, key: &str) -> Result<(), DynamoError> {
        match &self.backend {
            Backend::Memory(memory) => {
                memory.release(tenant, key);
                Ok(())
            }
            Backend::Table(table) => table::release(table, tenant, key).await,
        }
    }
}

/// The record of a claim kept until `now` + [`CLAIM_RECORD_TTL`].
fn record_expiry(now: SystemTime) -> SystemTime {
    now.checked_add(CLAIM_RECORD_TTL).unwrap_or(now)
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

fn image_sk(sha256: &str) -> String {
    format!("IMAGE#{sha256}")
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
            uncertain: false,
        }
    }

    fn claimed(sha: &str, ch: Option<&str>) -> Claimed {
        Claimed {
            sha256: sha.into(),
            content_hash: ch.map(String::from),
            name: "a.jpg".into(),
        }
    }

    /// Records `image` as the ledger does: claimed, then settled as posted.
    async fn publish(ledger: &Ledger, tenant: &str, image: &PostedImage) {
        let until = SystemTime::now() + Duration::from_secs(900);
        let claim = claimed(&image.sha256, image.content_hash.as_deref());
        let held = ledger.claim_image(tenant, &claim, "run", until).await;
        assert_eq!(held.unwrap(), ImageClaim::Acquired);
        ledger
            .settle_image(tenant, &image.sha256, "run", Some(image))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn memory_posted_set_is_per_tenant() {
        let ledger = Ledger::new(None, Clock::system());
        publish(&ledger, "t1", &posted("sha-a", Some("ch-a"))).await;
        assert!(ledger.is_posted("t1", "sha-a").await.unwrap());
        assert!(!ledger.is_posted("t2", "sha-a").await.unwrap());
        let hashes = ["ch-a".to_string(), "ch-b".to_string()];
        assert_eq!(
            ledger.posted_content_hashes("t1", &hashes).await.unwrap(),
            HashSet::from(["ch-a".to_string()])
        );
        assert!(ledger
            .posted_content_hashes("t2", &hashes)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn memory_claims_follow_the_protocol() {
        let ledger = Ledger::new(None, Clock::system());
        let until = SystemTime::now() + Duration::from_secs(900);
        assert_eq!(
            ledger.claim("t", "k", until).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            ledger.claim("t", "k", until).await.unwrap(),
            Claim::Duplicate {
                completed: false,
                result: None
            }
        );
        assert_eq!(
            ledger.claim("other", "k", until).await.unwrap(),
            Claim::Acquired
        );
        ledger
            .complete("t", "k", &json!({"status": "published"}))
            .await
            .unwrap();
        assert_eq!(
            ledger.claim("t", "k", until).await.unwrap(),
            Claim::Duplicate {
                completed: true,
                result: Some(json!({"status": "published"}))
            }
        );
        ledger.release("other", "k").await.unwrap();
        assert_eq!(
            ledger.claim("other", "k", until).await.unwrap(),
            Claim::Acquired
        );
        // A holder past its in-progress expiry has died: the claim is taken over.
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            ledger.claim("t", "stale", past).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            ledger.claim("t", "stale", until).await.unwrap(),
            Claim::Acquired
        );
    }

    #[tokio::test]
    async fn memory_image_claims_follow_the_protocol() {
        let clock = Clock::manual_now();
        let ledger = Ledger::new(None, clock.clone());
        let until = clock.now() + Duration::from_secs(60);
        let image = claimed("sha-b", Some("ch-b"));
        let claim = |holder: &'static str| {
            let (ledger, image) = (ledger.clone(), image.clone());
            async move {
                ledger
                    .claim_image("t", &image, holder, until)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim("run-1").await, ImageClaim::Acquired);
        assert_eq!(claim("run-2").await, ImageClaim::Held);
        // Another run's settlement does not touch run-1's claim.
        ledger
            .settle_image("t", "sha-b", "run-2", None)
            .await
            .unwrap();
        assert_eq!(claim("run-3").await, ImageClaim::Held);
        // Released with nothing sent: free again.
        ledger
            .settle_image("t", "sha-b", "run-1", None)
            .await
            .unwrap();
        assert_eq!(claim("run-4").await, ImageClaim::Acquired);
        assert!(!ledger.is_posted("t", "sha-b").await.unwrap());
        // run-4 dies while sending: after its claim runs out, the image is
        // posted (uncertain), and never claimed again.
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            claim("run-5").await,
            ImageClaim::Uncertain {
                image_name: "a.jpg".into()
            }
        );
        assert!(ledger.is_posted("t", "sha-b").await.unwrap());
        let hashes = ["ch-b".to_string()];
        assert_eq!(
            ledger
                .posted_content_hashes("t", &hashes)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
