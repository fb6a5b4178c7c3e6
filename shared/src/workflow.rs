//! The publish workflow for one tenant (publish.md §The workflow): choose an
//! unposted image, caption it, write its sidecar, publish it everywhere,
//! archive and record it; with preview, dry run and debug variants, and the
//! idempotency claim that makes a scheduled event publish at most once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::ai::{AiClient, Analysis, Captions};
use crate::app::{App, TenantContext};
use crate::config::TenantConfig;
use crate::publishers::captions::{CaptionSpec, Platform};
use crate::publishers::fetlife::{self, Fetlife, Upload};
use crate::publishers::telegram::{prepare_photo, Telegram};
use crate::publishers::{PublishResult, EMAIL, TELEGRAM};
use crate::secrets::Role;
use crate::sidecar::{sidecar_path, Sidecar};
use crate::state::{Claim, PostedImage, Store};
use crate::storage::{FileEntry, Listing, Storage, StorageError};

/// How long a claim counts as in progress when the caller knows no deadline:
/// the publish function's timeout.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(900);
pub const SD_CAPTION_VERSION: &str = "v1.0";
/// The error of a run whose selected file is not in the listing.
pub const IMAGE_NOT_FOUND: &str = "Image not found";
/// The error of a run for which no publisher could be set up.
pub const NO_PUBLISHER: &str = "No publisher is available";

/// What one run is asked to do, beyond the tenant's configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Publish this file (it must be in the listing) instead of choosing one.
    pub select: Option<String>,
    /// Do everything but send, write or move anything.
    pub dry_run: bool,
    /// Answer what would be published; change nothing anywhere.
    pub preview: bool,
    /// The event's identity: a key claims the event for this run.
    pub idempotency_key: Option<String>,
    /// Generate a new caption even when the sidecar has one.
    pub refresh_caption: bool,
    /// The invocation's deadline; a claim is in progress until then.
    pub deadline: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Published,
    Preview,
    NothingToPublish,
    SkippedDuplicateEvent,
    Disabled,
    NotFound,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Preview => "preview",
            Status::NothingToPublish => "nothing_to_publish",
            Status::SkippedDuplicateEvent => "skipped_duplicate_event",
            Status::Disabled => "disabled",
            Status::NotFound => "not_found",
            Status::Failed => "failed",
        }
    }
}

/// What a preview shows beside the image: the caption each publisher would
/// send, the e-mail subject and the sidecar text that would be written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub captions: BTreeMap<String, String>,
    pub email_subject: Option<String>,
    pub sidecar: Option<String>,
}

/// One host's answer: `{host, tenant, status, image, results, archived, error}`
/// (and `preview` for a preview).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub host: String,
    pub tenant: Option<String>,
    pub status: Status,
    pub image: Option<String>,
    pub results: BTreeMap<String, PublishResult>,
    pub archived: bool,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    /// The failure may pass on a retry (an unreachable service).
    #[serde(skip)]
    pub transient: bool,
}

impl Summary {
    fn new(host: &str, tenant: Option<&str>, status: Status) -> Self {
        Self {
            host: host.to_string(),
            tenant: tenant.map(str::to_string),
            status,
            image: None,
            results: BTreeMap::new(),
            archived: false,
            error: None,
            preview: None,
            transient: false,
        }
    }

    fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    pub fn any_success(&self) -> bool {
        self.results.values().any(|r| r.success)
    }
}

/// Why a run stopped before it could publish.
struct Stop {
    status: Status,
    error: String,
    transient: bool,
}

impl Stop {
    fn nothing(reason: &str) -> Self {
        Self {
            status: Status::NothingToPublish,
            error: reason.to_string(),
            transient: false,
        }
    }

    fn failed(error: impl Into<String>, transient: bool) -> Self {
        Self {
            status: Status::Failed,
            error: error.into(),
            transient,
        }
    }

    fn storage(what: &str, error: &StorageError) -> Self {
        Self::failed(
            format!("{what}: {error}"),
            matches!(error, StorageError::Unavailable(_)),
        )
    }
}

/// Milliseconds per step, logged as one `workflow_timing` record.
#[derive(Debug, Default)]
struct Timing {
    list: u128,
    selection: u128,
    vision: u128,
    caption: u128,
    sidecar: u128,
    publish: u128,
    archive: u128,
}

