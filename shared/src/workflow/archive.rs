//! Step 7 of a run: an image a publisher took is moved to the archive folder
//! with its sidecar and recorded in the posted set, so it is not published
//! again.

use crate::ledger::{Ledger, PostedImage};
use crate::storage::{Storage, StorageError};

/// Moves the image, then its sidecar, into the archive folder. The image's
/// move decides; a sidecar left behind is only logged.
pub(super) async fn archive(
    storage: &dyn Storage,
    folder: &str,
    image: &str,
    sidecar: Option<&str>,
    request_id: &str,
) -> Result<(), StorageError> {
    storage.create_folder(folder).await?;
    storage.move_to_folder(image, folder).await?;
    if let Some(sidecar) = sidecar {
        if let Err(error) = storage.move_to_folder(sidecar, folder).await {
            tracing::warn!(request_id, %error, "the sidecar was not archived with its image");
        }
    }
    Ok(())
}

/// Records the image in the tenant's posted set; a failure is logged (the
/// image was published: the run's outcome stands).
pub(super) async fn record(ledger: &Ledger, tenant: &str, image: PostedImage, request_id: &str) {
    if let Err(error) = ledger.record_posted(tenant, &image).await {
        tracing::error!(request_id, tenant, %error, "the posted set was not updated");
    }
}
