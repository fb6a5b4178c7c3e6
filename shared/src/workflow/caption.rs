//! Steps 4 and 5 of a run, also behind the web's analyze route: the image's
//! caption (the sidecar's, or a new one from vision analysis and the caption
//! model) and the sidecar that keeps what was generated.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::ai::{AiClient, Analysis, Captions};
use crate::config::TenantConfig;
use crate::publishers::captions::CaptionSpec;
use crate::sidecar::{sidecar_path, Sidecar};
use crate::storage::{FileEntry, Listing, Storage};
use crate::tenant::TenantServices;

pub const SD_CAPTION_VERSION: &str = "v1.0";

/// The analysis and captions generated for an image.
pub struct Generated {
    pub analysis: Analysis,
    pub captions: Captions,
}

/// Where an image's caption comes from.
pub enum Caption {
    /// The sidecar has one, and no new one was asked for.
    Sidecar(Sidecar),
    /// Generated now.
    Generated(Box<Generated>),
    /// None to be had: analysis off, the AI unavailable or a step failing
    /// (logged). The image goes out uncaptioned rather than not at all.
    Missing,
}

/// The caption step's answer and what its AI calls took.
pub struct Found {
    pub caption: Caption,
    pub vision: Duration,
    pub captioning: Duration,
}

impl Found {
    fn at_once(caption: Caption) -> Self {
        Found {
            caption,
            vision: Duration::ZERO,
            captioning: Duration::ZERO,
        }
    }
}

/// The caption of `entry`: the sidecar's unless `refresh`, else a new one.
pub async fn find(
    services: &TenantServices,
    listing: &Listing,
    entry: &FileEntry,
    refresh: bool,
    request_id: &str,
) -> Found {
    let storage = services.storage().as_ref();
    let existing = match listing.sidecar_of(&entry.name) {
        Some(file) => read_sidecar(storage, &file.path, request_id).await,
        None => None,
    };
    if let Some(sidecar) = existing.filter(|s| !refresh && s.caption().is_some()) {
        return Found::at_once(Caption::Sidecar(sidecar));
    }
    let Some(ai) = services.ai(request_id).await else {
        return Found::at_once(Caption::Missing);
    };
    let spec = CaptionSpec::for_config(&services.config.config, services.limits());
    let started = Instant::now();
    let analysis = analyze(&ai, storage, entry, request_id).await;
    let vision = started.elapsed();
    let started = Instant::now();
    let captions = match &analysis {
        Ok(analysis) => ai
            .caption(analysis, &spec, request_id)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.clone()),
    };
    let captioning = started.elapsed();
    let caption = match (analysis, captions) {
        (Ok(analysis), Ok(captions)) => {
            Caption::Generated(Box::new(Generated { analysis, captions }))
        }
        (_, Err(error)) | (Err(error), _) => {
            tracing::warn!(request_id, tenant = %services.tenant(), %error, "no caption: publishing without one");
            Caption::Missing
        }
    };
    Found {
        caption,
        vision,
        captioning,
    }
}

/// Vision analysis of `entry` through a temporary link.
async fn analyze(
    ai: &AiClient,
    storage: &dyn Storage,
    entry: &FileEntry,
    request_id: &str,
) -> Result<Analysis, String> {
    let link = storage
        .temporary_link(&entry.path)
        .await
        .map_err(|e| format!("temporary link: {e}"))?;
    ai.analyze(&link, request_id)
        .await
        .map_err(|e| e.to_string())
}

/// The sidecar at `path`, if it can be read; a failure is logged and ignored.
async fn read_sidecar(storage: &dyn Storage, path: &str, request_id: &str) -> Option<Sidecar> {
    match storage.download(path).await {
        Ok(bytes) => Some(Sidecar::parse(&String::from_utf8_lossy(&bytes))),
        Err(error) => {
            tracing::warn!(request_id, %error, "sidecar unreadable; treated as absent");
            None
        }
    }
}

/// Writes `text` as the sidecar of `entry`; its path when written. A failure
/// is logged: the run goes on without it.
pub async fn write_sidecar(
    services: &TenantServices,
    entry: &FileEntry,
    text: String,
    request_id: &str,
) -> Option<String> {
    let path = sidecar_path(&entry.path);
    match services.storage().upload(&path, Bytes::from(text)).await {
        Ok(()) => {
            services.forget_images();
            Some(path)
        }
        Err(error) => {
            tracing::warn!(request_id, tenant = %services.tenant(), %error, "sidecar not written; going on without it");
            None
        }
    }
}

/// The sidecar for an image and what was generated for it; `caption` is the
/// human caption as published.
pub fn sidecar_for(
    entry: &FileEntry,
    sha256: Option<&str>,
    generated: &Generated,
    caption: &str,
    config: &TenantConfig,
) -> Sidecar {
    let a = &generated.analysis;
    let created = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    let mut metadata = Map::new();
    let mut put = |key: &str, value: Value| {
        metadata.insert(key.to_string(), value);
    };
    put("image_file", json!(entry.name));
    put("dropbox_file_id", json!(entry.id));
    put("dropbox_rev", json!(entry.rev));
    put("sha256", json!(sha256));
    put("created", json!(created));
    put("sd_caption_version", json!(SD_CAPTION_VERSION));
    put("model_version", json!(generated.captions.model));
    put("artist_alias", json!(config.captionfile.artist_alias));
    put("caption", json!(caption));
    if config.captionfile.extended_metadata_enabled {
        put("subject", json!(a.subject));
        put("lighting", json!(a.lighting));
        put("pose", json!(a.pose));
        put("camera", json!(a.camera));
        put("materials", json!(a.clothing_or_accessories));
        put("art_style", json!(a.style));
        put("composition", json!(a.composition));
        put("background", json!(a.background));
        put("color_palette", json!(a.color_palette));
        put("tags", json!(a.tags));
        put("aesthetic_terms", json!(a.aesthetic_terms));
        put(
            "moderation",
            json!({"nsfw": a.nsfw, "safety_labels": a.safety_labels}),
        );
    }
    Sidecar {
        sd_caption: generated.captions.sd_caption.clone().unwrap_or_default(),
        metadata,
    }
}
