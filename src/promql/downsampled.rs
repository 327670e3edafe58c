//! Reading downsampled series in the engine: a selected series whose chunks include Thanos
//! `AggrChunk`s (encoding 0xff, from 5m/1h blocks) is turned into samples here, by the
//! aggregate the enclosing function needs (`storage::downsample::read_for`), instead of by
//! the XOR `SeriesIterator`. Decoding happens in the engine rather than in the stores so that
//! the StoreAPI carries whole AggrChunks as Thanos's does (any store, Thanos's included, can
//! answer) and one fetched chunk serves every function that reads it.
//!
//! What the engine must do beyond decoding, decided here:
//! - `count_over_time` reads `Read::SampleCount` (raw samples per window) and is then
//!   evaluated as `sum_over_time` (`Fetched::counts_samples`), so it counts raw samples.
//! - `rate`-like functions over a range shorter than three windows get interpolated counter
//!   points (`Interpolation::for_range`) at the resolution of the data, inferred from the
//!   chunks' window stamps (`infer_resolution`), so `rate(x[5m])` over 5m data has values.
//! - Functions whose answer is an approximation a user would not guess (`resets`,
//!   `changes`) add `approximation_note` as a query warning when downsampled data answered.

use crate::promql::error::{PromqlError, Result};
use crate::storage::downsample::{
    self, AggrChunk, AggrType, Interpolation, Read, ReadOptions, CHUNK_ENC_AGGR, RES_1H, RES_5M,
};
use std::time::Duration;

use crate::storage::model::{EncodedChunk, Labels, Sample};

/// How one selector reads downsampled series: the enclosing function and its range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DownsampledRead {
    pub func: Option<String>,
    /// The matrix selector's range (ms), 0 for an instant selector.
    pub range_ms: i64,
    /// How much earlier than the query's window to decode (ms): an instant selector may
    /// look back up to an hour over 1h data (`lookback_for`).
    pub extra_back_ms: i64,
}

impl DownsampledRead {
    pub fn read(&self) -> Read {
        downsample::read_for(self.func.as_deref())
    }
}

/// True when a series holds downsampled chunks.
pub(crate) fn is_downsampled(chunks: &[EncodedChunk]) -> bool {
    chunks.iter().any(|c| c.encoding == CHUNK_ENC_AGGR)
}

/// The samples of a series with downsampled chunks within `[mint, maxt]`.
pub(crate) fn decode(
    labels: &Labels,
    chunks: &[EncodedChunk],
    how: &DownsampledRead,
    mint: i64,
    maxt: i64,
) -> Result<Vec<Sample>> {
    let read = how.read();
    // Only ranges shorter than three windows are interpolated, and no resolution is coarser
    // than 1h: for any other read the resolution (which decodes every chunk's count stamps)
    // is not needed.
    let interpolation = match read {
        Read::Counter if how.range_ms > 0 && how.range_ms < 3 * RES_1H => {
            Interpolation::for_range(infer_resolution(chunks), how.range_ms)
        }
        _ => None,
    };
    let opts = ReadOptions {
        mint: mint.saturating_sub(how.extra_back_ms),
        maxt,
        interpolation,
    };
    downsample::read_series(chunks, read, &opts)
        .map_err(|e| PromqlError::Storage(format!("reading downsampled series {labels}: {e}")))
}

/// The resolution of a series' downsampled chunks, the coarsest where they mix levels (a
/// series read from 1h blocks in one period and 5m blocks in another): interpolation must
/// bridge the widest windows. See `chunk_resolution`.
pub(crate) fn infer_resolution(chunks: &[EncodedChunk]) -> i64 {
    chunks
        .iter()
        .filter(|c| c.encoding == CHUNK_ENC_AGGR)
        .map(chunk_resolution)
        .max()
        .unwrap_or(RES_5M)
}

/// One downsampled chunk's resolution, from its window stamps: a window is stamped at its
/// last millisecond, except a chunk's last window, so the other stamps of a 1h chunk are all
/// hour-aligned and those of a 5m chunk are not (two consecutive 5m windows never both end on
/// the hour). A chunk without such stamps (one window) counts as 1h when it spans more than
/// 5m, else 5m. Interpolation only needs it roughly: it joins points in the same or adjacent
/// windows.
fn chunk_resolution(c: &EncodedChunk) -> i64 {
    let Ok(stamps) = AggrChunk::from_bytes(c.data.clone()).samples(AggrType::Count) else {
        return RES_5M;
    };
    let inner = &stamps[..stamps.len().saturating_sub(1)];
    if inner.iter().any(|s| (s.t + 1).rem_euclid(RES_1H) != 0) {
        RES_5M
    } else if !inner.is_empty() || c.max_time - c.min_time > RES_5M {
        RES_1H
    } else {
        RES_5M
    }
}

/// A stretch of a series read from one downsampled chunk, and the width of its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CoarseSpan {
    pub min_t: i64,
    pub max_t: i64,
    pub res_ms: i64,
}

/// The downsampled stretches of a series, one per aggregate chunk (empty for raw data).
/// Resolution is inferred per chunk, because a series may be read from 1h blocks in one
/// period and 5m or raw blocks in another (finer or coarser data filling gaps).
pub(crate) fn coarse_spans(chunks: &[EncodedChunk]) -> Vec<CoarseSpan> {
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| c.encoding == CHUNK_ENC_AGGR) {
        out.push(CoarseSpan {
            min_t: c.min_time,
            max_t: c.max_time,
            res_ms: chunk_resolution(c),
        });
    }
    out
}

/// The window width of the data at `t` (0: raw), from `coarse_spans`.
pub(crate) fn resolution_at(spans: &[CoarseSpan], t: i64) -> i64 {
    spans
        .iter()
        .find(|s| s.min_t <= t && t <= s.max_t)
        .map_or(0, |s| s.res_ms)
}

/// Thanos's dynamic lookback (`LookbackDeltaFactory`): reading data of resolution `res_ms`,
/// an instant selector looks back at least one window of it, so raw selectors over 5m or 1h
/// data have no holes between the window stamps.
pub fn lookback_for(base: Duration, res_ms: i64) -> Duration {
    const FIVE_MIN: Duration = Duration::from_secs(300);
    const HOUR: Duration = Duration::from_secs(3600);
    let res = Duration::from_millis(res_ms.max(0) as u64);
    if res > base.max(FIVE_MIN) {
        base.max(HOUR)
    } else if res > base {
        base.max(FIVE_MIN)
    } else {
        base
    }
}

/// The function a range function must be evaluated as over what `read` produced:
/// `count_over_time` over per-window sample counts is their sum.
pub(crate) fn counts_samples(how: &DownsampledRead) -> bool {
    how.read() == Read::SampleCount
}

/// The warning for `how`'s function over downsampled data, if it approximates.
pub(crate) fn note(how: &DownsampledRead) -> Option<&'static str> {
    downsample::approximation_note(how.func.as_deref())
}

#[cfg(test)]
#[path = "downsampled_tests.rs"]
mod tests;
