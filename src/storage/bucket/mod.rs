//! Object storage: the one `ObjectStore` trait every bucket backend implements (embedded
//! filesystem, S3, in-memory for tests), the shared error type, key validation and S3-identical
//! delimiter grouping, plus `open_bucket`, which composes a backend with the retry and metrics
//! decorators. The block catalogue (`blocks`: layout, metas, marks, upload and delete order),
//! block shipping and the bucket tools live in the submodules below.

pub mod blocks;
pub mod config;
pub mod filesystem;
pub mod memory;
pub mod metrics;
pub mod retry;
pub mod s3;
pub mod shipper;
pub mod tools;
pub mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

pub use config::{open_bucket, BucketConfig, BucketKind, FilesystemConfig, RetryConfig, S3Config};

/// Every failure a bucket operation can report. Callers branch on the variant (or on
/// `is_transient`), never on message text.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object not found: {key}")]
    NotFound { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("range not satisfiable for {key}: offset {offset} len {len} (object size {size:?})")]
    InvalidRange {
        key: String,
        offset: u64,
        len: u64,
        size: Option<u64>,
    },
    #[error("transient error during {op} of {key:?}: {message}")]
    Transient {
        op: &'static str,
        key: String,
        message: String,
    },
    #[error("{op} of {key:?} timed out after {after:?}")]
    Timeout {
        op: &'static str,
        key: String,
        after: Duration,
    },
    #[error("permanent error during {op} of {key:?}: {message}")]
    Permanent {
        op: &'static str,
        key: String,
        message: String,
    },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid bucket configuration: {0}")]
    Config(String),
}

impl BucketError {
    /// True when repeating the same request may succeed (network trouble, throttling, server
    /// errors, timeouts). Client errors, missing keys and bad keys are never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            BucketError::Transient { .. } | BucketError::Timeout { .. } => true,
            BucketError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, BucketError::NotFound { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BucketError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, BucketError>;

/// Size and modification time of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// One object returned by `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// Result of `list`: objects directly under the prefix, and (with a delimiter) the rolled-up
/// common prefixes, each ending with the delimiter. Both are sorted by key bytes, like S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListResult {
    pub objects: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
}

/// The bucket abstraction shared by every component (shipper, store gateway, compactor).
/// Keys use `/` separators and must pass `validate_key`.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Short backend name for logs ("filesystem", "s3", "memory").
    fn backend(&self) -> &'static str;
    /// Whole object into memory; use `get_to_file` or `get_range` for large objects.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// `len` bytes from `offset`, clamped at the end of the object. An offset at or past the
    /// end with `len > 0` is `InvalidRange`; `len == 0` returns an empty buffer once the object
    /// is known to exist.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes>;
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()>;
    /// Streams a local file into the bucket (multipart above the backend's threshold) without
    /// holding the whole file in memory. Returns the number of bytes uploaded.
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64>;
    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult>;
    /// `None` when the object does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;
    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.head(key).await?.is_some())
    }
    /// Deleting a missing key succeeds (idempotent), as on S3.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Streams an object into a local file, written atomically (temp file + rename).
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64>;
}

