//! Block compaction: merges N blocks into one new block. Pure planning helpers (the merged
//! meta, whether a series' chunks need re-encoding, re-cutting samples into 120-sample
//! chunks) are kept apart from the I/O driver `compact_blocks`, which streams a k-way,
//! label-ordered merge of the inputs into a `BlockWriter`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::storage::block::{BlockDesc, BlockError, BlockMeta};
use crate::storage::chunkenc::{ChunkError, SeriesIterator, XorAppender, ENCODING_XOR};
use crate::storage::compactor::merge::{merge_blocks, MergeError, MergeMode, MergeOptions};
use crate::storage::model::{EncodedChunk, Sample};

/// Samples per chunk when re-encoding merged data (Prometheus' target).
pub const SAMPLES_PER_CHUNK: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("merging chunks of series {series}: {source}")]
    Chunk { series: String, source: ChunkError },
    #[error("nothing to compact: {0}")]
    Plan(String),
    #[error(transparent)]
    Merge(#[from] MergeError),
}

pub type Result<T> = std::result::Result<T, CompactError>;

/// The meta of the block that merges `parents`: time range union, level = max + 1, sources
/// = sorted union, parents listed; hints and the Thanos section follow upstream rules.
pub fn plan_meta(parents: &[BlockMeta]) -> Result<BlockMeta> {
    let Some(first) = parents.first() else {
        return Err(CompactError::Plan("no parent blocks".into()));
    };
    let placeholder = ulid::Ulid::nil();
    let mut meta = BlockMeta::new(placeholder, first.min_time, first.max_time);
    let mut sources: BTreeSet<ulid::Ulid> = BTreeSet::new();
    let mut level = 0;
    for p in parents {
        meta.min_time = meta.min_time.min(p.min_time);
        meta.max_time = meta.max_time.max(p.max_time);
        level = level.max(p.compaction.level);
        if p.compaction.sources.is_empty() {
            sources.insert(p.ulid);
        }
        sources.extend(p.compaction.sources.iter().copied());
        meta.compaction.parents.push(BlockDesc {
            ulid: p.ulid,
            min_time: p.min_time,
            max_time: p.max_time,
        });
    }
    meta.compaction.level = level + 1;
    meta.compaction.sources = sources.into_iter().collect();
    // `from-out-of-order` survives only if every input has it; the others if any has them.
    let mut hints: BTreeSet<String> = BTreeSet::new();
    for p in parents {
        for h in &p.compaction.hints {
            if h != "from-out-of-order" {
                hints.insert(h.clone());
            }
        }
    }
    if parents
        .iter()
        .all(|p| p.compaction.hints.iter().any(|h| h == "from-out-of-order"))
    {
        hints.insert("from-out-of-order".into());
    }
    meta.compaction.hints = hints.into_iter().collect();
    // Thanos blocks of one stream share labels and resolution: keep them, mark the source.
    if let Some(t) = &first.thanos {
        if parents.iter().all(|p| {
            p.thanos
                .as_ref()
                .is_some_and(|o| o.labels == t.labels && o.downsample == t.downsample)
        }) {
            let mut nt = t.clone();
            nt.source = "compactor".into();
            nt.files.clear();
            nt.segment_files.clear();
            nt.upload_time = None;
            meta.thanos = Some(nt);
        }
    }
    Ok(meta)
}

/// True when a series' chunks are time-ordered and disjoint, so they can be copied verbatim.
pub fn chunks_disjoint(chunks: &[EncodedChunk]) -> bool {
    chunks.windows(2).all(|w| w[0].max_time < w[1].min_time)
}

/// Encodes time-ordered samples into chunks of at most `per_chunk` samples.
pub fn cut_chunks(samples: &[Sample], per_chunk: usize) -> Vec<EncodedChunk> {
    let per_chunk = per_chunk.max(1);
    samples
        .chunks(per_chunk)
        .filter_map(|part| {
            let mut a = XorAppender::new();
            for s in part {
                a.append(s.t, s.v);
            }
            a.to_encoded()
        })
        .collect()
}

