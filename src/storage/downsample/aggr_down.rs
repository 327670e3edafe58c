//! The downsampled → coarser pass (Thanos `downsampleAggr` for float chunks, 5m → 1h in
//! practice): one series' aggregate chunks in, coarser aggregate chunks out. Input chunks are
//! grouped whole, never split, because each chunk's counter carries the true first and last
//! raw values of its span and those must survive into the output.

use super::aggr::{AggrChunkBuilder, AggrType, DownsampledChunk};
use super::iter::CounterResets;
use super::raw::extend_sanitized;
use super::window::{downsample_batch, target_chunk_count, FloatAggregator};
use super::{DownsampleError, Result};
use crate::storage::chunkenc::ENCODING_XOR;
use crate::storage::model::Sample;

/// Downsamples one series' aggregate chunks (time-ordered, non-overlapping) from `in_res` to
/// `out_res` ms. The output chunk count comes from `target_chunk_count` over the input's
/// span and window count; each output chunk covers `len / count` whole input chunks (at
/// least one; the remainder forms a last, smaller chunk).
pub fn downsample_aggr(
    chunks: &[DownsampledChunk],
    in_res: i64,
    out_res: i64,
) -> Result<Vec<DownsampledChunk>> {
    if out_res <= 0 {
        return Err(DownsampleError::InvalidResolution(out_res));
    }
    let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
        return Ok(Vec::new());
    };
    for c in chunks {
        // Thanos cuts histogram aggregate chunks apart and downsamples them differently;
        // Strata has no native histograms, so refuse rather than misread them.
        if let Ok(counter) = c.chunk.get(AggrType::Counter) {
            if counter.encoding != ENCODING_XOR {
                return Err(DownsampleError::UnsupportedEncoding {
                    aggr: AggrType::Counter,
                    encoding: counter.encoding,
                });
            }
        }
    }
    let num_samples: usize = chunks.iter().map(DownsampledChunk::num_samples).sum();
    let num_chunks =
        target_chunk_count(first.min_time, last.max_time, in_res, out_res, num_samples);
    let batch_size = (chunks.len() / num_chunks).max(1);
    let mut out = Vec::with_capacity(num_chunks);
    for part in chunks.chunks(batch_size) {
        out.push(downsample_aggr_batch(part, out_res)?);
    }
    Ok(out)
}

/// Which statistic of the coarser window an aggregate keeps.
type Pick = fn(&FloatAggregator) -> f64;

/// One output chunk from a group of whole input chunks.
pub(crate) fn downsample_aggr_batch(
    part: &[DownsampledChunk],
    resolution: i64,
) -> Result<DownsampledChunk> {
    let mut b = AggrChunkBuilder::new();
    // Count, sum, min and max: aggregate the aggregates window by window. Counts add up, so
    // the coarser count is the sum of the finer ones.
    let generic: [(AggrType, Pick); 4] = [
        (AggrType::Count, |a| a.sum),
        (AggrType::Sum, |a| a.sum),
        (AggrType::Min, |a| a.min),
        (AggrType::Max, |a| a.max),
    ];
    for (aggr, pick) in generic {
        let buf = aggregate_samples(part, aggr)?;
        downsample_batch(&buf, resolution, |t, a| {
            b.stamp(t);
            b.append(aggr, t, pick(a))
        })?;
    }

    // Counter: correct the resets of the finer counters across the whole group, then take
    // the running total at each coarser stamp, framed by the first raw value and the true
    // last raw value like the raw pass does.
    let mut resets = CounterResets::new();
    let mut corrected: Vec<Sample> = Vec::new();
    for c in part {
        let counter = match c.chunk.get(AggrType::Counter) {
            Ok(sub) => sub.samples()?,
            Err(DownsampleError::AggrNotExist(_)) => continue,
            Err(e) => return Err(e),
        };
        let mut totals = Vec::with_capacity(counter.len());
        for s in counter {
            totals.extend(resets.push(s));
        }
        extend_sanitized(&mut corrected, &totals);
    }
    if let (Some(first), Some(last_raw)) = (corrected.first(), resets.last_raw()) {
        b.append(AggrType::Counter, first.t, first.v)?;
        let last_stamp = downsample_batch(&corrected, resolution, |t, a| {
            b.stamp(t);
            b.append(AggrType::Counter, t, a.counter)
        })?;
        b.append(AggrType::Counter, last_stamp, last_raw)?;
    }
    b.finish()
}

/// All samples of one aggregate over a group of chunks, cleaned like raw input (stale
/// markers and samples going back in time dropped); absent aggregates are skipped.
fn aggregate_samples(part: &[DownsampledChunk], aggr: AggrType) -> Result<Vec<Sample>> {
    let mut buf = Vec::new();
    for c in part {
        match c.chunk.get(aggr) {
            Ok(sub) => extend_sanitized(&mut buf, &sub.samples()?),
            Err(DownsampleError::AggrNotExist(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}
