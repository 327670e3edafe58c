//! Configuration written through the API (scrape jobs, rule groups): where it is kept and how
//! every node comes to use it. Documents live in the bucket under `strata/config/<kind>/`, one
//! object per document, so they survive restarts of every node and need no node of their own.
//! A node that accepts a write stores it first and only then applies it; every node re-reads
//! its kinds at start-up, whenever a peer says something changed (`SyncSignal`), and on a
//! timer as a backstop for a missed signal, and hands the whole set to the part that applies
//! it only when the set differs from the last one applied. The bucket is the only truth: a
//! node that missed a write converges on the next read, and two nodes never disagree for
//! longer than one read interval.
//!
//! Names are path segments made of the caller's strings (job names, namespaces, group
//! names); each segment is percent-encoded so that any name, `/` and `..` included, is one
//! valid key segment and decodes back to itself.

pub mod scrape;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::storage::bucket::ObjectStore;

/// Where API-written documents live in the bucket.
pub const PREFIX: &str = "strata/config/";
const SUFFIX: &str = ".yaml";

#[derive(Debug, thiserror::Error)]
pub enum ApiConfigError {
    #[error("bucket {op} of {key}: {source}")]
    Bucket {
        op: &'static str,
        key: String,
        #[source]
        source: crate::storage::bucket::BucketError,
    },
    #[error("document {key} is not UTF-8")]
    NotText { key: String },
}

pub type Result<T> = std::result::Result<T, ApiConfigError>;

/// How often every node re-reads the API configs even without a signal.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// The node's API-config stores and the signal that wakes its syncers.
#[derive(Clone, Debug)]
pub struct ApiConfigs {
    pub scrape: DocStore,
    pub signal: SyncSignal,
}

impl ApiConfigs {
    pub fn new(bucket: Arc<dyn ObjectStore>) -> Self {
        ApiConfigs {
            scrape: DocStore::new(bucket, scrape::KIND),
            signal: SyncSignal::default(),
        }
    }
}

/// Every document of one kind: name segments → text.
pub type Documents = BTreeMap<Vec<String>, String>;

/// The documents of one kind (`scrape_configs`, `rules`) in the bucket.
#[derive(Clone, Debug)]
pub struct DocStore {
    bucket: Arc<dyn ObjectStore>,
    kind: &'static str,
}

impl DocStore {
    pub fn new(bucket: Arc<dyn ObjectStore>, kind: &'static str) -> Self {
        DocStore { bucket, kind }
    }

    fn key(&self, name: &[&str]) -> String {
        let parts: Vec<String> = name.iter().map(|s| encode_segment(s)).collect();
        format!("{PREFIX}{}/{}{SUFFIX}", self.kind, parts.join("/"))
    }

    /// Stores (or replaces) one document.
    pub async fn put(&self, name: &[&str], text: &str) -> Result<()> {
        let key = self.key(name);
        self.bucket
            .put_bytes(&key, Bytes::from(text.to_string()))
            .await
            .map_err(|source| ApiConfigError::Bucket {
                op: "write",
                key,
                source,
            })
    }

    /// Removes one document; removing a missing one succeeds.
    pub async fn delete(&self, name: &[&str]) -> Result<()> {
        let key = self.key(name);
        self.bucket
            .delete(&key)
            .await
            .map_err(|source| ApiConfigError::Bucket {
                op: "delete",
                key,
                source,
            })
    }

    /// Every document of the kind. Objects whose names do not decode are skipped: they were
    /// not written by this module.
    pub async fn load_all(&self) -> Result<Documents> {
        let prefix = format!("{PREFIX}{}/", self.kind);
        let listed =
            self.bucket
                .list(&prefix, None)
                .await
                .map_err(|source| ApiConfigError::Bucket {
                    op: "list",
                    key: prefix.clone(),
                    source,
                })?;
        let mut out = Documents::new();
        for obj in listed.objects {
            let Some(name) = obj
                .key
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(SUFFIX))
                .and_then(decode_name)
            else {
                continue;
            };
            let data = match self.bucket.get(&obj.key).await {
                Ok(d) => d,
                // Deleted between the listing and the read.
                Err(e) if e.is_not_found() => continue,
                Err(source) => {
                    return Err(ApiConfigError::Bucket {
                        op: "read",
                        key: obj.key,
                        source,
                    })
                }
            };
            let text = String::from_utf8(data.to_vec())
                .map_err(|_| ApiConfigError::NotText { key: obj.key })?;
            out.insert(name, text);
        }
        Ok(out)
    }
}

