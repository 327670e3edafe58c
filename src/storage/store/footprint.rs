//! What each series costs in the bucket, for the cluster-wide cardinality report: for every
//! served block overlapping a time range, the series matching the selectors (external labels
//! attached) with the stored bytes of their chunks overlapping the range. Only index data is
//! read (postings of all series and their series entries, through the shared cache), never a
//! chunk: a chunk's stored size is the distance from its reference to the next chunk
//! reference of the same segment (or the segment's end), which is exact because every
//! series of the block is read, and counts the whole record (length, encoding, data, CRC).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use ulid::Ulid;

use super::{BucketBlock, BucketStore, Result};
use crate::storage::model::{matches_all, Labels, Matcher};

/// One series of one block and the stored bytes of its chunks in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSeriesBytes {
    /// The series labels with the block's external labels.
    pub labels: Labels,
    pub bytes: u64,
    pub chunks: u64,
}

/// The matching series of one block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockFootprint {
    pub ulid: Ulid,
    pub resolution: i64,
    pub series: Vec<BlockSeriesBytes>,
}

/// Footprints of the blocks that answered, plus one warning per block that failed.
#[derive(Clone, Debug, Default)]
pub struct FootprintResult {
    pub blocks: Vec<BlockFootprint>,
    pub warnings: Vec<String>,
}

/// Does a series match any selector (every series when there are none)?
fn selected(selectors: &[Vec<Matcher>], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|m| matches_all(m, labels))
}

/// Stored size of each chunk reference, given every reference of the block: the distance to
/// the next reference in the same segment, or to the segment's end.
pub(crate) fn chunk_sizes(
    refs: &BTreeSet<u64>,
    segment_size: impl Fn(usize) -> Option<u64>,
) -> HashMap<u64, u64> {
    let mut out = HashMap::with_capacity(refs.len());
    let mut iter = refs.iter().peekable();
    while let Some(&r) = iter.next() {
        let pos = (r >> 32) as usize;
        let off = r & 0xffff_ffff;
        let end = match iter.peek() {
            Some(&&n) if (n >> 32) as usize == pos => n & 0xffff_ffff,
            _ => segment_size(pos).unwrap_or(off),
        };
        out.insert(r, end.saturating_sub(off));
    }
    out
}

impl BucketBlock {
    /// The matching series of this block with chunks in `[mint, maxt]` and their bytes.
    pub async fn footprint(
        &self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<BlockSeriesBytes>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        // A block whose external labels rule out every selector is not read at all.
        if !selectors.is_empty() && !selectors.iter().any(|s| self.split_external(s).0) {
            return Ok(Vec::new());
        }
        let h = self.header().await?;
        let ids = self.postings_for(&h, &[]).await?;
        let entries = self.fetch_series(&h, &ids).await?;
        let refs: BTreeSet<u64> = entries
            .iter()
            .flat_map(|e| e.chunks.iter().map(|c| c.reference))
            .collect();
        let sizes = chunk_sizes(&refs, |pos| self.segment_size(pos));
        let mut symbols = HashMap::new();
        let mut out = Vec::new();
        for raw in &entries {
            let mut bytes = 0u64;
            let mut chunks = 0u64;
            for c in raw
                .chunks
                .iter()
                .filter(|m| m.min_time <= maxt && m.max_time >= mint)
            {
                bytes += sizes.get(&c.reference).copied().unwrap_or(0);
                chunks += 1;
            }
            if chunks == 0 {
                continue;
            }
            let labels = self.with_external(self.resolve_labels(&h, raw, &mut symbols)?);
            if selected(selectors, &labels) {
                out.push(BlockSeriesBytes {
                    labels,
                    bytes,
                    chunks,
                });
            }
        }
        Ok(out)
    }
}

