//! The ledger in process memory, for runs without a table: the same keys
//! and the same rules as the table's items.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::Value;

use super::{
    content_hash_sk, image_sk, record_expiry, sha_sk, Claim, Claimed, ImageClaim, PostedImage,
};

#[derive(Default)]
pub(super) struct Memory {
    /// Keyed like the table: (tenant, `POSTED#sha` or `POSTEDCH#hash`).
    posted: Mutex<HashMap<(String, String), PostedImage>>,
    claims: Mutex<HashMap<(String, String), MemoryClaim>>,
    /// Keyed like the table: (tenant, `IMAGE#sha`).
    image_claims: Mutex<HashMap<(String, String), ImageHolder>>,
}

struct ImageHolder {
    holder: String,
    until: SystemTime,
}

struct MemoryClaim {
    completed: bool,
    in_progress_until: SystemTime,
    result: Option<Value>,
    expires_at: SystemTime,
}

impl Memory {
    pub(super) fn posted_content_hashes(
        &self,
        tenant: &str,
        content_hashes: &[String],
    ) -> HashSet<String> {
        let posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        content_hashes
            .iter()
            .filter(|ch| posted.contains_key(&(tenant.to_string(), content_hash_sk(ch))))
            .cloned()
            .collect()
    }

    pub(super) fn is_posted(&self, tenant: &str, sha256: &str) -> bool {
        let posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        posted.contains_key(&(tenant.to_string(), sha_sk(sha256)))
    }

    pub(super) fn claim_image(
        &self,
        tenant: &str,
        image: &Claimed,
        holder: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> ImageClaim {
        let key = (tenant.to_string(), image_sk(&image.sha256));
        let mut claims = self.image_claims.lock().unwrap_or_else(|e| e.into_inner());
        match claims.get(&key) {
            None => {
                let holder = holder.to_string();
                claims.insert(key, ImageHolder { holder, until });
                ImageClaim::Acquired
            }
            Some(held) if held.until > now => ImageClaim::Held,
            Some(_) => {
                claims.remove(&key);
                drop(claims);
                self.record_posted(
                    tenant,
                    &PostedImage {
                        sha256: image.sha256.clone(),
                        content_hash: image.content_hash.clone(),
                        image_name: image.name.clone(),
                        posted_at: now,
                        platforms: Vec::new(),
                        uncertain: true,
                    },
                );
                ImageClaim::Uncertain {
                    image_name: image.name.clone(),
                }
            }
        }
    }

    pub(super) fn settle_image(
        &self,
        tenant: &str,
        sha256: &str,
        holder: &str,
        posted: Option<&PostedImage>,
    ) {
        let key = (tenant.to_string(), image_sk(sha256));
        let mut claims = self.image_claims.lock().unwrap_or_else(|e| e.into_inner());
        if claims.get(&key).is_some_and(|held| held.holder == holder) {
            claims.remove(&key);
            drop(claims);
            if let Some(image) = posted {
                self.record_posted(tenant, image);
            }
        }
    }

    fn record_posted(&self, tenant: &str, image: &PostedImage) {
        let mut posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        posted.insert((tenant.to_string(), sha_sk(&image.sha256)), image.clone());
        if let Some(ch) = &image.content_hash {
            posted.insert((tenant.to_string(), content_hash_sk(ch)), image.clone());
        }
    }

    pub(super) fn claim(
        &self,
        tenant: &str,
        key: &str,
        in_progress_until: SystemTime,
        now: SystemTime,
    ) -> Claim {
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
                        expires_at: record_expiry(now),
                    },
                );
                Claim::Acquired
            }
        }
    }

    pub(super) fn complete(&self, tenant: &str, key: &str, result: &Value, now: SystemTime) {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.insert(
            (tenant.to_string(), key.to_string()),
            MemoryClaim {
                completed: true,
                in_progress_until: now,
                result: Some(result.clone()),
                expires_at: record_expiry(now),
            },
        );
    }

    pub(super) fn release(&self, tenant: &str, key: &str) {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.remove(&(tenant.to_string(), key.to_string()));
    }
}
