//! Step 6 of a run: the image to every enabled publisher at once, each with
//! the caption fitted to it; or, for preview, dry run and debug, synthetic
//! successes and what would have been sent.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Preview;
use crate::ai::Analysis;
use crate::config::TenantConfig;
use crate::publishers::captions::Platform;
use crate::publishers::fetlife::{self, Upload};
use crate::publishers::telegram::prepare_photo;
use crate::publishers::{PublishResult, EMAIL, TELEGRAM};
use crate::static_config::PlatformLimits;
use crate::storage::FileEntry;
use crate::tenant::TenantServices;

/// Every enabled publisher at once, each with its own copy of the image and
/// its own caption. Empty when no publisher could be set up.
pub(super) async fn send(
    services: &TenantServices,
    entry: &FileEntry,
    original: Bytes,
    caption: &str,
    tags: &[String],
    request_id: &str,
) -> BTreeMap<String, PublishResult> {
    let mut results = BTreeMap::new();
    let (telegram, fetlife) =
        tokio::join!(services.telegram(request_id), services.fetlife(request_id));
    let limits = services.limits();
    // Telegram's photo first, so that the e-mail, which encodes the image
    // and then drops it, never overlaps the decoder: about one image and
    // its encoded mail alive at a time.
    let photo = match &telegram {
        Some(_) => {
            let for_telegram = original.clone();
            let width = limits.telegram.resize_width_px;
            Some(tokio::task::spawn_blocking(move || prepare_photo(&for_telegram, width)).await)
        }
        None => None,
    };
    let telegram = async {
        Some(match (telegram?, photo?) {
            (telegram, Ok(Ok(photo))) => {
                telegram
                    .send_photo(
                        photo,
                        &Platform::Telegram.format(caption, limits),
                        request_id,
                    )
                    .await
            }
            (_, Ok(Err(error))) => PublishResult::failed(error.to_string(), false),
            (_, Err(_)) => PublishResult::failed("the image could not be decoded", false),
        })
    };
    let email = async {
        let upload = Upload {
            file_name: entry.name.clone(),
            bytes: original,
        };
        let caption = Platform::FetlifeEmail.format(caption, limits);
        Some(fetlife?.send(upload, &caption, tags, request_id).await)
    };
    let (telegram, email) = tokio::join!(telegram, email);
    if let Some(result) = telegram {
        results.insert(TELEGRAM.to_string(), result);
    }
    if let Some(result) = email {
        results.insert(EMAIL.to_string(), result);
    }
    results
}

/// Preview, dry run and debug send nothing: each enabled publisher reports a
/// synthetic success.
pub(super) fn synthetic_results(config: &TenantConfig) -> BTreeMap<String, PublishResult> {
    let mut results = BTreeMap::new();
    if config.publishers.telegram.is_some() {
        results.insert(TELEGRAM.to_string(), PublishResult::published(None));
    }
    if config.publishers.fetlife.is_some() {
        results.insert(EMAIL.to_string(), PublishResult::published(None));
    }
    results
}

/// What each publisher would be sent, the sidecar that would be written,
/// and the analysis a new caption came from.
pub(super) fn preview(
    config: &TenantConfig,
    limits: &PlatformLimits,
    caption: &str,
    sidecar: Option<String>,
    analysis: Option<Analysis>,
) -> Preview {
    let mut captions = BTreeMap::new();
    if config.publishers.telegram.is_some() {
        captions.insert(
            TELEGRAM.to_string(),
            Platform::Telegram.format(caption, limits),
        );
    }
    let email_subject = config.publishers.fetlife.as_ref().map(|f| {
        let caption = Platform::FetlifeEmail.format(caption, limits);
        let email = fetlife::email(f, limits, &caption);
        captions.insert(EMAIL.to_string(), caption);
        email.subject
    });
    Preview {
        captions,
        email_subject,
        sidecar,
        analysis,
    }
}