impl BucketStore {
    /// Footprints of every served block (all resolutions) overlapping `[mint, maxt]`; a block
    /// that fails becomes a warning and the others still answer.
    pub async fn footprints(
        &self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        concurrency: usize,
    ) -> FootprintResult {
        let blocks: Vec<Arc<BucketBlock>> = self.blocks_overlapping(mint, maxt);
        let mut results = stream::iter(blocks)
            .map(|b| async move {
                let r = b.footprint(selectors, mint, maxt).await;
                (b, r)
            })
            .buffer_unordered(concurrency.max(1));
        let mut out = FootprintResult::default();
        while let Some((b, r)) = results.next().await {
            match r {
                Ok(series) => out.blocks.push(BlockFootprint {
                    ulid: b.ulid(),
                    resolution: b.resolution(),
                    series,
                }),
                Err(e) => out.warnings.push(format!("block {}: {e}", b.ulid())),
            }
        }
        out.blocks.sort_by_key(|b| b.ulid);
        out.warnings.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_ends_where_the_next_one_of_its_segment_starts() {
        let seg = |pos: u64, off: u64| (pos << 32) | off;
        let refs: BTreeSet<u64> = [seg(0, 8), seg(0, 100), seg(0, 250), seg(1, 8), seg(1, 40)]
            .into_iter()
            .collect();
        let sizes = chunk_sizes(&refs, |pos| [300, 90].get(pos).copied());
        assert_eq!(sizes[&seg(0, 8)], 92);
        assert_eq!(sizes[&seg(0, 100)], 150);
        assert_eq!(
            sizes[&seg(0, 250)],
            50,
            "the last chunk runs to the segment's end"
        );
        assert_eq!(sizes[&seg(1, 8)], 32);
        assert_eq!(sizes[&seg(1, 40)], 50);
    }

    /// One synthetic block in a memory bucket, served by a store.
    async fn served_block(
        spec: &super::super::synth::SynthSpec,
    ) -> (tempfile::TempDir, BucketStore, u64) {
        use crate::storage::bucket::memory::MemoryStore;
        use crate::storage::bucket::{DynStore, ObjectStore};
        let dir = tempfile::tempdir().unwrap();
        let meta = super::super::synth::write_block(dir.path(), spec).unwrap();
        let bucket = Arc::new(MemoryStore::new());
        let block_dir = dir.path().join(meta.ulid.to_string());
        let mut chunk_bytes = 0;
        for seg in std::fs::read_dir(block_dir.join("chunks")).unwrap() {
            let seg = seg.unwrap();
            let name = seg.file_name().to_string_lossy().to_string();
            chunk_bytes +=
                seg.metadata().unwrap().len() - crate::storage::block::chunks::SEGMENT_HEADER_LEN;
            bucket
                .put_file(&format!("{}/chunks/{name}", meta.ulid), &seg.path())
                .await
                .unwrap();
        }
        for f in ["index", "meta.json"] {
            bucket
                .put_file(&format!("{}/{f}", meta.ulid), &block_dir.join(f))
                .await
                .unwrap();
        }
        let cfg = super::super::StoreConfig::new(dir.path().join("cache"), "n1");
        let store = BucketStore::new(bucket as DynStore, cfg).unwrap();
        store.sync(&|_| true).await.unwrap();
        (dir, store, chunk_bytes)
    }

    #[tokio::test]
    async fn every_chunk_record_of_a_block_is_counted_once() {
        let mut spec = super::super::synth::SynthSpec::new(40, 0);
        spec.metrics = 4;
        spec.external_labels = [("replica".to_string(), "a".to_string())].into();
        let (_dir, store, chunk_bytes) = served_block(&spec).await;
        let all = store.footprints(&[], 0, i64::MAX, 2).await;
        assert!(all.warnings.is_empty(), "{:?}", all.warnings);
        assert_eq!(all.blocks.len(), 1);
        let series = &all.blocks[0].series;
        assert_eq!(series.len(), 40);
        assert!(series.iter().all(|s| s.labels.get("replica") == Some("a")));
        let total: u64 = series.iter().map(|s| s.bytes).sum();
        assert_eq!(total, chunk_bytes, "the chunk records fill the segments");

        let one = vec![Matcher::equal("__name__", "metric_001")];
        let some = store.footprints(&[one], 0, i64::MAX, 2).await;
        assert_eq!(some.blocks[0].series.len(), 10);
        let other = vec![Matcher::equal("replica", "b")];
        let none = store.footprints(&[other], 0, i64::MAX, 2).await;
        assert!(none.blocks[0].series.is_empty());
        let later = store.footprints(&[], 3 * 3600 * 1000, i64::MAX, 2).await;
        assert!(later.blocks.is_empty());
    }

    #[test]
    fn no_selector_selects_everything() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert!(selected(&[], &l));
        assert!(selected(
            &[
                vec![Matcher::equal("job", "b")],
                vec![Matcher::equal("job", "a")]
            ],
            &l
        ));
        assert!(!selected(&[vec![Matcher::equal("job", "b")]], &l));
    }
}
