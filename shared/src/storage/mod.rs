//! The tenant's photo storage: Dropbox in production, a local directory for
//! local runs and as a second implementation every storage test runs against.

pub mod dropbox;
pub mod listing;
pub mod local;
pub mod thumbnail;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use dropbox::{DropboxApp, DropboxStorage, TokenCache};
pub use listing::{Listing, ListingCache};
pub use local::LocalStorage;

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

/// The thumbnail sizes the web API allows.
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

/// Image files the functions work on: `.jpg`, `.jpeg`, `.png`, any case.
pub fn is_image_name(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    ["jpg", "jpeg", "png"]
        .iter()
        .any(|known| ext.eq_ignore_ascii_case(known))
}

/// Dropbox's content hash: the SHA-256 of each 4 MiB block, then the SHA-256
/// of those digests concatenated, in lower-case hex. Local storage uses it too,
/// so a hash means the same thing whichever storage computed it.
pub fn content_hash(bytes: &[u8]) -> String {
    const BLOCK: usize = 4 * 1024 * 1024;
    let mut overall = Sha256::new();
    for block in bytes.chunks(BLOCK) {
        overall.update(Sha256::digest(block));
    }
    hex(&overall.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// `path` in its one spelling (`/a//b/` → `/a/b`), when it is an absolute
/// storage path without `.` or `..` segments or control characters. Both
/// implementations answer anything else as not found, so no caller can reach
/// outside the path it was given.
pub fn clean_path(path: &str) -> Result<String, StorageError> {
    let valid = path.starts_with('/')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..");
    if valid {
        Ok(normalized(path))
    } else {
        Err(StorageError::NotFound)
    }
}

/// `/a//b/` → `/a/b`: the one spelling of a path both storages use.
fn normalized(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// The path of `name` inside `folder` (`/` joins without doubling).
pub fn join(folder: &str, name: &str) -> String {
    format!("{}/{name}", folder.trim_end_matches('/'))
}

/// The `n`th name Dropbox's autorename tries for `name`: `a (1).jpg`,
/// `a (2).jpg`, ... (`n == 0` is the name itself).
pub fn renamed(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.').filter(|&dot| dot > 0) {
        Some(dot) => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        None => format!("{name} ({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_matches_dropbox_algorithm() {
        // Empty input: the SHA-256 of no digests at all.
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // One block: SHA-256(SHA-256("abc")).
        assert_eq!(
            content_hash(b"abc"),
            "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
        );
        // Two blocks: the digests of both blocks, hashed together.
        let data: Vec<u8> = (0..(4 * 1024 * 1024 + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut both = Vec::new();
        both.extend_from_slice(&Sha256::digest(&data[..4 * 1024 * 1024]));
        both.extend_from_slice(&Sha256::digest(&data[4 * 1024 * 1024..]));
        assert_eq!(content_hash(&data), hex(&Sha256::digest(&both)));
        assert_ne!(content_hash(&data), hex(&Sha256::digest(&data)));
    }

    #[test]
    fn image_names() {
        for name in ["a.jpg", "B.JPEG", "c.Png", "x.y.jpg"] {
            assert!(is_image_name(name), "{name}");
        }
        for name in ["a.txt", "jpg", "a.jpg.txt", "a.gif", ".", ""] {
            assert!(!is_image_name(name), "{name}");
        }
    }

    #[test]
    fn paths() {
        let cases = [
            ("/", "/"),
            ("/a", "/a"),
            ("/Photos/x/a b.jpg", "/Photos/x/a b.jpg"),
            ("/a..b/...", "/a..b/..."),
            ("//a//b/", "/a/b"),
        ];
        for (path, clean) in cases {
            assert_eq!(clean_path(path).as_deref(), Ok(clean), "{path}");
        }
        for bad in ["", "a", "/a/../b", "/..", "/a/./b", "/a\n", "/a\u{0}b"] {
            assert_eq!(clean_path(bad), Err(StorageError::NotFound), "{bad:?}");
        }
        assert_eq!(join("/", "a.jpg"), "/a.jpg");
        assert_eq!(renamed("a.jpg", 0), "a.jpg");
        assert_eq!(renamed("a.b.jpg", 2), "a.b (2).jpg");
        assert_eq!(renamed("README", 1), "README (1)");
        assert_eq!(renamed(".hidden", 1), ".hidden (1)");
        assert_eq!(join("/P/x", "a.jpg"), "/P/x/a.jpg");
    }
}
