//! Step 7 of a run: an image a publisher took is moved to the archive folder
//! with its sidecar (the run then records it in the posted set, so it is not
//! published again).

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
