//! A tenant's configuration: the orchestrator's runtime envelope (schema v1 and v2)
//! or, in standalone mode, the environment, both turned into one [`TenantConfig`];
//! and a host's configuration as the functions serve it ([`RuntimeConfig`]).

mod block;
mod envelope;
mod paths;
mod sections;
mod served;
mod standalone;

pub use envelope::{parse_envelope, parse_envelope_with, RuntimeEnvelope};
pub use served::{Envelope, RuntimeConfig};
pub use standalone::{standalone_config, StandaloneEnv};

use crate::secrets::{CredentialRef, Role};

/// A configuration the functions cannot work with. `path` names the field
/// (`config.storage.paths.root`), never the payload or its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant configuration at {path}: {reason}")]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Everything the functions need to know about one tenant, whatever its source.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub features: Features,
    pub storage: StorageConfig,
    pub publishers: Publishers,
    /// Present only when it has host, from_email and password_ref.
    pub email_server: Option<EmailServer>,
    /// Present only when it names credentials; without it analysis is off.
    pub ai: Option<AiConfig>,
    pub captionfile: CaptionFile,
    pub confirmation: Confirmation,
    pub content: Content,
}

impl TenantConfig {
    /// The reference to resolve for `role`, when the tenant uses that role.
    pub fn credential_ref(&self, role: Role) -> Option<&CredentialRef> {
        match role {
            Role::Storage => self.storage.credentials_ref.as_ref(),
            Role::Openai => self.ai.as_ref().map(|ai| &ai.credentials_ref),
            Role::Telegram => self
                .publishers
                .telegram
                .as_ref()
                .map(|t| &t.credentials_ref),
            Role::Smtp => self
                .publishers
                .fetlife
                .as_ref()
                .and(self.email_server.as_ref())
                .map(|e| &e.password_ref),
        }
    }

    /// Analysis and captions run only when the feature is on and AI is configured.
    pub fn analysis_enabled(&self) -> bool {
        self.features.analyze_caption_enabled && self.ai.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub publish_enabled: bool,
    pub analyze_caption_enabled: bool,
    pub keep_enabled: bool,
    pub remove_enabled: bool,
    pub auto_view_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageProvider {
    Dropbox,
    /// A local directory standing for the storage root `/`: standalone
    /// `STORAGE_PROVIDER=local`, or an orchestrated tenant's folder under
    /// `LOCAL_TENANT_STORAGE_DIR` (local runs only).
    Local {
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub provider: StorageProvider,
    /// Required for Dropbox; `None` for local storage.
    pub credentials_ref: Option<CredentialRef>,
    pub paths: StoragePaths,
}

/// Absolute storage paths, already resolved against the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePaths {
    pub root: String,
    pub archive: String,
    pub keep: String,
    pub remove: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publishers {
    pub telegram: Option<TelegramConfig>,
    pub fetlife: Option<FetlifeConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    pub credentials_ref: CredentialRef,
    pub channel_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionTarget {
    Subject,
    Body,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectMode {
    Normal,
    Private,
    Avatar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetlifeConfig {
    pub recipient: String,
    /// `None`: the static `email.caption_target` applies.
    pub caption_target: Option<CaptionTarget>,
    /// `None`: the static `email.subject_mode` applies.
    pub subject_mode: Option<SubjectMode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailServer {
    pub host: String,
    pub port: u16,
    pub from_email: String,
    pub password_ref: CredentialRef,
    pub use_tls: bool,
    /// The login name; `from_email` when the configuration leaves it null.
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiConfig {
    pub credentials_ref: CredentialRef,
    pub vision_model: String,
    pub caption_model: String,
    pub system_prompt: Option<String>,
    pub role_prompt: Option<String>,
    pub sd_caption_enabled: bool,
    pub sd_caption_single_call_enabled: bool,
    pub sd_caption_model: Option<String>,
    pub sd_caption_system_prompt: Option<String>,
    pub sd_caption_role_prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptionFile {
    pub extended_metadata_enabled: bool,
    pub artist_alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmation_to_sender: bool,
    /// `None`: the static `confirmation_tags.default_count` applies.
    pub confirmation_tags_count: Option<u32>,
    /// `None`: the static `confirmation_tags.prompt` applies.
    pub confirmation_tags_nature: Option<String>,
}

impl Default for Confirmation {
    fn default() -> Self {
        Self {
            confirmation_to_sender: true,
            confirmation_tags_count: None,
            confirmation_tags_nature: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub hashtag_string: String,
    /// Archive after a successful publish (the folder is `storage.paths.archive`).
    pub archive: bool,
    pub debug: bool,
}

impl Default for Content {
    fn default() -> Self {
        Self {
            hashtag_string: String::new(),
            archive: true,
            debug: false,
        }
    }
}

pub const DEFAULT_VISION_MODEL: &str = "gpt-4o";
pub const DEFAULT_CAPTION_MODEL: &str = "gpt-4o-mini";

/// Model names the service accepts; anything else falls back to the default.
pub fn is_valid_model(name: &str) -> bool {
    ["gpt-4", "gpt-3.5", "gpt-5", "o1", "o3", "o4"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}
