//! The publish workflow for one tenant (`docs/publishing.md`): choose an
//! unposted image (`select`), caption it and write its sidecar (`caption`),
//! publish it everywhere (`send`), archive and record it (`archive`); with
//! preview, dry run and debug variants, and the event claim that makes a
//! scheduled event publish at most once. The web's analyze and publish
//! routes run the same steps.

mod archive;
pub mod caption;
mod select;
mod send;
mod summary;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use select::sha256_hex;
pub use summary::{Options, Preview, Reason, Status, Summary};

use select::Claimant;

use crate::clock::Clock;
use crate::ledger::{Claim, Ledger, PostedImage};
use crate::publishers::captions::CaptionSpec;
use crate::storage::{Listing, StorageError};
use crate::tenant::TenantContext;
use caption::Caption;

/// How long a claim counts as in progress when the caller knows no deadline:
/// the publish function's timeout.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// The publish workflow over the process's ledger.
#[derive(Clone)]
pub struct Workflow {
    ledger: Ledger,
    clock: Clock,
}

/// Milliseconds per step, logged as one `workflow_timing` record.
#[derive(Debug, Default)]
struct Timing {
    list: Duration,
    selection: Duration,
    vision: Duration,
    caption: Duration,
    sidecar: Duration,
    publish: Duration,
    archive: Duration,
}

impl Workflow {
    pub fn new(ledger: Ledger, clock: Clock) -> Self {
        Self { ledger, clock }
    }

