//! Bucket sync for the store gateway: one listing of the bucket (`blocks::list_blocks`) yields
//! every block directory, its chunk segments and whether it has `meta.json` and a deletion
//! mark. Metas are immutable, so each is read once (`blocks::read_meta`) and kept; the rules of
//! the block catalogue decide the rest: directories without `meta.json` (partial or in-flight
//! uploads) are skipped, and blocks whose deletion mark is due (older than the configured
//! delay) are dropped. A deletion mark that cannot be read or parsed is logged and ignored, so
//! the block keeps being served rather than vanishing on a bad file. Blocks whose every source
//! is covered by another loadable block's `compaction.sources` (the inputs of a compaction
//! whose output is in, Thanos's deduplicate filter, `compactor::plan::hidden_by_sources`) are
//! hidden at once, so a query during or after a compaction never reads the same samples
//! twice. Which of the loadable
//! blocks this node serves is not decided here but by the caller (`BucketStore::sync`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use ulid::Ulid;

use super::{Result, StoreError};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::blocks::{self, BlocksError, DeletionMark, SegmentObject};
use crate::storage::bucket::ObjectStore;
use crate::storage::compactor::plan::hidden_by_sources;

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
    /// Blocks hidden because a newer block holds all their sources.
    pub duplicates: Vec<Ulid>,
    /// The hidden blocks themselves: the store serves them on while the block that covers
    /// them cannot be loaded, so hiding never loses data.
    pub hidden: BTreeMap<Ulid, SyncedBlock>,
}

/// Keeps the parsed metas between passes (they never change once uploaded).
#[derive(Default)]
pub struct MetaSyncer {
    metas: BTreeMap<Ulid, BlockMeta>,
    /// Parsed deletion marks.
    marks: BTreeMap<Ulid, DeletionMark>,
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
        let dirs = blocks::list_blocks(store)
            .await
            .map_err(|source| StoreError::Bucket {
                key: "<bucket listing>".into(),
                source,
            })?;
        self.metas
            .retain(|u, _| dirs.get(u).is_some_and(|d| d.has_meta));
        self.marks
            .retain(|u, _| dirs.get(u).is_some_and(|d| d.has_deletion_mark));

        let mut state = SyncState::default();
        let need_meta: Vec<Ulid> = dirs
            .values()
            .filter(|d| d.has_meta && !self.metas.contains_key(&d.ulid))
            .map(|d| d.ulid)
            .collect();
        let need_mark: Vec<Ulid> = dirs
            .values()
            .filter(|d| d.has_deletion_mark && !self.marks.contains_key(&d.ulid))
            .map(|d| d.ulid)
            .collect();
        let fetched_metas: Vec<(Ulid, blocks::Result<BlockMeta>)> = stream::iter(need_meta)
            .map(|u| async move { (u, blocks::read_meta(store, u).await) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (u, r) in fetched_metas {
            match r {
                Ok(m) => {
                    self.metas.insert(u, m);
                }
                Err(e) => state.invalid.push((u, e.to_string())),
            }
        }
        let fetched_marks: Vec<(Ulid, Option<DeletionMark>)> = stream::iter(need_mark)
            .map(|u| async move { (u, fetch_mark(store, u).await) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (u, m) in fetched_marks {
            if let Some(m) = m {
                self.marks.insert(u, m);
            }
        }

        for (ulid, dir) in dirs {
            if dir.is_partial() {
                state.partial.push(ulid);
                continue;
            }
            let Some(meta) = self.metas.get(&ulid) else {
                continue;
            };
            if self
                .marks
                .get(&ulid)
                .is_some_and(|m| m.is_due(deletion_delay, now))
            {
                state.deleted.push(ulid);
                continue;
            }
            state.blocks.insert(
                ulid,
                SyncedBlock {
                    meta: meta.clone(),
                    index_size: dir.index_size,
                    segments: dir.segments,
                },
            );
        }
        let metas: Vec<BlockMeta> = state.blocks.values().map(|b| b.meta.clone()).collect();
        for ulid in hidden_by_sources(&metas) {
            if let Some(b) = state.blocks.remove(&ulid) {
                state.hidden.insert(ulid, b);
            }
            state.duplicates.push(ulid);
        }
        Ok(state)
    }
}

/// The deletion mark of a block; one that cannot be read or parsed is logged and ignored (the
/// block keeps being served rather than vanishing on a bad file).
async fn fetch_mark(store: &dyn ObjectStore, ulid: Ulid) -> Option<DeletionMark> {
    match blocks::read_deletion_mark(store, ulid).await {
        Ok(m) => m,
        Err(e @ BlocksError::Invalid { .. }) => {
            tracing::warn!(block = %ulid, error = %e, "ignoring unparsable deletion mark");
            None
        }
        Err(e) => {
            tracing::warn!(block = %ulid, error = %e, "cannot read deletion mark");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;
    use bytes::Bytes;
    use std::time::UNIX_EPOCH;

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

    #[tokio::test]
    async fn inputs_of_a_compaction_are_hidden_once_its_output_is_in() {
        let store = MemoryStore::new();
        let (a, b, out) = (Ulid::new(), Ulid::new(), Ulid::new());
        put(&store, &format!("{a}/meta.json"), meta_json(a)).await;
        let mut mb = BlockMeta::new(b, 7_200_000, 14_400_000);
        mb.compaction.sources = vec![b];
        put(&store, &format!("{b}/meta.json"), mb.to_json().unwrap()).await;
        let mut s = MetaSyncer::new(2);
        let st = s
            .sync(&store, Duration::ZERO, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(st.blocks.len(), 2, "no output yet: both inputs served");
        // The compactor's output lists both inputs as sources: they must vanish at once.
        let mut mo = BlockMeta::new(out, 0, 14_400_000);
        mo.compaction.level = 2;
        mo.compaction.sources = vec![a, b];
        put(&store, &format!("{out}/meta.json"), mo.to_json().unwrap()).await;
        let st = s
            .sync(&store, Duration::ZERO, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(st.blocks.keys().copied().collect::<Vec<_>>(), vec![out]);
        let mut hidden = st.duplicates.clone();
        hidden.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(hidden, want);
    }
}