/// The chosen image, held in memory only.
struct Chosen {
    entry: FileEntry,
    bytes: Bytes,
    sha256: String,
}

/// The analysis and captions generated for an image.
pub struct Generated {
    pub analysis: Analysis,
    pub captions: Captions,
}

/// The publish workflow over the process's state.
pub struct Workflow {
    app: Arc<App>,
    store: Store,
}

impl Workflow {
    pub fn new(app: Arc<App>, store: Store) -> Self {
        Self { app, store }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// One host's run, from its raw host name.
    pub async fn run(&self, raw_host: &str, options: &Options, request_id: &str) -> Summary {
        match self.app.tenant(raw_host, request_id).await {
            Ok(tenant) => self.run_for(&tenant, options, request_id).await,
            Err(error) if error.is_not_found() => {
                tracing::info!(request_id, host = raw_host, %error, "publish: tenant not found");
                Summary::new(raw_host, None, Status::NotFound).with_error("Not found")
            }
            Err(error) => {
                tracing::warn!(request_id, host = raw_host, %error, "publish: tenant unavailable");
                Summary {
                    transient: true,
                    ..Summary::new(raw_host, None, Status::Failed)
                        .with_error("Tenant configuration unavailable")
                }
            }
        }
    }

    /// One tenant's run: the claim around the workflow.
    pub async fn run_for(
        &self,
        tenant: &TenantContext,
        options: &Options,
        request_id: &str,
    ) -> Summary {
        let name = tenant.config.tenant.as_str();
        let config = &tenant.config.config;
        if !config.features.publish_enabled {
            return Summary::new(&tenant.host, Some(name), Status::Disabled)
                .with_error("Publishing is disabled");
        }
        // Only a run that can publish takes the event.
        let may_publish = !(options.preview || options.dry_run || config.content.debug);
        let key = options.idempotency_key.as_deref().filter(|_| may_publish);
        if let Some(key) = key {
            let until = options
                .deadline
                .unwrap_or_else(|| SystemTime::now() + DEFAULT_RUN_TIMEOUT);
            match self.store.claim(name, key, until).await {
                Ok(Claim::Acquired) => {}
                Ok(Claim::Duplicate { completed, result }) => {
                    tracing::info!(
                        request_id,
                        tenant = name,
                        completed,
                        "publish: duplicate event skipped"
                    );
                    return duplicate(tenant, completed, result);
                }
                Err(error) => {
                    tracing::error!(request_id, tenant = name, %error, "publish: cannot claim the event");
                    return Summary {
                        transient: true,
                        ..Summary::new(&tenant.host, Some(name), Status::Failed)
                            .with_error("Publish state unavailable")
                    };
                }
            }
        }
        let summary = self.publish(tenant, options, request_id).await;
        if let Some(key) = key {
            let settled = summary.any_success() || summary.status == Status::NothingToPublish;
            let written = if settled {
                self.store.complete(name, key, &json!(summary)).await
            } else {
                self.store.release(name, key).await
            };
            if let Err(error) = written {
                tracing::error!(request_id, tenant = name, settled, %error, "publish: cannot settle the claim");
            }
        }
        summary
    }

    /// Steps 2 to 8 of the workflow.
    async fn publish(
        &self,
        tenant: &TenantContext,
        options: &Options,
        request_id: &str,
    ) -> Summary {
        let name = tenant.config.tenant.as_str();
        let mut timing = Timing::default();
        let mut summary = Summary::new(&tenant.host, Some(name), Status::Failed);
        let outcome = self
            .steps(tenant, options, request_id, &mut timing, &mut summary)
            .await;
        if let Err(stop) = outcome {
            summary.status = stop.status;
            summary.error = Some(stop.error);
            summary.transient = stop.transient;
        }
        tracing::info!(
            request_id,
            tenant = name,
            image = summary.image.as_deref().unwrap_or(""),
            status = summary.status.as_str(),
            list_ms = timing.list as u64,
            selection_ms = timing.selection as u64,
            vision_ms = timing.vision as u64,
            caption_ms = timing.caption as u64,
            sidecar_ms = timing.sidecar as u64,
            publish_ms = timing.publish as u64,
            archive_ms = timing.archive as u64,
            "workflow_timing"
        );
        summary
    }

    async fn steps(
        &self,
        tenant: &TenantContext,
        options: &Options,
        request_id: &str,
        timing: &mut Timing,
        summary: &mut Summary,
    ) -> Result<(), Stop> {
        let config = &tenant.config.config;
        let storage = tenant.services.storage().clone();
        let synthetic = options.preview || options.dry_run || config.content.debug;

        let started = Instant::now();
        let listing = match storage.list_files(&config.storage.paths.root).await {
            Ok(files) => Listing::new(files),
            // A folder that does not exist holds no images.
            Err(StorageError::NotFound) => Listing::new(Vec::new()),
            Err(error) => return Err(Stop::storage("Listing the image folder failed", &error)),
        };
        timing.list = started.elapsed().as_millis();
        if listing.images().is_empty() {
            return Err(Stop::nothing("No images found"));
        }

        let started = Instant::now();
        let chosen = self
            .choose(tenant, &listing, options, storage.as_ref())
            .await?;
        timing.selection = started.elapsed().as_millis();
        summary.image = Some(chosen.entry.name.clone());
        let Chosen {
            entry,
            bytes,
            sha256,
        } = chosen;

        // Caption: the sidecar's, else a new one when analysis is on.
        let spec = CaptionSpec::for_config(config);
        let sidecar_entry = listing.sidecar_of(&entry.name).cloned();
        let existing = match &sidecar_entry {
            Some(entry) => read_sidecar(storage.as_ref(), &entry.path, request_id).await,
            None => None,
        };
        let reused = existing
            .as_ref()
            .and_then(Sidecar::caption)
            .filter(|_| !options.refresh_caption);
        let generated = match reused {
            Some(_) => None,
            None => {
                generate(
                    &self.app,
                    tenant,
                    storage.as_ref(),
                    &entry,
                    &spec,
                    request_id,
                    timing,
                )
                .await
            }
        };
        let caption = match (&reused, &generated) {
            (Some(caption), _) => spec.with_hashtags(caption),
            (None, Some(generated)) => spec.with_hashtags(&generated.captions.caption),
            (None, None) => String::new(),
        };

        // Sidecar: only when there is something new to keep.
        let sidecar = generated
            .as_ref()
            .map(|g| sidecar_for(&entry, Some(&sha256), g, &caption, config));
        let sidecar_text = sidecar
            .as_ref()
            .map(|s| s.render(config.captionfile.extended_metadata_enabled));
        let started = Instant::now();
        let mut sidecar_path_now = sidecar_entry.map(|e| e.path);
        if let (Some(text), false) = (&sidecar_text, synthetic) {
            let path = sidecar_path(&entry.path);
            match storage.upload(&path, Bytes::from(text.clone())).await {
                Ok(()) => {
                    sidecar_path_now = Some(path);
                    tenant.services.forget_images();
                }
                Err(error) => {
                    tracing::warn!(request_id, tenant = %tenant.config.tenant, %error, "sidecar not written; publishing goes on")
                }
            }
        }
        timing.sidecar = started.elapsed().as_millis();

        let tags = generated
            .as_ref()
            .map(|g| g.analysis.tags.clone())
            .unwrap_or_default();
        if options.preview {
            summary.preview = Some(preview(config, &caption, sidecar_text));
        }

        let started = Instant::now();
        summary.results = if synthetic {
            synthetic_results(config)
        } else {
            self.send(tenant, &entry, bytes, &caption, &tags, request_id)
                .await
        };
        timing.publish = started.elapsed().as_millis();
        if summary.results.is_empty() {
            return Err(Stop::failed(NO_PUBLISHER, false));
        }
        if !summary.any_success() {
            let transient = summary.results.values().all(|r| r.transient);
            return Err(Stop::failed("Every publisher failed", transient));
        }
        summary.status = if options.preview {
            Status::Preview
        } else {
            Status::Published
        };
        if synthetic {
            return Ok(());
        }

        let started = Instant::now();
        if config.content.archive {
            match archive(
                storage.as_ref(),
                &config.storage.paths.archive,
                &entry.path,
                sidecar_path_now.as_deref(),
                request_id,
            )
            .await
            {
                Ok(()) => summary.archived = true,
                Err(error) => {
                    tracing::error!(request_id, tenant = %tenant.config.tenant, %error, "archiving failed");
                    summary.error = Some(format!("Archiving failed: {error}"));
                }
            }
            tenant.services.forget_images();
        }
        let posted = PostedImage {
            sha256,
            content_hash: entry.content_hash.clone(),
            image_name: entry.name.clone(),
            posted_at: SystemTime::now(),
            platforms: summary
                .results
                .iter()
                .filter(|(_, r)| r.success)
                .map(|(k, _)| k.clone())
                .collect(),
        };
        if let Err(error) = self
            .store
            .record_posted(&tenant.config.tenant, &posted)
            .await
        {
            tracing::error!(request_id, tenant = %tenant.config.tenant, %error, "the posted set was not updated");
        }
        timing.archive = started.elapsed().as_millis();
        Ok(())
    }

    /// Step 3: the selected file, or the first unposted one in random order.
    async fn choose(
        &self,
        tenant: &TenantContext,
        listing: &Listing,
        options: &Options,
        storage: &dyn Storage,
    ) -> Result<Chosen, Stop> {
        if let Some(name) = &options.select {
            let entry = listing
                .image(name)
                .cloned()
                .ok_or_else(|| Stop::failed(IMAGE_NOT_FOUND, false))?;
            return download(storage, entry)
                .await
                .map_err(|e| Stop::storage("Downloading the image failed", &e));
        }
        let name = &tenant.config.tenant;
        let mut candidates = listing.images().to_vec();
        candidates.shuffle(&mut rand::rng());
        let hashes: Vec<String> = candidates
            .iter()
            .filter_map(|e| e.content_hash.clone())
            .collect();
        let posted = self
            .store
            .posted_content_hashes(name, &hashes)
            .await
            .map_err(|e| Stop::failed(format!("Reading the posted set failed: {e}"), true))?;
        // A posted content hash is the same bytes as a posted image: no need
        // to download it to know.
        candidates.retain(|e| {
            e.content_hash
                .as_ref()
                .is_none_or(|ch| !posted.contains(ch))
        });
        for entry in candidates {
            let chosen = match download(storage, entry).await {
                Ok(chosen) => chosen,
                // Moved away since the listing: the next one.
                Err(StorageError::NotFound) => continue,
                Err(error) => return Err(Stop::storage("Downloading an image failed", &error)),
            };
            let seen = self
                .store
                .is_posted(name, &chosen.sha256)
                .await
                .map_err(|e| Stop::failed(format!("Reading the posted set failed: {e}"), true))?;
            if !seen {
                return Ok(chosen);
            }
        }
        Err(Stop::nothing("No new images to post (all duplicates)"))
    }

    /// Step 6: every enabled publisher at once, each with its own copy of the
    /// image and its own caption.
    async fn send(
        &self,
        tenant: &TenantContext,
        entry: &FileEntry,
        original: Bytes,
        caption: &str,
        tags: &[String],
        request_id: &str,
    ) -> BTreeMap<String, PublishResult> {
        let mut results = BTreeMap::new();
        let (telegram, fetlife) = tokio::join!(
            self.telegram(tenant, request_id),
            self.fetlife(tenant, request_id)
        );
        // Telegram's photo first, so that the e-mail, which encodes the image
        // and then drops it, never overlaps the decoder: about one image and
        // its encoded mail alive at a time.
        let photo = match &telegram {
            Some(_) => {
                let for_telegram = original.clone();
                Some(tokio::task::spawn_blocking(move || prepare_photo(&for_telegram)).await)
            }
            None => None,
        };
        let telegram = async {
            Some(match (telegram?, photo?) {
                (telegram, Ok(Ok(photo))) => {
                    telegram
                        .send_photo(photo, &Platform::Telegram.format(caption), request_id)
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
            let caption = Platform::FetlifeEmail.format(caption);
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

    async fn telegram(&self, tenant: &TenantContext, request_id: &str) -> Option<Telegram> {
        let config = tenant.config.config.publishers.telegram.as_ref()?;
        let credential = tenant
            .services
            .credential(Role::Telegram, request_id)
            .await?;
        Some(Telegram::new(
            self.app.http.clone(),
            &self.app.settings.services.telegram,
            credential.secret().clone(),
            &config.channel_id,
        ))
    }

    async fn fetlife(&self, tenant: &TenantContext, request_id: &str) -> Option<Fetlife> {
        let config = &tenant.config.config;
        let (fetlife, server) = (
            config.publishers.fetlife.as_ref()?,
            config.email_server.as_ref()?,
        );
        let credential = tenant.services.credential(Role::Smtp, request_id).await?;
        Some(Fetlife {
            server: server.clone(),
            config: fetlife.clone(),
            confirmation: config.confirmation.clone(),
            password: credential.secret().clone(),
            extra_ca: self.app.settings.services.smtp_tls_ca_file.clone(),
        })
    }
}

/// A duplicate delivery's answer: the first run's outcome, when it has one.
fn duplicate(tenant: &TenantContext, completed: bool, result: Option<Value>) -> Summary {
    let mut summary = Summary::new(
        &tenant.host,
        Some(&tenant.config.tenant),
        Status::SkippedDuplicateEvent,
    );
    match result.and_then(|r| serde_json::from_value::<Summary>(r).ok()) {
        Some(first) => {
            summary.image = first.image;
            summary.results = first.results;
            summary.archived = first.archived;
        }
        None if !completed => {
            summary.error = Some("The event is being published by another run".into())
        }
        None => {}
    }
    summary
}

fn preview(config: &TenantConfig, caption: &str, sidecar: Option<String>) -> Preview {
    let mut captions = BTreeMap::new();
    if config.publishers.telegram.is_some() {
        captions.insert(TELEGRAM.to_string(), Platform::Telegram.format(caption));
    }
    let email_subject = config.publishers.fetlife.as_ref().map(|f| {
        let caption = Platform::FetlifeEmail.format(caption);
        let email = fetlife::email(f, &caption);
        captions.insert(EMAIL.to_string(), caption);
        email.subject
    });
    Preview {
        captions,
        email_subject,
        sidecar,
    }
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

/// The sidecar at `path`, if it can be read; a failure is logged and ignored.
pub async fn read_sidecar(storage: &dyn Storage, path: &str, request_id: &str) -> Option<Sidecar> {
    match storage.download(path).await {
        Ok(bytes) => Some(Sidecar::parse(&String::from_utf8_lossy(&bytes))),
        Err(error) => {
            tracing::warn!(request_id, %error, "sidecar unreadable; treated as absent");
            None
        }
    }
}

/// Vision analysis of a temporary link, then the captions. `None` when
/// analysis is off or a step fails (logged): the image goes out uncaptioned
/// rather than not at all.
async fn generate(
    app: &App,
    tenant: &TenantContext,
    storage: &dyn Storage,
    entry: &FileEntry,
    spec: &CaptionSpec,
    request_id: &str,
    timing: &mut Timing,
) -> Option<Generated> {
    let ai = AiClient::for_tenant(app, tenant, request_id).await?;
    let started = Instant::now();
    let analysis = analyze(&ai, storage, entry, request_id).await;
    timing.vision = started.elapsed().as_millis();
    let started = Instant::now();
    let captions = match &analysis {
        Ok(analysis) => ai
            .caption(analysis, spec, request_id)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.clone()),
    };
    timing.caption = started.elapsed().as_millis();
    match (analysis, captions) {
        (Ok(analysis), Ok(captions)) => Some(Generated { analysis, captions }),
        (_, Err(error)) | (Err(error), _) => {
            tracing::warn!(request_id, tenant = %tenant.config.tenant, %error, "no caption: publishing without one");
            None
        }
    }
}

/// Vision analysis of `entry` through a temporary link.
pub async fn analyze(
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

/// Moves the image, then its sidecar, into the archive folder. The image's
/// move decides; a sidecar left behind is only logged.
async fn archive(
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

/// Preview, dry run and debug send nothing: each enabled publisher reports a
/// synthetic success.
fn synthetic_results(config: &TenantConfig) -> BTreeMap<String, PublishResult> {
    let mut results = BTreeMap::new();
    if config.publishers.telegram.is_some() {
        results.insert(TELEGRAM.to_string(), PublishResult::published(None));
    }
    if config.publishers.fetlife.is_some() {
        results.insert(EMAIL.to_string(), PublishResult::published(None));
    }
    results
}