    /// One tenant's run: the event claim around the workflow.
    pub async fn run(
        &self,
        tenant: &TenantContext,
        options: &Options,
        request_id: &str,
    ) -> Summary {
        let name = tenant.config.tenant.as_str();
        let config = &tenant.config.config;
        if !config.features.publish_enabled {
            return Summary::stopped(&tenant.host, Some(name), Reason::Disabled);
        }
        // Only a run that can publish takes the event.
        let may_publish = !options.synthetic(config.content.debug);
        let key = options.idempotency_key.as_deref().filter(|_| may_publish);
        // The run's claims (of its event, of its image) last until its end.
        let now = self.clock.now();
        let until = options
            .deadline
            .unwrap_or_else(|| now.checked_add(DEFAULT_RUN_TIMEOUT).unwrap_or(now));
        if let Some(key) = key {
            match self.ledger.claim(name, key, until).await {
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
                    return Summary::stopped(&tenant.host, Some(name), Reason::ClaimUnavailable);
                }
            }
        }
        let holder = uuid::Uuid::new_v4().to_string();
        let claimant = may_publish.then_some(Claimant {
            holder: &holder,
            until,
        });
        let summary = self
            .publish(tenant, options, claimant.as_ref(), request_id)
            .await;
        if let Some(key) = key {
            let settled = summary.any_success() || summary.status == Status::NothingToPublish;
            let written = if settled {
                self.ledger.complete(name, key, &json!(summary)).await
            } else {
                self.ledger.release(name, key).await
            };
            if let Err(error) = written {
                tracing::error!(request_id, tenant = name, settled, %error, "publish: cannot settle the claim");
            }
        }
        summary
    }

    /// Steps 2 to 8 of the workflow, each step timed.
    async fn publish(
        &self,
        tenant: &TenantContext,
        options: &Options,
        claimant: Option<&Claimant<'_>>,
        request_id: &str,
    ) -> Summary {
        let (summary, timing) = self.steps(tenant, options, claimant, request_id).await;
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::info!(
            request_id,
            tenant = %tenant.config.tenant,
            image = summary.image.as_deref().unwrap_or(""),
            status = summary.status.as_str(),
            list_ms = ms(timing.list),
            selection_ms = ms(timing.selection),
            vision_ms = ms(timing.vision),
            caption_ms = ms(timing.caption),
            sidecar_ms = ms(timing.sidecar),
            publish_ms = ms(timing.publish),
            archive_ms = ms(timing.archive),
            "workflow_timing"
        );
        summary
    }

    /// The steps in order, and what each took; each stop is a summary with
    /// its reason.
    async fn steps(
        &self,
        tenant: &TenantContext,
        options: &Options,
        claimant: Option<&Claimant<'_>>,
        request_id: &str,
    ) -> (Summary, Timing) {
        let mut timing = Timing::default();
        let name = tenant.config.tenant.as_str();
        let config = &tenant.config.config;
        let services = &tenant.services;
        let storage = services.storage().as_ref();
        let synthetic = options.synthetic(config.content.debug);
        let stop = |reason| Summary::stopped(&tenant.host, Some(name), reason);

        let started = Instant::now();
        let listing = match storage.list_files(&config.storage.paths.root).await {
            Ok(files) => Listing::new(files),
            // A folder that does not exist holds no images.
            Err(StorageError::NotFound) => Listing::new(Vec::new()),
            Err(error) => {
                let reason = Reason::Storage {
                    what: "Listing the image folder failed",
                    error,
                };
                return (stop(reason), timing);
            }
        };
        timing.list = started.elapsed();
        if listing.images().is_empty() {
            return (stop(Reason::NoImages), timing);
        }

        let started = Instant::now();
        let chosen = select::choose(
            &self.ledger,
            name,
            &listing,
            options.select.as_deref(),
            storage,
            claimant,
        )
        .await;
        timing.selection = started.elapsed();
        let chosen = match chosen {
            Ok(chosen) => chosen,
            Err(reason) => return (stop(reason), timing),
        };
        let mut summary = Summary::new(&tenant.host, Some(name), Status::Published);
        summary.image = Some(chosen.entry.name.clone());
        let entry = &chosen.entry;

        // Caption: the sidecar's, else a new one when analysis is on.
        let spec = CaptionSpec::for_config(config, services.limits());
        let found = caption::find(
            services,
            &listing,
            entry,
            options.refresh_caption,
            request_id,
        )
        .await;
        (timing.vision, timing.caption) = (found.vision, found.captioning);
        let (caption, generated) = match found.caption {
            Caption::Sidecar(sidecar) => (
                spec.with_hashtags(&sidecar.caption().unwrap_or_default()),
                None,
            ),
            Caption::Generated(generated) => (
                spec.with_hashtags(&generated.captions.caption),
                Some(*generated),
            ),
            Caption::Missing => (String::new(), None),
        };

        // Sidecar: only when there is something new to keep.
        let sidecar_text = generated.as_ref().map(|g| {
            caption::sidecar_for(entry, Some(&chosen.sha256), g, &caption, config)
                .render(config.captionfile.extended_metadata_enabled)
        });
        let started = Instant::now();
        let mut sidecar_path = listing.sidecar_of(&entry.name).map(|e| e.path.clone());
        if let (Some(text), false) = (&sidecar_text, synthetic) {
            if let Some(path) =
                caption::write_sidecar(services, entry, text.clone(), request_id).await
            {
                sidecar_path = Some(path);
            }
        }
        timing.sidecar = started.elapsed();

        if options.preview {
            summary.status = Status::Preview;
            summary.preview = Some(send::preview(
                config,
                services.limits(),
                &caption,
                sidecar_text,
                generated.as_ref().map(|g| g.analysis.clone()),
            ));
        }
        let started = Instant::now();
        summary.results = if synthetic {
            send::synthetic_results(config)
        } else {
            let tags = generated
                .as_ref()
                .map(|g| g.analysis.tags.clone())
                .unwrap_or_default();
            send::send(
                services,
                entry,
                chosen.bytes.clone(),
                &caption,
                &tags,
                request_id,
            )
            .await
        };
        timing.publish = started.elapsed();
        let stopped = if summary.results.is_empty() {
            Some(Reason::NoPublisher)
        } else if !summary.any_success() {
            let transient = summary.results.values().all(|r| r.transient);
            Some(Reason::EveryPublisherFailed { transient })
        } else {
            None
        };
        if let Some(reason) = stopped {
            // Nothing went out: the image is free for the next run.
            self.settle(name, &chosen, claimant, None, request_id).await;
            return (summary.with_reason(reason), timing);
        }
        if synthetic {
            return (summary, timing);
        }

        let started = Instant::now();
        if config.content.archive {
            match archive::archive(
                storage,
                &config.storage.paths.archive,
                &entry.path,
                sidecar_path.as_deref(),
                request_id,
            )
            .await
            {
                Ok(()) => summary.archived = true,
                Err(error) => {
                    tracing::error!(request_id, tenant = name, %error, "archiving failed");
                    summary = summary.with_reason(Reason::Archive(error));
                }
            }
            services.forget_images();
        }
        let posted = PostedImage {
            sha256: chosen.sha256.clone(),
            content_hash: entry.content_hash.clone(),
            image_name: entry.name.clone(),
            posted_at: self.clock.now(),
            platforms: summary
                .results
                .iter()
                .filter(|(_, r)| r.success)
                .map(|(k, _)| k.clone())
                .collect(),
            uncertain: false,
        };
        self.settle(name, &chosen, claimant, Some(&posted), request_id)
            .await;
        timing.archive = started.elapsed();
        (summary, timing)
    }

    /// Ends the run's claim on the chosen image: `posted` records it in the
    /// posted set (in the same write), `None` frees it. A failure is logged:
    /// an unsettled claim runs out and its image is then recorded as posted
    /// (uncertain), never sent twice.
    async fn settle(
        &self,
        tenant: &str,
        chosen: &select::Chosen,
        claimant: Option<&Claimant<'_>>,
        posted: Option<&PostedImage>,
        request_id: &str,
    ) {
        let Some(claimant) = claimant.filter(|_| chosen.claimed) else {
            return;
        };
        let settled = self
            .ledger
            .settle_image(tenant, &chosen.sha256, claimant.holder, posted)
            .await;
        if let Err(error) = settled {
            tracing::error!(request_id, tenant, image = %chosen.entry.name, published = posted.is_some(), %error, "the image claim was not settled");
        }
    }
}

/// A duplicate delivery's answer: the first run's outcome, when it has one.
fn duplicate(tenant: &TenantContext, completed: bool, result: Option<Value>) -> Summary {
    let name = Some(tenant.config.tenant.as_str());
    let mut summary = Summary::new(&tenant.host, name, Status::SkippedDuplicateEvent);
    match result.and_then(|r| serde_json::from_value::<Summary>(r).ok()) {
        Some(first) => {
            summary.image = first.image;
            summary.results = first.results;
            summary.archived = first.archived;
        }
        None if !completed => summary = summary.with_reason(Reason::EventInProgress),
        None => {}
    }
    summary
}
