//! Bucket sync for the store gateway: one listing of the bucket yields every block directory,
//! its `meta.json`, its chunk segments and its deletion mark. Metas are immutable, so each is
//! fetched once and kept; blocks without `meta.json` (partial or in-flight uploads) are skipped,
//! and blocks whose `deletion-mark.json` is older than the configured delay are dropped. Which
//! of these blocks this node serves is decided by the caller (`BucketStore::sync`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use serde::Deserialize;
use ulid::Ulid;

use super::{Result, StoreError};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::ObjectStore;

pub const META_FILE: &str = "meta.json";
pub const DELETION_MARK_FILE: &str = "deletion-mark.json";

/// One chunk segment object of a block, in segment order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentObject {
    pub key: String,
    pub size: u64,
}

/// A block the sync found loadable.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncedBlock {
    pub meta: BlockMeta,
    /// Size of `<ULID>/index`, when listed.
    pub index_size: Option<u64>,
    pub segments: Vec<SegmentObject>,
}

/// Outcome of one sync pass.
#[derive(Clone, Debug, Default)]
pub struct SyncState {
    pub blocks: BTreeMap<Ulid, SyncedBlock>,
    /// Directories without `meta.json`.
    pub partial: Vec<Ulid>,
    /// Blocks dropped because their deletion mark is older than the delay.
    pub deleted: Vec<Ulid>,
    /// Blocks whose meta.json could not be read or parsed, with the reason.
    pub invalid: Vec<(Ulid, String)>,
}

#[derive(Deserialize)]
struct DeletionMark {
    #[serde(default)]
    deletion_time: i64,
}

#[derive(Default)]
struct Listing {
    has_meta: bool,
    has_mark: bool,
    index_size: Option<u64>,
    /// (segment sequence number, key, size)
    segments: Vec<(u64, String, u64)>,
}

/// Keeps the parsed metas between passes (they never change once uploaded).
#[derive(Default)]
pub struct MetaSyncer {
    metas: BTreeMap<Ulid, BlockMeta>,
    /// Parsed deletion times (unix seconds) of marked blocks.
    marks: BTreeMap<Ulid, i64>,
    concurrency: usize,
}

impl MetaSyncer {
    pub fn new(concurrency: usize) -> Self {
        MetaSyncer {
            concurrency: concurrency.max(1),
            ..Default::default()
        }
    }

