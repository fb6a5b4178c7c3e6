//! Step 3 of a run: the image to publish, downloaded and hashed. With
//! `select`, that file; otherwise the listed images in random order, those
//! whose content hash or SHA-256 is in the posted set skipped, those whose
//! header declares more pixels than may be decoded refused, and those
//! another run has claimed left to it. The image taken is claimed.

use std::time::SystemTime;

use bytes::Bytes;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::Reason;
use crate::image_bounds::{self, TooLarge};
use crate::ledger::{Claimed, ImageClaim, Ledger};
use crate::storage::{FileEntry, Listing, Storage, StorageError};

/// The chosen image, held in memory only.
pub(super) struct Chosen {
    pub(super) entry: FileEntry,
    pub(super) bytes: Bytes,
    pub(super) sha256: String,
    /// This run holds the image's claim, and must settle it.
    pub(super) claimed: bool,
}

/// Who claims the chosen image, until when: the runs that send.
pub(super) struct Claimant<'a> {
    pub(super) holder: &'a str,
    pub(super) until: SystemTime,
}

/// What a downloaded candidate turned out to be.
enum Verdict {
    Take,
    Posted,
    TooLarge,
    /// Another run holds it now.
    Held,
}

/// The selected file, or the first unposted one in random order; claimed
/// for `claimant` before any publisher is contacted.
pub(super) async fn choose(
    ledger: &Ledger,
    tenant: &str,
    listing: &Listing,
    select: Option<&str>,
    storage: &dyn Storage,
    claimant: Option<&Claimant<'_>>,
) -> Result<Chosen, Reason> {
    let failed = |what| move |error| Reason::Storage { what, error };
    if let Some(name) = select {
        let entry = listing.image(name).cloned().ok_or(Reason::ImageNotFound)?;
        let mut chosen = download(storage, entry)
            .await
            .map_err(failed("Downloading the image failed"))?;
        return match verdict(ledger, tenant, &chosen, claimant).await? {
            Verdict::Take => {
                chosen.claimed = claimant.is_some();
                Ok(chosen)
            }
            Verdict::Posted => Err(Reason::AlreadyPublished),
            Verdict::TooLarge => Err(Reason::ImageTooLarge(chosen.entry.name)),
            Verdict::Held => Err(Reason::PublishInProgress),
        };
    }
    let mut candidates = listing.images().to_vec();
    candidates.shuffle(&mut rand::rng());
    let hashes: Vec<String> = candidates
        .iter()
        .filter_map(|e| e.content_hash.clone())
        .collect();
    let posted = ledger
        .posted_content_hashes(tenant, &hashes)
        .await
        .map_err(unreadable)?;
    // A posted content hash is the same bytes as a posted image: no need to
    // download it to know.
    candidates.retain(|e| {
        e.content_hash
            .as_ref()
            .is_none_or(|ch| !posted.contains(ch))
    });
    let (mut too_large, mut in_progress) = (0, 0);
    for entry in candidates {
        let mut chosen = match download(storage, entry).await {
            Ok(chosen) => chosen,
            // Moved away since the listing: the next one.
            Err(StorageError::NotFound) => continue,
            Err(error) => return Err(failed("Downloading an image failed")(error)),
        };
        match verdict(ledger, tenant, &chosen, claimant).await? {
            Verdict::Take => {
                chosen.claimed = claimant.is_some();
                return Ok(chosen);
            }
            Verdict::Posted => {}
            // Refused or taken by another run: the next candidate.
            Verdict::TooLarge => too_large += 1,
            Verdict::Held => in_progress += 1,
        }
    }
    Err(Reason::NothingNew {
        too_large,
        in_progress,
    })
}

/// Whether a downloaded candidate may be published by this run.
async fn verdict(
    ledger: &Ledger,
    tenant: &str,
    chosen: &Chosen,
    claimant: Option<&Claimant<'_>>,
) -> Result<Verdict, Reason> {
    if ledger
        .is_posted(tenant, &chosen.sha256)
        .await
        .map_err(unreadable)?
    {
        return Ok(Verdict::Posted);
    }
    if let Err(too_large) = image_bounds::check(&chosen.bytes) {
        refused(tenant, &chosen.entry.name, too_large);
        return Ok(Verdict::TooLarge);
    }
    let Some(claimant) = claimant else {
        return Ok(Verdict::Take);
    };
    let image = Claimed {
        sha256: chosen.sha256.clone(),
        content_hash: chosen.entry.content_hash.clone(),
        name: chosen.entry.name.clone(),
    };
    let claim = ledger
        .claim_image(tenant, &image, claimant.holder, claimant.until)
        .await
        .map_err(|e| Reason::ClaimFailed(e.to_string()))?;
    Ok(match claim {
        ImageClaim::Acquired => Verdict::Take,
        ImageClaim::Held => Verdict::Held,
        ImageClaim::Uncertain { .. } => Verdict::Posted,
    })
}

fn unreadable(error: crate::table::DynamoError) -> Reason {
    Reason::PostedSetUnavailable(error.to_string())
}

/// An image too large to decode, logged with its name.
fn refused(tenant: &str, name: &str, too_large: TooLarge) {
    tracing::warn!(tenant, image = name, error = %too_large, "image refused: too large to decode");
}

async fn download(storage: &dyn Storage, entry: FileEntry) -> Result<Chosen, StorageError> {
    let bytes = storage.download(&entry.path).await?;
    let hashed = bytes.clone();
    let sha256 = tokio::task::spawn_blocking(move || sha256_hex(&hashed))
        .await
        .map_err(|e| StorageError::Other(e.to_string()))?;
    Ok(Chosen {
        entry,
        bytes,
        sha256,
        claimed: false,
    })
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
