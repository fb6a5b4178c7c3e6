//! Storage in a local directory that stands for the storage root `/`
//! (`STORAGE_PROVIDER=local`, `LOCAL_STORAGE_DIR`): local runs, and the second
//! implementation every storage test runs against. It behaves like the
//! Dropbox one: same content hash, same autorename, same thumbnails.
//!
//! Nothing outside the directory is ever reached: paths with `.`/`..`
//! segments are refused, and a path that resolves (through symlinks) outside
//! the directory is "not found".

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{
    clean_path, hex, join, renamed, thumbnail, FileEntry, Storage, StorageError, ThumbnailSize,
};

/// Uploads are written under this prefix, then renamed into place, so that
/// nobody reads half a file; listings skip such names.
const PARTIAL_PREFIX: &str = ".~partial-";

pub struct LocalStorage {
    /// Canonical: every resolved path must stay under it.
    root: PathBuf,
    /// Content hashes by file, valid while size and mtime are unchanged, so a
    /// listing does not read every file again.
    hashes: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

impl LocalStorage {
    /// Fails when `dir` is not an existing directory.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let root = dir.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Self {
            root,
            hashes: Mutex::default(),
        })
    }

    /// The directory standing for `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of a storage path, not yet checked against symlinks.
    fn local_path(&self, path: &str) -> Result<PathBuf, StorageError> {
        let clean = clean_path(path)?;
        Ok(
            match clean.strip_prefix('/').filter(|rest| !rest.is_empty()) {
                Some(relative) => self.root.join(relative),
                None => self.root.clone(),
            },
        )
    }

    /// An existing entry's real location, when it is inside the root.
    async fn existing(&self, path: &str) -> Result<PathBuf, StorageError> {
        let full = self.local_path(path)?;
        let real = tokio::fs::canonicalize(&full).await.map_err(io_error)?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(StorageError::NotFound)
        }
    }

    /// An existing regular file's real location and metadata.
    async fn existing_file(
        &self,
        path: &str,
    ) -> Result<(PathBuf, std::fs::Metadata), StorageError> {
        let real = self.existing(path).await?;
        let meta = tokio::fs::metadata(&real).await.map_err(io_error)?;
        if meta.is_file() {
            Ok((real, meta))
        } else {
            Err(StorageError::NotFound)
        }
    }

    /// A path that may be written: whatever exists of it (the entry itself,
    /// else its nearest existing ancestor) resolves inside the root. A dangling
    /// symlink is refused, since writing through it would create its target.
    async fn writable(&self, path: &str) -> Result<PathBuf, StorageError> {
        let full = self.local_path(path)?;
        let mut probe = full.as_path();
        loop {
            if tokio::fs::symlink_metadata(probe).await.is_ok() {
                let real = tokio::fs::canonicalize(probe)
                    .await
                    .map_err(|_| StorageError::NotFound)?;
                return if real.starts_with(&self.root) {
                    Ok(full)
                } else {
                    Err(StorageError::NotFound)
                };
            }
            // The root exists, so the walk ends there at the latest.
            probe = probe.parent().ok_or(StorageError::NotFound)?;
        }
    }

    async fn entry(
        &self,
        path: String,
        real: PathBuf,
        meta: &std::fs::Metadata,
    ) -> Result<FileEntry, StorageError> {
        use std::os::unix::fs::MetadataExt;
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let size = meta.len();
        let cached = {
            let hashes = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
            hashes
                .get(&real)
                .filter(|(s, m, _)| *s == size && *m == modified)
                .map(|(_, _, hash)| hash.clone())
        };
        let content_hash = match cached {
            Some(hash) => hash,
            None => {
                let file = real.clone();
                let hash = tokio::task::spawn_blocking(move || hash_file(&file))
                    .await
                    .map_err(|e| StorageError::Other(format!("hashing failed: {e}")))?
                    .map_err(io_error)?;
                self.hashes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(real, (size, modified, hash.clone()));
                hash
            }
        };
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(FileEntry {
            name: path.rsplit('/').next().unwrap_or_default().to_string(),
            // Like a Dropbox id, the inode survives moves within the storage.
            id: Some(format!("id:{:x}.{:x}", meta.dev(), meta.ino())),
            rev: Some(format!("{nanos:x}{size:x}")),
            content_hash: Some(content_hash),
            size,
            path,
        })
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn list_files(&self, folder: &str) -> Result<Vec<FileEntry>, StorageError> {
        let folder = clean_path(folder)?;
        let real = self.existing(&folder).await?;
        let mut dir = tokio::fs::read_dir(&real).await.map_err(io_error)?;
        let mut files = Vec::new();
        while let Some(item) = dir.next_entry().await.map_err(io_error)? {
            // Names that are not UTF-8 cannot be storage names.
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            if name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            let path = join(&folder, &name);
            // Symlinks count when they lead to a file inside the root.
            let Ok((file, meta)) = self.existing_file(&path).await else {
                continue;
            };
            files.push(self.entry(path, file, &meta).await?);
        }
        files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(files)
    }

    async fn metadata(&self, path: &str) -> Result<FileEntry, StorageError> {
        let (real, meta) = self.existing_file(path).await?;
        self.entry(clean_path(path)?, real, &meta).await
    }

    /// A `file://` URL of the file: local storage has no link service, so the
    /// link names the file; a web page cannot load it and serves the bytes
    /// through its own routes instead.
    async fn temporary_link(&self, path: &str) -> Result<String, StorageError> {
        let (real, _) = self.existing_file(path).await?;
        reqwest::Url::from_file_path(&real)
            .map(String::from)
            .map_err(|()| StorageError::NotFound)
    }

    async fn download(&self, path: &str) -> Result<Bytes, StorageError> {
        let (real, _) = self.existing_file(path).await?;
        tokio::fs::read(&real)
            .await
            .map(Bytes::from)
            .map_err(io_error)
    }

    async fn upload(&self, path: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = clean_path(path)?;
        let Some((parent, _)) = path.rsplit_once('/').filter(|(_, name)| !name.is_empty()) else {
            return Err(StorageError::NotFound);
        };
        // Like Dropbox, an upload creates the missing folders above the file.
        self.create_folder(if parent.is_empty() { "/" } else { parent })
            .await?;
        let target = self.writable(&path).await?;
        if tokio::fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
            return Err(StorageError::Other("path/conflict/folder".into()));
        }
        let parent = target.parent().ok_or(StorageError::NotFound)?;
        let partial = parent.join(format!("{PARTIAL_PREFIX}{}", uuid::Uuid::new_v4()));
        let written = async {
            tokio::fs::write(&partial, &bytes).await?;
            tokio::fs::rename(&partial, &target).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written.map_err(io_error)
    }

    async fn create_folder(&self, path: &str) -> Result<(), StorageError> {
        let target = self.writable(path).await?;
        match tokio::fs::metadata(&target).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(StorageError::Other("path/conflict/file".into())),
            Err(_) => tokio::fs::create_dir_all(&target).await.map_err(io_error),
        }
    }

    async fn move_to_folder(&self, from: &str, to_folder: &str) -> Result<String, StorageError> {
        self.existing_file(from).await?;
        // The entry itself moves: a symlink as a link, not the file it names.
        let source = self.local_path(from)?;
        let name = clean_path(from)?
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        self.create_folder(to_folder).await?;
        let folder = clean_path(to_folder)?;
        for n in 0..10_000 {
            let path = join(&folder, &renamed(&name, n));
            let target = self.writable(&path).await?;
            if tokio::fs::symlink_metadata(&target).await.is_ok() {
                continue;
            }
            tokio::fs::rename(&source, &target)
                .await
                .map_err(io_error)?;
            return Ok(path);
        }
        Err(StorageError::Other("to/conflict/file".into()))
    }

    async fn thumbnail(&self, path: &str, size: ThumbnailSize) -> Result<Bytes, StorageError> {
        let bytes = self.download(path).await?;
        tokio::task::spawn_blocking(move || thumbnail::jpeg_thumbnail(&bytes, size))
            .await
            .map_err(|e| StorageError::Other(format!("thumbnail failed: {e}")))?
            .map(Bytes::from)
            .map_err(|_| StorageError::Other("unsupported_image".into()))
    }
}

fn io_error(error: io::Error) -> StorageError {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StorageError::NotFound,
        _ => StorageError::Other(error.kind().to_string()),
    }
}

/// [`super::content_hash`], reading the file one block at a time.
fn hash_file(path: &Path) -> io::Result<String> {
    const BLOCK: usize = 4 * 1024 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; BLOCK];
    let mut overall = Sha256::new();
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match file.read(&mut block[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        overall.update(Sha256::digest(&block[..filled]));
        if filled < BLOCK {
            break;
        }
    }
    Ok(hex(&overall.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hash_equals_content_hash() {
        let dir = tempfile::tempdir().expect("dir");
        for len in [0usize, 3, 4 * 1024 * 1024, 4 * 1024 * 1024 + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let file = dir.path().join("f");
            std::fs::write(&file, &data).expect("write");
            assert_eq!(
                hash_file(&file).expect("hash"),
                super::super::content_hash(&data),
                "{len}"
            );
        }
    }
}
