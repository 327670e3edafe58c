//! Downsampling one local block directory into a new block: the data path of the
//! compactor's downsampling step (Thanos's `downsample.Downsample` with its
//! `streamedBlockWriter`).
//!
//! `downsample_block` opens the input (mmap), walks its series in index order one at a time,
//! runs `storage::downsample::downsample_series` over each series' chunks and writes the
//! resulting `AggrChunk`s (encoding `0xff`) straight into a `BlockWriter`, so memory holds the
//! input's symbol table and one series, never the block (Thanos #297, #1771: a downsampler that
//! buffered the block ran out of memory). Series left without samples (all NaN or stale) are
//! not written, as in Thanos.
//!
//! The output's meta.json ([`downsampled_meta`]) is the input's with a new ULID: the same
//! minTime/maxTime, compaction level, sources and parents and external labels,
//! `thanos.downsample.resolution` set to the target, `thanos.source = "compactor"`, the file
//! list and upload time cleared (the upload sets them). Stats as Thanos counts them:
//! numSamples = the windows (count aggregate samples) of every chunk, numChunks = the
//! `AggrChunk`s, numSeries = the series written. A block whose series are all empty still
//! gives an (empty) block, so its sources count as downsampled and it is not tried again.
//!
//! Errors say whose fault they are: [`DownsampleBlockError::Input`] (a corrupt or
//! undownsampleable input: the executor puts a no-downsample mark on it) or
//! [`DownsampleBlockError::Output`] (local disk: retried by the next pass).

use std::path::Path;

use ulid::Ulid;

use crate::storage::block::ThanosMeta;
use crate::storage::block::{BlockError, BlockMeta, BlockReader, BlockWriter, BlockWriterOptions};
use crate::storage::chunkenc::ChunkError;
use crate::storage::compactor::plan::COMPACTOR_SOURCE;
use crate::storage::downsample::{downsample_series, DownsampleError};
use crate::storage::model::EncodedChunk;

/// How often (in series) `downsample_block` reports progress.
const PROGRESS_EVERY: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum DownsampleBlockError {
    /// The input block cannot be downsampled; `reason` is the no-downsample mark's reason.
    #[error("input block {block} ({reason}): {detail}")]
    Input {
        block: Ulid,
        reason: &'static str,
        detail: String,
    },
    /// Writing the output failed (local disk): nothing is wrong with the input.
    #[error("writing the downsampled block: {0}")]
    Output(#[source] BlockError),
}

pub type Result<T> = std::result::Result<T, DownsampleBlockError>;

/// Reason of a no-downsample mark for an input whose index or chunks cannot be read.
pub const REASON_CORRUPT: &str = "corrupt-block";
/// Reason for an input holding chunks downsampling cannot read (native histograms).
pub const REASON_UNSUPPORTED: &str = "unsupported-chunk-encoding";
/// Reason for an input whose chunks overlap or go back in time inside a series.
pub const REASON_OUT_OF_ORDER: &str = "block-index-out-of-order-chunk";

fn block_reason(e: &BlockError) -> &'static str {
    match e {
        BlockError::Chunk {
            source: ChunkError::UnknownEncoding(_),
            ..
        } => REASON_UNSUPPORTED,
        _ => REASON_CORRUPT,
    }
}

fn downsample_reason(e: &DownsampleError) -> &'static str {
    match e {
        DownsampleError::OverlappingChunks { .. } => REASON_OUT_OF_ORDER,
        DownsampleError::UnsupportedEncoding { .. }
        | DownsampleError::UnsupportedRawEncoding(_)
        | DownsampleError::Chunk(ChunkError::UnknownEncoding(_)) => REASON_UNSUPPORTED,
        _ => REASON_CORRUPT,
    }
}

/// The meta.json of the block downsampling `input` to `resolution` (see the module doc);
/// stats are filled in by the block writer.
pub fn downsampled_meta(input: &BlockMeta, ulid: Ulid, resolution: i64) -> BlockMeta {
    let mut meta = input.clone();
    meta.ulid = ulid;
    meta.stats = Default::default();
    let mut t = meta
        .thanos
        .take()
        .unwrap_or_else(|| ThanosMeta::new(Default::default(), resolution, COMPACTOR_SOURCE));
    t.version = 1;
    t.downsample.resolution = resolution;
    t.source = COMPACTOR_SOURCE.to_string();
    t.files.clear();
    t.segment_files.clear();
    t.upload_time = None;
    // Index stats describe the input's index; the block writer measures the new one.
    t.index_stats = None;
    meta.thanos = Some(t);
    meta
}

/// Downsamples the block in `input_dir` to `resolution`, writing the new block under
/// `out_parent` (see the module doc). `ulid` names the input in errors (the directory's meta
/// may be what is broken). `progress(done, total)` hears how many series have been read.
pub fn downsample_block(
    input_dir: &Path,
    ulid: Ulid,
    out_parent: &Path,
    resolution: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BlockMeta> {
    let input_err = |reason: &'static str, detail: String| DownsampleBlockError::Input {
        block: ulid,
        reason,
        detail,
    };
    let block =
        BlockReader::open(input_dir).map_err(|e| input_err(block_reason(&e), e.to_string()))?;
    let from = block.meta().resolution();
    let refs = block
        .series_refs(&[])
        .map_err(|e| input_err(block_reason(&e), e.to_string()))?;
    let symbols = block
        .index()
        .symbols()
        .map_err(|e| input_err(REASON_CORRUPT, e.to_string()))?;
    let out_ulid = Ulid::new();
    let opts = BlockWriterOptions {
        ulid: Some(out_ulid),
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::create_with(out_parent, symbols, opts)
        .map_err(DownsampleBlockError::Output)?;
    let meta = downsampled_meta(block.meta(), out_ulid, resolution);
    let total = refs.len() as u64;
    for (i, &id) in refs.iter().enumerate() {
        let series = match block.load_series(id, i64::MIN, i64::MAX, false) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => return Err(input_err(block_reason(&e), e.to_string())),
        };
        let out = downsample_series(&series.chunks, from, resolution).map_err(|e| {
            input_err(
                downsample_reason(&e),
                format!("series {}: {e}", series.labels),
            )
        })?;
        let chunks: Vec<EncodedChunk> = out.iter().map(|c| c.to_encoded()).collect();
        w.add_series(&series.labels, &chunks)
            .map_err(DownsampleBlockError::Output)?;
        let done = i as u64 + 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            progress(done, total);
        }
    }
    progress(total, total);
    w.finish(meta).map_err(DownsampleBlockError::Output)
}

#[cfg(test)]
#[path = "downsample_block_tests.rs"]
mod tests;