    /// Lists the bucket and returns the current block set. `deletion_delay` is how long a block
    /// marked for deletion keeps being served (Thanos `--ignore-deletion-marks-delay`).
    pub async fn sync(
        &mut self,
        store: &dyn ObjectStore,
        deletion_delay: Duration,
        now: SystemTime,
    ) -> Result<SyncState> {
        let listing = store
            .list("", None)
            .await
            .map_err(|source| StoreError::Bucket {
                key: "<bucket listing>".into(),
                source,
            })?;
        let mut dirs: BTreeMap<Ulid, Listing> = BTreeMap::new();
        for obj in listing.objects {
            let Some((dir, rest)) = obj.key.split_once('/') else {
                continue;
            };
            let Ok(ulid) = Ulid::from_string(dir) else {
                continue;
            };
            let l = dirs.entry(ulid).or_default();
            match rest {
                META_FILE => l.has_meta = true,
                DELETION_MARK_FILE => l.has_mark = true,
                "index" => l.index_size = Some(obj.size),
                _ => {
                    if let Some(seg) = rest.strip_prefix("chunks/") {
                        if let Ok(seq) = seg.parse::<u64>() {
                            l.segments.push((seq, obj.key.clone(), obj.size));
                        }
                    }
                }
            }
        }
        self.metas
            .retain(|u, _| dirs.get(u).is_some_and(|l| l.has_meta));
        self.marks
            .retain(|u, _| dirs.get(u).is_some_and(|l| l.has_mark));

        let mut state = SyncState::default();
        let need_meta: Vec<Ulid> = dirs
            .iter()
            .filter(|(u, l)| l.has_meta && !self.metas.contains_key(u))
            .map(|(u, _)| *u)
            .collect();
        let need_mark: Vec<Ulid> = dirs
            .iter()
            .filter(|(u, l)| l.has_mark && !self.marks.contains_key(u))
            .map(|(u, _)| *u)
            .collect();
        let fetched_metas: Vec<(Ulid, std::result::Result<BlockMeta, String>)> =
            stream::iter(need_meta)
                .map(|u| async move { (u, fetch_meta(store, u).await) })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        for (u, r) in fetched_metas {
            match r {
                Ok(m) => {
                    self.metas.insert(u, m);
                }
                Err(reason) => state.invalid.push((u, reason)),
            }
        }
        let fetched_marks: Vec<(Ulid, Option<i64>)> = stream::iter(need_mark)
            .map(|u| async move { (u, fetch_mark(store, u).await) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (u, t) in fetched_marks {
            if let Some(t) = t {
                self.marks.insert(u, t);
            }
        }

        let now_s = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        for (ulid, l) in dirs {
            if !l.has_meta {
                state.partial.push(ulid);
                continue;
            }
            let Some(meta) = self.metas.get(&ulid) else {
                continue;
            };
            if let Some(&t) = self.marks.get(&ulid) {
                if now_s.saturating_sub(t) >= deletion_delay.as_secs() as i64 {
                    state.deleted.push(ulid);
                    continue;
                }
            }
            let mut segs = l.segments;
            segs.sort();
            state.blocks.insert(
                ulid,
                SyncedBlock {
                    meta: meta.clone(),
                    index_size: l.index_size,
                    segments: segs
                        .into_iter()
                        .map(|(_, key, size)| SegmentObject { key, size })
                        .collect(),
                },
            );
        }
        Ok(state)
    }
}

async fn fetch_meta(store: &dyn ObjectStore, ulid: Ulid) -> std::result::Result<BlockMeta, String> {
    let key = format!("{ulid}/{META_FILE}");
    let bytes = store.get(&key).await.map_err(|e| e.to_string())?;
    parse_meta(&bytes, ulid).map_err(|e| format!("{key}: {e}"))
}

/// Parses and validates a bucket `meta.json` for block `ulid`.
pub fn parse_meta(bytes: &[u8], ulid: Ulid) -> std::result::Result<BlockMeta, String> {
    let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if meta.version != 1 {
        return Err(format!("unsupported meta.json version {}", meta.version));
    }
    if meta.ulid != ulid {
        return Err(format!(
            "meta.json names block {} but lives under {ulid}",
            meta.ulid
        ));
    }
    if let Some(t) = &meta.thanos {
        if t.version > 1 {
            return Err(format!("unsupported thanos meta version {}", t.version));
        }
    }
    if meta.min_time > meta.max_time {
        return Err(format!(
            "minTime {} after maxTime {}",
            meta.min_time, meta.max_time
        ));
    }
    Ok(meta)
}

/// The deletion time of a block's mark; a mark that cannot be read or parsed is logged and
/// ignored (the block keeps being served rather than vanishing on a bad file).
async fn fetch_mark(store: &dyn ObjectStore, ulid: Ulid) -> Option<i64> {
    let key = format!("{ulid}/{DELETION_MARK_FILE}");
    match store.get(&key).await {
        Ok(b) => match serde_json::from_slice::<DeletionMark>(&b) {
            Ok(m) => Some(m.deletion_time),
            Err(e) => {
                tracing::warn!(%key, error = %e, "ignoring unparsable deletion mark");
                None
            }
        },
        Err(e) => {
            tracing::warn!(%key, error = %e, "cannot read deletion mark");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;
    use bytes::Bytes;

    async fn put(store: &MemoryStore, key: &str, data: Vec<u8>) {
        store.put_bytes(key, Bytes::from(data)).await.unwrap();
    }

    fn meta_json(u: Ulid) -> Vec<u8> {
        BlockMeta::new(u, 0, 7_200_000).to_json().unwrap()
    }

    #[tokio::test]
    async fn skips_partial_and_old_deletion_marks() {
        let store = MemoryStore::new();
        let (a, b, c, d) = (Ulid::new(), Ulid::new(), Ulid::new(), Ulid::new());
        for u in [a, b, c] {
            put(&store, &format!("{u}/meta.json"), meta_json(u)).await;
            put(&store, &format!("{u}/index"), vec![0; 10]).await;
            put(&store, &format!("{u}/chunks/000002"), vec![0; 3]).await;
            put(&store, &format!("{u}/chunks/000001"), vec![0; 5]).await;
        }
        put(&store, &format!("{d}/index"), vec![0; 10]).await;
        put(&store, "debug/metas/x.json", vec![1]).await;
        let now = SystemTime::now();
        let now_s = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let old = format!(
            r#"{{"id":"{b}","version":1,"deletion_time":{}}}"#,
            now_s - 7200
        );
        put(&store, &format!("{b}/deletion-mark.json"), old.into_bytes()).await;
        let fresh = format!(r#"{{"id":"{c}","version":1,"deletion_time":{now_s}}}"#);
        put(
            &store,
            &format!("{c}/deletion-mark.json"),
            fresh.into_bytes(),
        )
        .await;

        let mut s = MetaSyncer::new(4);
        let st = s
            .sync(&store, Duration::from_secs(3600), now)
            .await
            .unwrap();
        assert_eq!(st.blocks.keys().copied().collect::<Vec<_>>(), {
            let mut v = vec![a, c];
            v.sort();
            v
        });
        assert_eq!(st.partial, vec![d]);
        assert_eq!(st.deleted, vec![b]);
        let segs = &st.blocks[&a].segments;
        assert_eq!(segs.len(), 2);
        assert!(segs[0].key.ends_with("000001") && segs[0].size == 5);
        assert_eq!(st.blocks[&a].index_size, Some(10));

        // meta.json deleted first on block deletion: the block disappears on the next pass.
        store.delete(&format!("{a}/meta.json")).await.unwrap();
        let st = s
            .sync(&store, Duration::from_secs(3600), now)
            .await
            .unwrap();
        assert!(!st.blocks.contains_key(&a));
        assert!(st.partial.contains(&a));
    }

    #[tokio::test]
    async fn invalid_meta_is_reported_not_fatal() {
        let store = MemoryStore::new();
        let (a, b) = (Ulid::new(), Ulid::new());
        put(&store, &format!("{a}/meta.json"), b"{not json".to_vec()).await;
        put(&store, &format!("{b}/meta.json"), meta_json(a)).await;
        let mut s = MetaSyncer::new(2);
        let st = s
            .sync(&store, Duration::ZERO, SystemTime::now())
            .await
            .unwrap();
        assert!(st.blocks.is_empty());
        assert_eq!(st.invalid.len(), 2);
    }
}
