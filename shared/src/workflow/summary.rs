//! What a run is asked to do and what it answers: the options of one run,
//! and the summary per host (`{host, tenant, status, image, results,
//! archived, error}`), with the typed reason a run stopped.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::ai::Analysis;
use crate::publishers::PublishResult;
use crate::storage::StorageError;

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

impl Options {
    /// Preview, dry run and the tenant's debug mode send, write and move
    /// nothing.
    pub fn synthetic(&self, debug: bool) -> bool {
        self.preview || self.dry_run || debug
    }
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

/// Why a run did not publish (or, for [`Reason::Archive`], what went wrong
/// after it did). Its text is the summary's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Disabled,
    TenantNotFound,
    /// The orchestrator, the configuration or the storage credential.
    TenantUnavailable,
    /// The event claim could not be read or written.
    ClaimUnavailable,
    /// Another run holds the event and has not finished it.
    EventInProgress,
    NoImages,
    /// No unposted image could be taken: how many were too large to decode,
    /// and how many another run holds.
    NothingNew {
        too_large: usize,
        in_progress: usize,
    },
    /// The selected image is in the posted set.
    AlreadyPublished,
    /// Another run holds the selected image.
    PublishInProgress,
    /// The image claim could not be written.
    ClaimFailed(String),
    /// The selected file is not in the listing.
    ImageNotFound,
    /// The selected file declares more pixels than may be decoded.
    ImageTooLarge(String),
    Storage {
        what: &'static str,
        error: StorageError,
    },
    PostedSetUnavailable(String),
    NoPublisher,
    EveryPublisherFailed {
        transient: bool,
    },
    /// Published, but the image could not be moved to the archive.
    Archive(StorageError),
    /// The run panicked (a bug): failed, not retried.
    Internal,
}

impl Reason {
    /// The status of a summary that stopped for this reason.
    pub fn status(&self) -> Status {
        match self {
            Reason::Disabled => Status::Disabled,
            Reason::TenantNotFound => Status::NotFound,
            Reason::NoImages | Reason::NothingNew { .. } | Reason::AlreadyPublished => {
                Status::NothingToPublish
            }
            Reason::EventInProgress => Status::SkippedDuplicateEvent,
            Reason::Archive(_) => Status::Published,
            _ => Status::Failed,
        }
    }

    /// May a retry of the run succeed (an unreachable service)?
    pub fn transient(&self) -> bool {
        match self {
            Reason::TenantUnavailable
            | Reason::ClaimUnavailable
            | Reason::PostedSetUnavailable(_)
            | Reason::ClaimFailed(_) => true,
            Reason::Storage { error, .. } => matches!(error, StorageError::Unavailable(_)),
            Reason::EveryPublisherFailed { transient } => *transient,
            _ => false,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Disabled => f.write_str("Publishing is disabled"),
            Reason::TenantNotFound => f.write_str("Not found"),
            Reason::TenantUnavailable => f.write_str("Tenant configuration unavailable"),
            Reason::ClaimUnavailable => f.write_str("Publish state unavailable"),
            Reason::EventInProgress => f.write_str("The event is being published by another run"),
            Reason::NoImages => f.write_str("No images found"),
            Reason::NothingNew {
                too_large: 0,
                in_progress: 0,
            } => f.write_str("No new images to post (all duplicates)"),
            Reason::NothingNew {
                too_large,
                in_progress,
            } => {
                let counts: Vec<String> = [
                    (*too_large, "too large to decode"),
                    (*in_progress, "being published by another run"),
                ]
                .iter()
                .filter(|(count, _)| *count > 0)
                .map(|(count, what)| format!("{count} {what}"))
                .collect();
                write!(f, "No new images to post ({})", counts.join(", "))
            }
            Reason::AlreadyPublished => f.write_str("Already published"),
            Reason::PublishInProgress => f.write_str("publish_in_progress"),
            Reason::ClaimFailed(error) => write!(f, "Claiming the image failed: {error}"),
            Reason::ImageNotFound => f.write_str("Image not found"),
            Reason::ImageTooLarge(name) => write!(f, "image_too_large: {name}"),
            Reason::Storage { what, error } => write!(f, "{what}: {error}"),
            Reason::PostedSetUnavailable(error) => {
                write!(f, "Reading the posted set failed: {error}")
            }
            Reason::NoPublisher => f.write_str("No publisher is available"),
            Reason::EveryPublisherFailed { .. } => f.write_str("Every publisher failed"),
            Reason::Archive(error) => write!(f, "Archiving failed: {error}"),
            Reason::Internal => f.write_str("Internal error"),
        }
    }
}

/// What a preview shows beside the image: the caption each publisher would
/// send, the e-mail subject, the sidecar text that would be written and the
/// analysis behind a new caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub captions: BTreeMap<String, String>,
    pub email_subject: Option<String>,
    pub sidecar: Option<String>,
    /// The vision analysis behind a new caption; `None` when the caption
    /// came from the sidecar or analysis is off.
    pub analysis: Option<Analysis>,
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
    /// Why the run stopped, typed (`error` is its text).
    #[serde(skip)]
    pub reason: Option<Reason>,
}

impl Summary {
    pub fn new(host: &str, tenant: Option<&str>, status: Status) -> Self {
        Self {
            host: host.to_string(),
            tenant: tenant.map(str::to_string),
            status,
            image: None,
            results: BTreeMap::new(),
            archived: false,
            error: None,
            preview: None,
            reason: None,
        }
    }

    /// A run that stopped for `reason`.
    pub fn stopped(host: &str, tenant: Option<&str>, reason: Reason) -> Self {
        Self::new(host, tenant, reason.status()).with_reason(reason)
    }

    /// Records `reason` as the summary's error (and its status, when the
    /// reason stops the run).
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.status = reason.status();
        self.error = Some(reason.to_string());
        self.reason = Some(reason);
        self
    }

    pub fn any_success(&self) -> bool {
        self.results.values().any(|r| r.success)
    }

    /// Did the run fail for a reason that may pass on a retry?
    pub fn transient(&self) -> bool {
        self.status == Status::Failed && self.reason.as_ref().is_some_and(Reason::transient)
    }
}