/// The one key check used by every backend before any I/O: keys are relative, `/`-separated,
/// with no empty, `.` or `..` segments, no NUL, no backslash.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(BucketError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') {
        return bad("absolute key (leading '/')");
    }
    if key.ends_with('/') {
        return bad("key ends with '/'");
    }
    validate_chars(key)?;
    for segment in key.split('/') {
        match segment {
            "" => return bad("empty path segment ('//')"),
            "." => return bad("'.' path segment"),
            ".." => return bad("'..' path segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Check for list prefixes: may be empty or end with `/`, otherwise the same rules as keys.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.starts_with('/') {
        return Err(BucketError::InvalidKey {
            key: prefix.to_string(),
            reason: "absolute prefix (leading '/')",
        });
    }
    validate_chars(prefix)?;
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    for segment in body.split('/') {
        let reason = match segment {
            "" => "empty path segment ('//')",
            "." => "'.' path segment",
            ".." => "'..' path segment",
            _ => continue,
        };
        return Err(BucketError::InvalidKey {
            key: prefix.to_string(),
            reason,
        });
    }
    Ok(())
}

fn validate_chars(key: &str) -> Result<()> {
    let reason = if key.contains('\0') {
        "contains NUL"
    } else if key.contains('\\') {
        "contains backslash"
    } else {
        return Ok(());
    };
    Err(BucketError::InvalidKey {
        key: key.to_string(),
        reason,
    })
}

/// Validates a range request and returns the inclusive end offset (`None` = to the end).
/// `len == 0` is handled by callers before this.
pub(crate) fn inclusive_range_end(offset: u64, len: u64) -> Option<u64> {
    offset.checked_add(len).map(|end| end - 1)
}

/// S3 `ListObjectsV2` grouping applied to a sorted or unsorted set of keys: keys under `prefix`
/// whose remainder contains `delimiter` roll up into `prefix + remainder[..=delimiter]`.
/// Shared by the filesystem and memory backends so they list exactly like S3.
pub fn group_by_delimiter<I>(entries: I, prefix: &str, delimiter: Option<&str>) -> ListResult
where
    I: IntoIterator<Item = ListEntry>,
{
    let mut objects = Vec::new();
    let mut prefixes = std::collections::BTreeSet::new();
    for entry in entries {
        let Some(rest) = entry.key.strip_prefix(prefix) else {
            continue;
        };
        let split = match delimiter {
            Some(d) if !d.is_empty() => rest.find(d).map(|i| i + d.len()),
            _ => None,
        };
        match split {
            Some(end) => {
                prefixes.insert(format!("{prefix}{}", &rest[..end]));
            }
            None => objects.push(entry),
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    ListResult {
        objects,
        common_prefixes: prefixes.into_iter().collect(),
    }
}

/// Convenience used by tools and the shipper: all `Arc<dyn ObjectStore>` users share this alias.
pub type DynStore = Arc<dyn ObjectStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in ["a", "a/b", "01H/chunks/000001", "meta.json", "a..b/c"] {
            assert!(validate_key(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/..", ".", "a/./b", "a\0b", "a\\b",
        ] {
            let err = validate_key(bad).expect_err(bad);
            assert!(
                matches!(err, BucketError::InvalidKey { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn prefixes_are_validated() {
        for ok in ["", "a/", "a", "01H", "a/b/"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["/", "/a", "../", "a//", "a/../", "a\\b"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    fn e(key: &str) -> ListEntry {
        ListEntry {
            key: key.to_string(),
            size: 1,
            last_modified: None,
        }
    }

    #[test]
    fn grouping_matches_s3() {
        let keys = [
            "b/meta.json",
            "a/x/y",
            "a/z",
            "top",
            "b/chunks/000001",
            "ab",
        ];
        let r = group_by_delimiter(keys.iter().map(|k| e(k)), "", Some("/"));
        let objs: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(objs, ["ab", "top"]);
        assert_eq!(r.common_prefixes, ["a/", "b/"]);

        let r = group_by_delimiter(keys.iter().map(|k| e(k)), "a", Some("/"));
        assert_eq!(r.common_prefixes, ["a/"]);
        assert_eq!(r.objects.len(), 1);
        assert_eq!(r.objects[0].key, "ab");

        let r = group_by_delimiter(keys.iter().map(|k| e(k)), "b/", None);
        let objs: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(objs, ["b/chunks/000001", "b/meta.json"]);
        assert!(r.common_prefixes.is_empty());
    }

    #[test]
    fn range_end_is_inclusive_and_overflow_safe() {
        assert_eq!(inclusive_range_end(0, 1), Some(0));
        assert_eq!(inclusive_range_end(10, 5), Some(14));
        assert_eq!(inclusive_range_end(u64::MAX, 2), None);
    }
}
