//! `BlockWriter`: builds a block by streaming series in label order. Chunks go straight to the
//! segment files and series entries straight to the index, inside `<parent>/<ULID>.tmp-for-creation`;
//! `finish` writes tombstones and meta.json, fsyncs, and renames the directory into place.

use std::fs;
use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::chunks::{ChunkWriter, DEFAULT_MAX_SEGMENT_SIZE};
use super::index::{ChunkMeta, IndexWriter, INDEX_FILENAME};
use super::meta::{BlockMeta, BlockStats, IndexStats, META_VERSION};
use super::tombstones::Tombstones;
use super::{fsync_dir, io_err, BlockError, Result};
use crate::storage::chunkenc::ENCODING_XOR;
use crate::storage::downsample::{AggrChunk, CHUNK_ENC_AGGR};
use crate::storage::model::{EncodedChunk, Labels};

/// Suffix of the directory a block is assembled in (same as Prometheus).
pub const TMP_SUFFIX: &str = ".tmp-for-creation";

#[derive(Clone, Debug)]
pub struct BlockWriterOptions {
    /// Use this ULID instead of a fresh one.
    pub ulid: Option<Ulid>,
    /// Maximum chunk segment file size (default 512 MiB).
    pub max_segment_size: u64,
}

impl Default for BlockWriterOptions {
    fn default() -> Self {
        BlockWriterOptions {
            ulid: None,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        }
    }
}

pub struct BlockWriter {
    ulid: Ulid,
    tmp_dir: PathBuf,
    final_dir: PathBuf,
    parent: PathBuf,
    chunks: Option<ChunkWriter>,
    index: Option<IndexWriter>,
    stats: BlockStats,
    /// Thanos's `chunk_max_size` so far (see `IndexStats`).
    chunk_max_size: i64,
    done: bool,
}

impl BlockWriter {
    /// Starts a block with a fresh ULID. `symbols` must include every label name and value of
    /// the series that will be added (duplicates and any order are fine).
    pub fn create(parent_dir: &Path, symbols: impl IntoIterator<Item = String>) -> Result<Self> {
        Self::create_with(parent_dir, symbols, BlockWriterOptions::default())
    }

    pub fn create_with(
        parent_dir: &Path,
        symbols: impl IntoIterator<Item = String>,
        opts: BlockWriterOptions,
    ) -> Result<Self> {
        // Not `unwrap_or_default`: `Ulid::default()` is the nil ULID, we need a fresh one.
        let ulid = match opts.ulid {
            Some(u) => u,
            None => Ulid::new(),
        };
        let final_dir = parent_dir.join(ulid.to_string());
        let tmp_dir = parent_dir.join(format!("{ulid}{TMP_SUFFIX}"));
        if tmp_dir.exists() {
            fs::remove_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
        }
        fs::create_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
        let chunks = ChunkWriter::new(&tmp_dir.join("chunks"), opts.max_segment_size)?;
        let index = IndexWriter::create(&tmp_dir.join(INDEX_FILENAME), symbols)?;
        Ok(BlockWriter {
            ulid,
            tmp_dir,
            final_dir,
            parent: parent_dir.to_path_buf(),
            chunks: Some(chunks),
            index: Some(index),
            stats: BlockStats::default(),
            chunk_max_size: 0,
            done: false,
        })
    }

    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Where the block will live once `finish` succeeds: `<parent>/<ULID>`.
    pub fn final_dir(&self) -> &Path {
        &self.final_dir
    }

    /// Stats of what has been added so far.
    pub fn stats(&self) -> &BlockStats {
        &self.stats
    }

