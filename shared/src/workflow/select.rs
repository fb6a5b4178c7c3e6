//! Step 3 of a run: the image to publish, downloaded and hashed. With
//! `select`, that file; otherwise the listed images in random order, those
//! whose content hash or SHA-256 is in the posted set skipped, and those
//! whose header declares more pixels than may be decoded refused.

use bytes::Bytes;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::Reason;
use crate::image_bounds::{self, TooLarge};
use crate::ledger::Ledger;
use crate::storage::{FileEntry, Listing, Storage, StorageError};

/// The chosen image, held in memory only.
pub(super) struct Chosen {
    pub(super) entry: FileEntry,
    pub(super) bytes: Bytes,
    pub(super) sha256: String,
}

/// The selected file, or the first unposted one in random order.
pub(super) async fn choose(
    ledger: &Ledger,
    tenant: &str,
    listing: &Listing,
    select: Option<&str>,
    storage: &dyn Storage,
) -> Result<Chosen, Reason> {
    let failed = |what| move |error| Reason::Storage { what, error };
    if let Some(name) = select {
        let entry = listing.image(name).cloned().ok_or(Reason::ImageNotFound)?;
        let chosen = download(storage, entry)
            .await
            .map_err(failed("Downloading the image failed"))?;
        return match image_bounds::check(&chosen.bytes) {
            Ok(()) => Ok(chosen),
            Err(too_large) => {
                refused(tenant, &chosen.entry.name, too_large);
                Err(Reason::ImageTooLarge(chosen.entry.name))
            }
        };
    }
    let mut candidates = listing.images().to_vec();
    candidates.shuffle(&mut rand::rng());
    let hashes: Vec<String> = candidates
        .iter()
        .filter_map(|e| e.content_hash.clone())
        .collect();
    let unreadable = |e: crate::table::DynamoError| Reason::PostedSetUnavailable(e.to_string());
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
    let mut too_large_count = 0;
    for entry in candidates {
        let chosen = match download(storage, entry).await {
            Ok(chosen) => chosen,
            // Moved away since the listing: the next one.
            Err(StorageError::NotFound) => continue,
            Err(error) => return Err(failed("Downloading an image failed")(error)),
        };
        if ledger
            .is_posted(tenant, &chosen.sha256)
            .await
            .map_err(unreadable)?
        {
            continue;
        }
        match image_bounds::check(&chosen.bytes) {
            Ok(()) => return Ok(chosen),
            // Refused, and the next candidate taken.
            Err(too_large) => {
                refused(tenant, &chosen.entry.name, too_large);
                too_large_count += 1;
            }
        }
    }
    Err(match too_large_count {
        0 => Reason::AllPosted,
        count => Reason::OnlyTooLarge(count),
    })
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
    })
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
