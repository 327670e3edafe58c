//! `BlockReader`: opens a persisted block (meta.json, mmapped index and chunk segments,
//! tombstones) and serves it as a `Queryable`: postings-based matcher resolution, chunk
//! pruning on the index's chunk time ranges, and deleted intervals applied on the way out.

use std::fs;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::chunks::ChunkReader;
use super::index::INDEX_FILENAME;
use super::index_reader::IndexReader;
use super::meta::{BlockMeta, META_FILENAME};
use super::postings::postings_for_matchers;
use super::tombstones::{Interval, Tombstones};
use super::writer::TMP_SUFFIX;
use super::{io_err, BlockError, Result};
use crate::storage::chunkenc::{decode_chunk, XorAppender, ENCODING_XOR};
use crate::storage::model::{
    matches_all, EncodedChunk, Matcher, QueryResult, Queryable, QueryableError, SelectHints, Series,
};

/// Below this many candidate series a block is read on the calling thread: splitting costs
/// more than it saves.
pub(super) const PARALLEL_SELECT_MIN_SERIES: usize = 1024;

pub struct BlockReader {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
}

impl BlockReader {
    pub fn open(dir: &Path) -> Result<Self> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join(INDEX_FILENAME))?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(BlockReader {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    pub fn chunk_reader(&self) -> &ChunkReader {
        &self.chunks
    }

    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Total size of index and chunk files in bytes.
    pub fn size(&self) -> u64 {
        self.index.size() + self.chunks.size()
    }

    /// Does the block's `[minTime, maxTime)` meet the inclusive query range?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        mint < self.meta.max_time && maxt >= self.meta.min_time
    }

    /// Series references matching all matchers (every series when `matchers` is empty).
    pub fn series_refs(&self, matchers: &[Matcher]) -> Result<Vec<u32>> {
        if matchers.is_empty() {
            self.index.all_postings()
        } else {
            postings_for_matchers(&self.index, matchers)
        }
    }

    /// Loads one series with its chunks overlapping `[mint, maxt]`, deletions applied.
    /// `None` when no chunk is left (such series are not part of a result, as upstream).
    pub fn load_series(
        &self,
        id: u32,
        mint: i64,
        maxt: i64,
        labels_only: bool,
    ) -> Result<Option<Series>> {
        let entry = self.index.series(id)?;
        let deleted = self.tombstones.get(id as u64).unwrap_or(&[]);
        let mut out = Vec::new();
        for m in entry
            .chunks
            .iter()
            .filter(|m| m.min_time <= maxt && m.max_time >= mint)
        {
            if deleted
                .iter()
                .any(|iv| iv.mint <= m.min_time && m.max_time <= iv.maxt)
            {
                continue;
            }
            if labels_only {
                out.push(EncodedChunk {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    encoding: 0,
                    data: Arc::from(&[][..]),
                });
                continue;
            }
            let (encoding, data) = self.chunks.chunk(m.reference)?;
            let chunk = EncodedChunk {
                min_time: m.min_time,
                max_time: m.max_time,
                encoding,
                data: Arc::from(data),
            };
            let touched = deleted
                .iter()
                .any(|iv| iv.mint <= m.max_time && m.min_time <= iv.maxt);
            if touched {
                if let Some(c) = self.without_deleted(&chunk, deleted, m.reference)? {
                    out.push(c);
                }
            } else {
                out.push(chunk);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        if labels_only {
            out.clear();
        }
        Ok(Some(Series {
            labels: entry.labels,
            chunks: out,
        }))
    }

    fn without_deleted(
        &self,
        chunk: &EncodedChunk,
        deleted: &[Interval],
        reference: u64,
    ) -> Result<Option<EncodedChunk>> {
        if chunk.encoding != ENCODING_XOR {
            return Ok(Some(chunk.clone()));
        }
        let samples = decode_chunk(chunk).map_err(|source| BlockError::Chunk {
            file: self.dir.join("chunks").display().to_string(),
            reference,
            source,
        })?;
        let mut app = XorAppender::new();
        for s in samples
            .iter()
            .filter(|s| !deleted.iter().any(|iv| iv.contains(s.t)))
        {
            app.append(s.t, s.v);
        }
        Ok(app.to_encoded())
    }

    /// Loads the series of `refs` that match and have chunks in `[mint, maxt]`. `selected`
    /// counts series across concurrent calls so that `hints.limit` stops all of them.
    fn load_refs(
        &self,
        refs: &[u32],
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
        selected: &AtomicUsize,
    ) -> QueryResult<Vec<Series>> {
        let mut out = Vec::new();
        for &id in refs {
            let Some(s) = self.load_series(id, mint, maxt, hints.labels_only)? else {
                continue;
            };
            // Postings come from the index; re-check in case of a foreign, inconsistent index.
            if !matches_all(matchers, &s.labels) {
                continue;
            }
            if hints.limit > 0 && selected.fetch_add(1, Ordering::Relaxed) >= hints.limit {
                return Err(QueryableError::Limit(format!(
                    "more than {} series selected",
                    hints.limit
                )));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// A streaming cursor over the matching series, in label order.
    pub fn cursor(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        labels_only: bool,
    ) -> Result<SeriesCursor<'_>> {
        let refs = if self.overlaps(mint, maxt) {
            self.series_refs(matchers)?
        } else {
            Vec::new()
        };
        Ok(SeriesCursor {
            block: self,
            refs,
            pos: 0,
            mint,
            maxt,
            labels_only,
        })
    }

    /// Label sets of the matching series (no time filtering beyond block overlap).
    fn matching_label_sets(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<crate::storage::model::Labels>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for id in self.series_refs(matchers)? {
            out.push(self.index.series(id)?.labels);
        }
        Ok(out)
    }
}

/// Iterates the series of a block lazily, so a compaction or dump never holds the whole
/// block in memory.
pub struct SeriesCursor<'a> {
    block: &'a BlockReader,
    refs: Vec<u32>,
    pos: usize,
    mint: i64,
    maxt: i64,
    labels_only: bool,
}

impl SeriesCursor<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Series>> {
        while let Some(&id) = self.refs.get(self.pos) {
            self.pos += 1;
            if let Some(s) = self
                .block
                .load_series(id, self.mint, self.maxt, self.labels_only)?
            {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

impl Queryable for BlockReader {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let refs = self.series_refs(matchers)?;
        // Decoding a series entry and reading its chunks dominates a query that stays within
        // one block (the usual dashboard query over the last minutes), so a large selection
        // is split into contiguous runs of references read on the rayon pool; concatenating
        // the runs in order keeps the answer sorted.
        let threads = rayon::current_num_threads();
        if threads < 2 || refs.len() < PARALLEL_SELECT_MIN_SERIES {
            return self.load_refs(&refs, matchers, mint, maxt, hints, &AtomicUsize::new(0));
        }
        use rayon::prelude::*;
        let selected = AtomicUsize::new(0);
        let run = refs.len().div_ceil(threads * 4);
        let parts = refs
            .par_chunks(run)
            .map(|piece| self.load_refs(piece, matchers, mint, maxt, hints, &selected))
            .collect::<QueryResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            out.extend(part);
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.index.label_names());
        }
        let mut names: Vec<String> = Vec::new();
        for ls in self.matching_label_sets(matchers, mint, maxt)? {
            names.extend(ls.iter().map(|l| l.name.to_string()));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self
                .index
                .label_values(name)
                .iter()
                .map(|(v, _)| v.clone())
                .collect());
        }
        let mut values: Vec<String> = Vec::new();
        for ls in self.matching_label_sets(matchers, mint, maxt)? {
            if let Some(v) = ls.get(name) {
                values.push(v.to_string());
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// Block directories under `data_dir` (ULID-named with a meta.json; tmp dirs skipped), sorted
/// by name (= creation order of ULIDs).
pub fn list_blocks(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(data_dir).map_err(|e| io_err(data_dir, e))? {
        let entry = entry.map_err(|e| io_err(data_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) || ulid::Ulid::from_string(&name).is_err() {
            continue;
        }
        let path = entry.path();
        if path.join(META_FILENAME).is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Opens every block under `data_dir`, sorted by min time.
pub fn open_blocks(data_dir: &Path) -> Result<Vec<BlockReader>> {
    let mut blocks = Vec::new();
    for dir in list_blocks(data_dir)? {
        blocks.push(BlockReader::open(&dir)?);
    }
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.ulid));
    Ok(blocks)
}