    /// Adds one series. Series must come in strictly increasing label order; chunks must be
    /// time-ordered and non-overlapping. A series without chunks is skipped (as upstream).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[EncodedChunk]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let (Some(cw), Some(iw)) = (self.chunks.as_mut(), self.index.as_mut()) else {
            return Err(BlockError::Invalid("block writer already finished".into()));
        };
        // Validate before writing chunks so a rejected series leaves no orphan chunk behind.
        iw.check_next(labels)?;
        let mut samples = 0u64;
        let mut prev_max: Option<i64> = None;
        for (i, c) in chunks.iter().enumerate() {
            // 1-3: Prometheus's XOR, histogram and float-histogram chunks; 0xff: Thanos's
            // AggrChunk of a downsampled block.
            let known = (1..=3).contains(&c.encoding) || c.encoding == CHUNK_ENC_AGGR;
            if !known {
                return Err(BlockError::Invalid(format!(
                    "series {labels}: chunk {i} has unsupported encoding {}",
                    c.encoding
                )));
            }
            if c.min_time > c.max_time {
                return Err(BlockError::Invalid(format!(
                    "series {labels}: chunk {i} min time {} > max time {}",
                    c.min_time, c.max_time
                )));
            }
            if let Some(p) = prev_max {
                if c.min_time <= p {
                    return Err(BlockError::Invalid(format!(
                        "series {labels}: chunk {i} [{}, {}] overlaps the previous chunk ending at {p}",
                        c.min_time, c.max_time
                    )));
                }
            }
            prev_max = Some(c.max_time);
            let Some(h) = c.data.get(..2) else {
                return Err(BlockError::Invalid(format!(
                    "series {labels}: chunk {i} has a {}-byte payload",
                    c.data.len()
                )));
            };
            if c.encoding == ENCODING_XOR {
                samples += u16::from_be_bytes([h[0], h[1]]) as u64;
            } else if c.encoding == CHUNK_ENC_AGGR {
                // Thanos counts an AggrChunk's windows: its count aggregate's samples.
                samples += AggrChunk::from_bytes(c.data.clone()).num_samples() as u64;
            }
        }
        let mut metas = Vec::with_capacity(chunks.len());
        for c in chunks {
            let reference = cw.write_chunk(c.encoding, &c.data)?;
            metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                reference,
            });
        }
        iw.add_series(labels, &metas)?;
        // Measured as Thanos measures it: from one chunk reference to the next within a
        // segment, leaving out a series' last two chunks.
        for i in 0..metas.len().saturating_sub(2) {
            let (a, b) = (metas[i].reference, metas[i + 1].reference);
            if a >> 32 == b >> 32 {
                self.chunk_max_size = self.chunk_max_size.max((b - a) as i64);
            }
        }
        self.stats.num_series += 1;
        self.stats.num_chunks += chunks.len() as u64;
        self.stats.num_samples += samples;
        Ok(())
    }

    /// Completes the block. `ulid`, `stats` and `version` of `meta` are filled in here; a
    /// level of 0 becomes 1 and empty `compaction.sources` become `[ulid]`. Everything else
    /// (time range, parents, thanos section) is taken from `meta` as given.
    pub fn finish(mut self, mut meta: BlockMeta) -> Result<BlockMeta> {
        let (Some(cw), Some(iw)) = (self.chunks.take(), self.index.take()) else {
            return Err(BlockError::Invalid("block writer already finished".into()));
        };
        cw.close()?;
        let index_stats = IndexStats {
            series_max_size: iw.series_max_size(),
            chunk_max_size: self.chunk_max_size,
        };
        iw.finish()?;
        meta.stats = self.stats.clone();
        // Thanos records these on what its compactor and downsampler write.
        if let Some(t) = meta.thanos.as_mut() {
            t.index_stats = Some(index_stats);
        }
        meta.version = META_VERSION;
        if meta.compaction.level == 0 {
            meta.compaction.level = 1;
        }
        // A caller may have built the meta around a placeholder ULID (e.g. `BlockMeta::new`
        // with a fresh ULID): self-references in `sources` then mean this block.
        let placeholder = meta.ulid;
        for s in meta.compaction.sources.iter_mut() {
            if *s == placeholder {
                *s = self.ulid;
            }
        }
        if meta.compaction.sources.is_empty() {
            meta.compaction.sources = vec![self.ulid];
        }
        meta.ulid = self.ulid;
        meta.compaction.sources.sort();
        meta.compaction.sources.dedup();
        if meta.min_time > meta.max_time {
            return Err(BlockError::Invalid(format!(
                "block min time {} > max time {}",
                meta.min_time, meta.max_time
            )));
        }
        Tombstones::default().write(&self.tmp_dir)?;
        meta.write(&self.tmp_dir)?;
        fsync_dir(&self.tmp_dir)?;
        if self.final_dir.exists() {
            return Err(BlockError::Invalid(format!(
                "block directory {} already exists",
                self.final_dir.display()
            )));
        }
        fs::rename(&self.tmp_dir, &self.final_dir).map_err(|e| io_err(&self.final_dir, e))?;
        self.done = true;
        fsync_dir(&self.parent)?;
        Ok(meta)
    }

    /// Drops the partial block.
    pub fn abort(mut self) -> Result<()> {
        self.chunks = None;
        self.index = None;
        self.done = true;
        fs::remove_dir_all(&self.tmp_dir).map_err(|e| io_err(&self.tmp_dir, e))
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: a leftover tmp dir is also ignored by readers and removed on reuse.
            let _ = fs::remove_dir_all(&self.tmp_dir);
        }
    }
}
