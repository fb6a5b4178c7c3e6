//! Storage folder paths: one resolution rule for the runtime envelope and standalone.

use super::block::Block;
use super::{ConfigError, StoragePaths};

/// Reads `{root, archive, keep, remove}` and resolves the three folders: relative
/// ones under `root`, absolute ones as they are.
pub(super) fn storage_paths(paths: &Block<'_>) -> Result<StoragePaths, ConfigError> {
    let root = paths
        .string("root")?
        .ok_or_else(|| paths.err("root", "required"))?;
    if !root.starts_with('/') {
        return Err(paths.err("root", "must be an absolute path"));
    }
    let root = normalize(&root).ok_or_else(|| paths.err("root", DOT_DOT))?;
    let folder = |key: &str, default: &str| {
        let value = paths.string(key)?.unwrap_or_else(|| default.to_owned());
        let joined = if value.starts_with('/') {
            value
        } else {
            format!("{root}/{value}")
        };
        normalize(&joined).ok_or_else(|| paths.err(key, DOT_DOT))
    };
    let (archive, keep, remove) = (
        folder("archive", "archive")?,
        folder("keep", "keep")?,
        folder("remove", "reject")?,
    );
    Ok(StoragePaths {
        root,
        archive,
        keep,
        remove,
    })
}

const DOT_DOT: &str = "must not contain a `..` segment";

/// The non-empty segments joined by `/`, so doubled and trailing slashes vanish;
/// `None` for a `..` segment, which could escape the tenant's root.
fn normalize(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.contains(&"..") {
        return None;
    }
    Some(format!("/{}", segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(paths: serde_json::Value) -> Result<StoragePaths, ConfigError> {
        storage_paths(&Block::new(Some(&paths), "P").unwrap())
    }

    fn folders(paths: serde_json::Value) -> [String; 4] {
        let p = resolve(paths).unwrap();
        [p.root, p.archive, p.keep, p.remove]
    }

    #[test]
    fn resolution_table() {
        let cases = [
            (
                json!({"root": "/Photos/x"}),
                [
                    "/Photos/x",
                    "/Photos/x/archive",
                    "/Photos/x/keep",
                    "/Photos/x/reject",
                ],
            ),
            (
                json!({"root": "/Photos/x/", "archive": "done/", "keep": "/Elsewhere/k/", "remove": null}),
                [
                    "/Photos/x",
                    "/Photos/x/done",
                    "/Elsewhere/k",
                    "/Photos/x/reject",
                ],
            ),
            (
                json!({"root": "/", "keep": "keep", "archive": "a/b"}),
                ["/", "/a/b", "/keep", "/reject"],
            ),
            (
                json!({"root": "//Photos//x//", "keep": "//k", "remove": "r//s"}),
                ["/Photos/x", "/Photos/x/archive", "/k", "/Photos/x/r/s"],
            ),
            (
                json!({"root": "/a..b", "keep": "...", "remove": ""}),
                ["/a..b", "/a..b/archive", "/a..b/...", "/a..b/reject"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                folders(input.clone()),
                expected.map(String::from),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_dot_dot_relative_root_and_missing_root() {
        let cases = [
            (json!({"root": "/Photos/../x"}), "P.root"),
            (
                json!({"root": "/Photos/x", "archive": "../up"}),
                "P.archive",
            ),
            (json!({"root": "/Photos/x", "keep": "/a/../b"}), "P.keep"),
            (json!({"root": "/Photos/x", "remove": "r/.."}), "P.remove"),
            (json!({"root": "Photos/x"}), "P.root"),
            (json!({"root": ""}), "P.root"),
            (json!({"archive": "a"}), "P.root"),
            (json!({"root": 7}), "P.root"),
        ];
        for (input, path) in cases {
            assert_eq!(resolve(input.clone()).unwrap_err().path, path, "{input}");
        }
    }
}
