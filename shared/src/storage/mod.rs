//! The tenant's photo storage: Dropbox in production, a local directory for
//! local runs and as a second implementation every storage test runs against.

use async_trait::async_trait;
use bytes::Bytes;

/// A file in storage. Paths are absolute storage paths (`/Photos/x/a.jpg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub path: String,
    pub id: Option<String>,
    pub rev: Option<String>,
    /// Dropbox's content hash (local: the same algorithm over the bytes).
    pub content_hash: Option<String>,
    pub size: u64,
}

/// The thumbnail sizes web.md allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThumbnailSize {
    W256H256,
    W480H320,
    W640H480,
    #[default]
    W960H640,
    W1024H768,
}

impl ThumbnailSize {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "w256h256" => Self::W256H256,
            "w480h320" => Self::W480H320,
            "w640h480" => Self::W640H480,
            "w960h640" => Self::W960H640,
            "w1024h768" => Self::W1024H768,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::W256H256 => "w256h256",
            Self::W480H320 => "w480h320",
            Self::W640H480 => "w640h480",
            Self::W960H640 => "w960h640",
            Self::W1024H768 => "w1024h768",
        }
    }

    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::W256H256 => (256, 256),
            Self::W480H320 => (480, 320),
            Self::W640H480 => (640, 480),
            Self::W960H640 => (960, 640),
            Self::W1024H768 => (1024, 768),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    /// Authentication with the storage provider failed (after one refresh).
    #[error("storage authorization failed")]
    Unauthorized,
    /// Rate limited, 5xx after retries, or a transport failure.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other error the provider reported (its error summary, never a token).
    #[error("storage error: {0}")]
    Other(String),
}

/// Operations the web and publish functions need on a tenant's storage.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Files (not folders) directly in `folder`, following pagination to the end.
    async fn list_files(&self, folder: &str) -> Result<Vec<FileEntry>, StorageError>;
    async fn metadata(&self, path: &str) -> Result<FileEntry, StorageError>;
    /// A link the browser or OpenAI can fetch the file from for a while.
    async fn temporary_link(&self, path: &str) -> Result<String, StorageError>;
    async fn download(&self, path: &str) -> Result<Bytes, StorageError>;
    /// Writes `bytes` at `path`, replacing any file there.
    async fn upload(&self, path: &str, bytes: Bytes) -> Result<(), StorageError>;
    /// Creates `path`; an existing folder is not an error.
    async fn create_folder(&self, path: &str) -> Result<(), StorageError>;
    /// Moves `from` into `to_folder` under its own name, renamed on conflict;
    /// returns the new path.
    async fn move_to_folder(&self, from: &str, to_folder: &str) -> Result<String, StorageError>;
    /// A JPEG thumbnail that fits `size`.
    async fn thumbnail(&self, path: &str, size: ThumbnailSize) -> Result<Bytes, StorageError>;
}
