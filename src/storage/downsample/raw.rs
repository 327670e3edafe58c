//! The raw → downsampled pass (Thanos `DownsampleRaw` for float samples): one series' raw
//! samples in, its aggregate chunks out. Cleans the input (`sanitize_raw`), decides the
//! number of output chunks, cuts the samples into batches that end on a window boundary and
//! turns each batch into one `AggrChunk` with all five aggregates.

use super::aggr::{AggrChunkBuilder, AggrType, DownsampledChunk};
use super::window::{current_window, downsample_batch, target_chunk_count};
use super::{DownsampleError, Result};
use crate::storage::model::{is_stale_nan, Sample};

/// The raw scrape interval the chunk-count heuristic assumes. Real data is often denser; the
/// heuristic only sizes chunks.
const ASSUMED_RAW_INTERVAL_MS: i64 = 60_000;

/// Appends the samples Thanos keeps when it reads a raw chunk: no stale markers, and no
/// sample before the last kept one (the check starts at 0, so negative timestamps go too).
/// Equal timestamps are kept, as Thanos keeps them.
pub(crate) fn extend_sanitized(out: &mut Vec<Sample>, samples: &[Sample]) {
    let mut last_t = out.last().map_or(0, |s| s.t);
    for s in samples {
        if is_stale_nan(s.v) || s.t < last_t {
            continue;
        }
        out.push(*s);
        last_t = s.t;
    }
}

/// The samples of `samples` that downsampling reads: stale markers and samples going back in
/// time (or before the epoch) removed. Other NaNs stay: they count for the chunk-count
/// heuristic and are dropped batch by batch, as in Thanos.
pub fn sanitize_raw(samples: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(samples.len());
    extend_sanitized(&mut out, samples);
    out
}

/// Downsamples one series' raw float samples (time-ordered; stale markers and NaNs allowed)
/// to `resolution` ms (`RES_5M` in practice). Returns the output chunks in time order; none
/// when no sample survives cleaning.
pub fn downsample_raw(samples: &[Sample], resolution: i64) -> Result<Vec<DownsampledChunk>> {
    downsample_sanitized(&sanitize_raw(samples), resolution)
}

/// `downsample_raw` over samples already passed through `sanitize_raw`.
pub(crate) fn downsample_sanitized(
    data: &[Sample],
    resolution: i64,
) -> Result<Vec<DownsampledChunk>> {
    if resolution <= 0 {
        return Err(DownsampleError::InvalidResolution(resolution));
    }
    let (Some(first), Some(last)) = (data.first(), data.last()) else {
        return Ok(Vec::new());
    };
    let chunks = target_chunk_count(
        first.t,
        last.t,
        ASSUMED_RAW_INTERVAL_MS,
        resolution,
        data.len(),
    );
    downsample_raw_loop(data, resolution, chunks)
}

/// Cuts `data` into about `num_chunks` batches and downsamples each into one chunk. A batch
/// takes `len / num_chunks + 1` samples and then every further sample of the window its last
/// sample is in, so a window never spans two chunks. NaNs are dropped per batch; a batch left
/// empty gives no chunk.
pub(crate) fn downsample_raw_loop(
    data: &[Sample],
    resolution: i64,
    num_chunks: usize,
) -> Result<Vec<DownsampledChunk>> {
    let batch_size = data.len() / num_chunks.max(1) + 1;
    let mut out = Vec::with_capacity(num_chunks);
    let mut rest = data;
    while !rest.is_empty() {
        // 1 <= j <= rest.len(): batch_size is at least 1.
        let mut j = batch_size.min(rest.len());
        let window_end = current_window(rest[j - 1].t, resolution);
        while rest.get(j).is_some_and(|s| s.t <= window_end) {
            j += 1;
        }
        let (batch, tail) = rest.split_at(j);
        rest = tail;
        let batch: Vec<Sample> = batch.iter().filter(|s| !s.v.is_nan()).copied().collect();
        if !batch.is_empty() {
            out.push(downsample_float_batch(&batch, resolution)?);
        }
    }
    Ok(out)
}

/// One output chunk from a non-empty batch without NaNs. The counter sub-chunk is framed by
/// the batch's first raw sample and its last raw value (at the last stamp), so a reader can
/// compare true raw values across chunk boundaries.
fn downsample_float_batch(batch: &[Sample], resolution: i64) -> Result<DownsampledChunk> {
    let mut b = AggrChunkBuilder::new();
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Err(DownsampleError::EmptyAggregate);
    };
    b.append(AggrType::Counter, first.t, first.v)?;
    let last_stamp = downsample_batch(batch, resolution, |t, a| {
        b.stamp(t);
        b.append(AggrType::Count, t, a.count as f64)?;
        b.append(AggrType::Sum, t, a.sum)?;
        b.append(AggrType::Min, t, a.min)?;
        b.append(AggrType::Max, t, a.max)?;
        b.append(AggrType::Counter, t, a.counter)
    })?;
    b.append(AggrType::Counter, last_stamp, last.v)?;
    b.finish()
}
