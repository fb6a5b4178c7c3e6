//! The image folder's listing, cached per tenant service set (`WEB_IMAGE_CACHE_TTL_SECONDS`):
//! one `list_folder` (to the end of its pages) answers which images exist, in
//! which order, and which of them have a sidecar, for every request until the
//! TTL passes or a move drops it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{is_image_name, FileEntry, Storage, StorageError};
use crate::cache::SingleFlight;
use crate::clock::Clock;
use crate::sidecar::sidecar_path;

/// The files directly in a folder, sorted by the names' bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    files: Arc<Vec<FileEntry>>,
    images: Arc<Vec<FileEntry>>,
}

impl Listing {
    pub fn new(mut files: Vec<FileEntry>) -> Self {
        files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let images = files
            .iter()
            .filter(|f| is_image_name(&f.name))
            .cloned()
            .collect();
        Self {
            files: Arc::new(files),
            images: Arc::new(images),
        }
    }

    /// Every file of the folder (images, sidecars, anything else).
    pub fn files(&self) -> &Arc<Vec<FileEntry>> {
        &self.files
    }

    /// The `.jpg`/`.jpeg`/`.png` files (any case).
    pub fn images(&self) -> &Arc<Vec<FileEntry>> {
        &self.images
    }

    /// The image called exactly `name`, if the listing has it.
    pub fn image(&self, name: &str) -> Option<&FileEntry> {
        find(&self.images, name)
    }

    /// The file called exactly `name`, if the listing has it.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        find(&self.files, name)
    }

    /// The sidecar `<stem>.txt` of the image `image_name`, if it exists.
    pub fn sidecar_of(&self, image_name: &str) -> Option<&FileEntry> {
        self.file(&sidecar_path(image_name))
    }
}

fn find<'a>(sorted: &'a [FileEntry], name: &str) -> Option<&'a FileEntry> {
    sorted
        .binary_search_by(|f| f.name.as_bytes().cmp(name.as_bytes()))
        .ok()
        .map(|i| &sorted[i])
}

/// One folder's [`Listing`], kept for a TTL. Concurrent misses share one
/// listing call (and its failure, which is not kept).
pub struct ListingCache {
    ttl: Duration,
    /// Bumped by [`ListingCache::forget`]: a listing that started before it is
    /// neither kept nor shared with later callers, since it may show a file
    /// that has moved since.
    generation: AtomicU64,
    current: Mutex<Option<Cached>>,
    flights: SingleFlight<u64, Result<Arc<Listing>, StorageError>>,
    clock: Clock,
}

struct Cached {
    at: SystemTime,
    generation: u64,
    listing: Arc<Listing>,
}

impl ListingCache {
    pub fn new(ttl: Duration, clock: Clock) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            current: Mutex::new(None),
            flights: SingleFlight::default(),
            clock,
        }
    }

    /// The cached listing of `folder`, listed through `storage` when missing
    /// or older than the TTL.
    pub async fn get(
        &self,
        storage: Arc<dyn Storage>,
        folder: &str,
    ) -> Result<Arc<Listing>, StorageError> {
        if let Some(hit) = self.fresh() {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let folder = folder.to_string();
        let work = async move {
            let files = storage.list_files(&folder).await?;
            Ok(Arc::new(Listing::new(files)))
        };
        let (result, _) = self.flights.run(generation, work).await;
        let listing = result
            .unwrap_or_else(|| Err(StorageError::Unavailable("listing task failed".into())))?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *current = Some(Cached {
                at: self.clock.now(),
                generation,
                listing: listing.clone(),
            });
        }
        Ok(listing)
    }

    /// Drops the cached listing (after a file moved in or out of the folder).
    pub fn forget(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        *current = None;
    }

    fn fresh(&self) -> Option<Arc<Listing>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|c| {
                self.clock.since(c.at) < self.ttl
                    && c.generation == self.generation.load(Ordering::SeqCst)
            })
            .map(|c| c.listing.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> FileEntry {
        FileEntry {
            name: name.into(),
            path: format!("/P/{name}"),
            id: None,
            rev: None,
            content_hash: None,
            size: 1,
        }
    }

    #[test]
    fn sorts_by_bytes_and_finds_images_and_sidecars() {
        let listing = Listing::new(
            [
                "b.JPG", "a.txt", "a.jpg", "Z.png", "notes.md", "é.jpeg", "c.jpeg",
            ]
            .map(file)
            .into(),
        );
        let names = |v: &[FileEntry]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(listing.images()),
            ["Z.png", "a.jpg", "b.JPG", "c.jpeg", "é.jpeg"]
        );
        assert_eq!(listing.files().len(), 7);
        assert_eq!(
            listing.image("a.jpg").map(|f| f.path.as_str()),
            Some("/P/a.jpg")
        );
        assert!(listing.image("a.txt").is_none());
        assert!(listing.image("A.jpg").is_none());
        assert_eq!(
            listing.sidecar_of("a.jpg").map(|f| f.name.as_str()),
            Some("a.txt")
        );
        assert!(listing.sidecar_of("b.JPG").is_none());
    }
}
