//! The tenant's images as routes see them: the file-name rules, the lookup in
//! the cached listing (nothing outside it is ever reached), the image response,
//! and how storage failures are answered.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use publisher::sidecar::Sidecar;
use publisher::storage::{FileEntry, Listing, StorageError};
use publisher::tenant::TenantContext;
use serde_json::{json, Value};

use crate::responses::detail;

/// Everything but `A-Z a-z 0-9 - . _ ~` is encoded in URLs we build.
const URL_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const MAX_NAME_BYTES: usize = 255;

/// A plain image file name: one segment, no `/`, `\`, `..` or control
/// characters, at most 255 bytes, ending `.jpg`, `.jpeg` or `.png` (any case).
pub fn is_plain_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.contains(['/', '\\'])
        && !name.contains("..")
        && !name.chars().any(char::is_control)
        && [".jpg", ".jpeg", ".png"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// The listed images every route may reach, in listing order (names' bytes).
pub fn reachable(listing: &Listing) -> impl Iterator<Item = &FileEntry> {
    listing
        .images()
        .iter()
        .filter(|entry| is_plain_image_name(&entry.name))
}

pub fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Image not found")
}

/// The tenant's cached listing, or the answer for a storage failure.
pub async fn listing(tenant: &TenantContext, request_id: &str) -> Result<Arc<Listing>, Response> {
    tenant
        .services
        .listing()
        .await
        .map_err(|error| storage_failure(error, tenant, request_id))
}

/// The listed image called exactly `name`; 404 `Image not found` for a name
/// the rules refuse or the listing does not show.
pub async fn find_image(
    tenant: &TenantContext,
    name: &str,
    request_id: &str,
) -> Result<(Arc<Listing>, FileEntry), Response> {
    if !is_plain_image_name(name) {
        return Err(not_found());
    }
    let listing = listing(tenant, request_id).await?;
    let entry = listing.image(name).cloned().ok_or_else(not_found)?;
    Ok((listing, entry))
}

/// How a storage failure is answered: a file gone since the listing is 404;
/// the provider failing is 503; anything else it reported is 502. The cause
/// goes to the log only.
pub fn storage_failure(error: StorageError, tenant: &TenantContext, request_id: &str) -> Response {
    match error {
        StorageError::NotFound => {
            // The listing showed a file that is gone: list again next time.
            tenant.services.forget_images();
            not_found()
        }
        StorageError::Unauthorized | StorageError::Unavailable(_) => {
            tracing::warn!(request_id, tenant = %tenant.config.tenant, %error, "storage unavailable");
            detail(StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable")
        }
        StorageError::Other(_) => {
            tracing::warn!(request_id, tenant = %tenant.config.tenant, %error, "storage error");
            detail(StatusCode::BAD_GATEWAY, "Storage error")
        }
    }
}

pub fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, URL_SEGMENT).to_string()
}

pub fn thumbnail_url(name: &str) -> String {
    format!("/api/images/{}/thumbnail", encode_segment(name))
}

/// Where the browser loads the full image when the storage's own link is not
/// one it can fetch (local storage answers `file://` links).
pub fn content_url(name: &str) -> String {
    format!("/api/images/{}/content", encode_segment(name))
}

/// The image response: the storage's temporary link and the
/// sidecar, fetched together.
pub async fn image_response(
    tenant: &TenantContext,
    listing: &Listing,
    entry: &FileEntry,
    request_id: &str,
) -> Result<Value, Response> {
    let storage = tenant.services.storage();
    let sidecar = async {
        match listing.sidecar_of(&entry.name) {
            None => Ok(None),
            Some(file) => match storage.download(&file.path).await {
                Ok(bytes) => Ok(Some(Sidecar::parse(&String::from_utf8_lossy(&bytes)))),
                // Moved away since the listing: as if it had never been there.
                Err(StorageError::NotFound) => Ok(None),
                Err(error) => Err(error),
            },
        }
    };
    let (link, sidecar) = tokio::join!(storage.temporary_link(&entry.path), sidecar);
    let fail = |error| storage_failure(error, tenant, request_id);
    let link = link.map_err(fail)?;
    let sidecar = sidecar.map_err(fail)?;
    let temp_url = if link.starts_with("https://") || link.starts_with("http://") {
        link
    } else {
        content_url(&entry.name)
    };
    Ok(json!({
        "filename": entry.name,
        "temp_url": temp_url,
        "thumbnail_url": thumbnail_url(&entry.name),
        "sha256": null,
        "caption": sidecar.as_ref().and_then(Sidecar::caption),
        "sd_caption": sidecar.as_ref().map(|s| s.sd_caption.clone()).filter(|s| !s.is_empty()),
        "metadata": sidecar.as_ref().map(|s| Value::Object(s.metadata.clone())),
        "has_sidecar": sidecar.is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_image_names() {
        for ok in [
            "a.jpg",
            "B.JPEG",
            "c.Png",
            "with space.jpg",
            "é.jpeg",
            &format!("{}.jpg", "x".repeat(251)),
        ] {
            assert!(is_plain_image_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".jpg.txt",
            "a.gif",
            "a/b.jpg",
            "a\\b.jpg",
            "..jpg",
            "a..b.jpg",
            "a\nb.jpg",
            "a\u{7f}.jpg",
            &format!("{}.jpg", "x".repeat(252)),
        ] {
            assert!(!is_plain_image_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_encode_all_but_unreserved() {
        assert_eq!(
            thumbnail_url("<img src=x>.jpg"),
            "/api/images/%3Cimg%20src%3Dx%3E.jpg/thumbnail"
        );
        assert_eq!(encode_segment("a-b_c.d~e é"), "a-b_c.d~e%20%C3%A9");
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each); the
    /// routes themselves are property-tested in `tests/tests/parsers.rs`.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// A name the rule accepts is one segment that cannot climb,
            /// hide a control character or pass for another type.
            #[test]
            fn an_accepted_name_is_a_plain_image_name(name in "\\PC{0,40}|[a-z./\\\\%]{0,10}\\.(jpg|JPEG|png|gif)") {
                if is_plain_image_name(&name) {
                    prop_assert!(!name.contains(['/', '\\']) && !name.contains(".."));
                    prop_assert!(!name.chars().any(char::is_control) && name.len() <= MAX_NAME_BYTES);
                    let lower = name.to_lowercase();
                    prop_assert!([".jpg", ".jpeg", ".png"].iter().any(|ext| lower.ends_with(ext)));
                    prop_assert!(encode_segment(&name).bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
                }
            }
        }
    }
}