/// The chunks a merged series gets in the output: verbatim when disjoint, otherwise merged
/// sample by sample (duplicates collapse, the later chunk in the list wins) and re-cut.
pub fn merge_series_chunks(
    chunks: Vec<EncodedChunk>,
) -> std::result::Result<Vec<EncodedChunk>, ChunkError> {
    let mut sorted = chunks;
    sorted.sort_by_key(|c| c.min_time);
    if chunks_disjoint(&sorted) {
        return Ok(sorted);
    }
    // Only XOR can be merged sample-wise; SeriesIterator rejects anything else.
    let mut it = SeriesIterator::new(sorted);
    let mut out = Vec::new();
    let mut app = XorAppender::new();
    while let Some(s) = it.next()? {
        if app.num_samples() >= SAMPLES_PER_CHUNK {
            out.extend(app.to_encoded());
            app = XorAppender::new();
        }
        app.append(s.t, s.v);
    }
    out.extend(app.to_encoded());
    debug_assert!(out.iter().all(|c| c.encoding == ENCODING_XOR));
    Ok(out)
}

/// Merges the blocks in `block_dirs` into a new block under `out_parent`. Returns `None` when
/// the inputs hold no series at all (nothing is written, as upstream). The streaming merge is
/// `compactor::merge::merge_blocks` (level mode, no memory budget, `plan_meta`'s Thanos rule).
pub fn compact_blocks(block_dirs: &[PathBuf], out_parent: &Path) -> Result<Option<BlockMeta>> {
    let opts = MergeOptions {
        mode: MergeMode::Concat,
        stream: None,
        memory_budget_bytes: 0,
    };
    Ok(merge_blocks(block_dirs, out_parent, &opts, &mut |_, _| {})?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    fn chunk(samples: &[(i64, f64)]) -> EncodedChunk {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        a.to_encoded().unwrap_or_else(|| panic!("empty test chunk"))
    }

    #[test]
    fn plan_meta_levels_sources_parents() {
        let (a, b, c) = (
            Ulid::from_parts(1, 1),
            Ulid::from_parts(2, 2),
            Ulid::from_parts(3, 3),
        );
        let mut m1 = BlockMeta::new(a, 0, 100);
        m1.compaction.hints = vec!["from-out-of-order".into()];
        let mut m2 = BlockMeta::new(b, 100, 200);
        m2.compaction.level = 2;
        m2.compaction.sources = vec![c, b];
        let m = plan_meta(&[m2.clone(), m1.clone()]).unwrap();
        assert_eq!((m.min_time, m.max_time, m.compaction.level), (0, 200, 3));
        assert_eq!(m.compaction.sources, vec![a, b, c]);
        assert_eq!(m.compaction.parents.len(), 2);
        assert!(m.compaction.hints.is_empty());
        assert!(plan_meta(&[]).is_err());
    }

    #[test]
    fn overlapping_chunks_are_merged_and_recut() {
        let a: Vec<(i64, f64)> = (0..200).map(|i| (i * 10, i as f64)).collect();
        let b: Vec<(i64, f64)> = (100..300).map(|i| (i * 10, i as f64)).collect();
        let out = merge_series_chunks(vec![chunk(&a), chunk(&b)]).unwrap();
        let counts: Vec<usize> = out
            .iter()
            .map(|c| u16::from_be_bytes([c.data[0], c.data[1]]) as usize)
            .collect();
        assert_eq!(counts, vec![120, 120, 60]);
        assert!(chunks_disjoint(&out));
        let disjoint = vec![chunk(&[(0, 1.0)]), chunk(&[(5, 1.0)])];
        assert_eq!(merge_series_chunks(disjoint.clone()).unwrap(), disjoint);
        assert_eq!(
            cut_chunks(&[Sample { t: 1, v: 1.0 }, Sample { t: 2, v: 2.0 }], 1).len(),
            2
        );
    }
}