/// Percent-encodes every byte outside `[A-Za-z0-9_-]` (so `.`, `/` and `%` too): the result
/// is one key segment that is never empty, `.` or `..`.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    if s.is_empty() {
        // An empty name still needs a non-empty segment; `%` alone never decodes otherwise.
        return "%".to_string();
    }
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_segment`]; `None` for anything it cannot have produced.
pub fn decode_segment(s: &str) -> Option<String> {
    if s == "%" {
        return Some(String::new());
    }
    percent_decode(s)
}

/// Go's `url.PathUnescape`: `%XX` decoded, anything else as it is; `None` for a bad escape or
/// a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn decode_name(rest: &str) -> Option<Vec<String>> {
    rest.split('/').map(decode_segment).collect()
}

/// Wakes every syncer of this node (a write here, or a peer's word that it wrote). A watch
/// channel, so a signal that arrives while a syncer is busy reading is not lost: the syncer
/// sees the change when it next waits.
#[derive(Clone, Debug)]
pub struct SyncSignal(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for SyncSignal {
    fn default() -> Self {
        SyncSignal(Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl SyncSignal {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver for one syncer.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Applies a kind's whole set of documents; `Err` leaves the previous set in force and is
/// logged (a document another node accepted is valid, so this means a version mismatch).
pub type Apply = Arc<dyn Fn(&Documents) -> std::result::Result<(), String> + Send + Sync>;

/// Reads one kind from the bucket now and applies it when it changed since `last`.
pub async fn sync_once(
    store: &DocStore,
    last: &mut Option<Documents>,
    apply: &Apply,
) -> Result<()> {
    let docs = store.load_all().await?;
    if last.as_ref() == Some(&docs) {
        return Ok(());
    }
    match apply(&docs) {
        Ok(()) => {
            tracing::info!(
                kind = store.kind,
                documents = docs.len(),
                "applied API config"
            );
        }
        Err(e) => tracing::error!(kind = store.kind, error = %e, "cannot apply API config"),
    }
    *last = Some(docs);
    Ok(())
}

/// Keeps one kind in sync until `cancel`: a read at start, then on every signal and every
/// `interval`.
pub async fn run_syncer(
    store: DocStore,
    apply: Apply,
    signal: SyncSignal,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut last = None;
    let mut signals = signal.subscribe();
    loop {
        signals.mark_unchanged();
        if let Err(e) = sync_once(&store, &mut last, &apply).await {
            tracing::warn!(kind = store.kind, error = %e, "cannot read API config");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = signals.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;

    #[test]
    fn segments_round_trip_and_are_valid_keys() {
        for name in [
            "node", "a/b", "..", ".", "", "job name", "%41", "ü-x_y", "a.b",
        ] {
            let enc = encode_segment(name);
            assert_eq!(decode_segment(&enc).as_deref(), Some(name), "{enc}");
            assert!(!enc.contains('/') && enc != "." && enc != ".." && !enc.is_empty());
            crate::storage::bucket::validate_key(&format!("{PREFIX}x/{enc}.yaml")).unwrap();
        }
        assert_eq!(decode_segment("%4"), None);
        assert_eq!(decode_segment("%zz"), None);
    }

    #[tokio::test]
    async fn documents_are_stored_listed_and_deleted_by_name() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let store = DocStore::new(bucket.clone(), "rules");
        store.put(&["ns/1", "g"], "a").await.unwrap();
        store.put(&["ns/1", "h"], "b").await.unwrap();
        DocStore::new(bucket.clone(), "scrape_configs")
            .put(&["job"], "c")
            .await
            .unwrap();
        let all = store.load_all().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&vec!["ns/1".to_string(), "g".to_string()]], "a");
        store.delete(&["ns/1", "g"]).await.unwrap();
        store.delete(&["missing"]).await.unwrap();
        let all = store.load_all().await.unwrap();
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            vec![&vec!["ns/1".to_string(), "h".to_string()]]
        );
    }

    #[tokio::test]
    async fn a_sync_applies_only_changed_sets() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let store = DocStore::new(bucket, "scrape_configs");
        let applied = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = applied.clone();
        let apply: Apply = Arc::new(move |d: &Documents| {
            seen.lock().push(d.len());
            Ok(())
        });
        let mut last = None;
        sync_once(&store, &mut last, &apply).await.unwrap();
        sync_once(&store, &mut last, &apply).await.unwrap();
        store.put(&["j"], "x").await.unwrap();
        sync_once(&store, &mut last, &apply).await.unwrap();
        sync_once(&store, &mut last, &apply).await.unwrap();
        assert_eq!(*applied.lock(), vec![0, 1]);
    }
}
