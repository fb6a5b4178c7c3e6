//! The places an image is published to, and what each reports back.

pub mod captions;
pub mod fetlife;
pub mod telegram;

use serde::{Deserialize, Serialize};

/// The result keys of the web's publish response and of the publish summary.
pub const TELEGRAM: &str = "telegram";
pub const EMAIL: &str = "email";

/// One publisher's outcome: `{success, post_id, error}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResult {
    pub success: bool,
    pub post_id: Option<String>,
    pub error: Option<String>,
    /// The failure may pass (the service was unreachable, rate limited or
    /// failing): what decides whether a scheduled run is retried.
    #[serde(skip)]
    pub transient: bool,
}

impl PublishResult {
    pub fn published(post_id: Option<String>) -> Self {
        Self {
            success: true,
            post_id,
            error: None,
            transient: false,
        }
    }

    pub fn failed(error: impl Into<String>, transient: bool) -> Self {
        Self {
            success: false,
            post_id: None,
            error: Some(error.into()),
            transient,
        }
    }
}
