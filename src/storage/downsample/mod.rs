//! Downsampling, the pure core: turns one series' raw float samples into 5m aggregate chunks,
//! 5m aggregate chunks into 1h ones, and aggregate chunks back into samples for a query. It
//! owns the Thanos `AggrChunk` byte layout (`aggr`), the window arithmetic (`window`), the two
//! downsampling passes (`raw`, `aggr_down`), the read side (`iter`) and the choice of the
//! aggregate a PromQL function reads (`plan`). No I/O, no async, no knowledge of blocks,
//! PromQL, queries or actors: the compactor feeds it a series' chunks and writes what comes
//! out (`downsample_series`, `DownsampledChunk::to_encoded`), the query layer hands it a
//! series' chunks and a `Read` and gets samples back (`read_series`).
//!
//! **Writing (bit-compatible with Thanos `pkg/compact/downsample`).** Blocks written here are
//! read by Thanos and the other way round, so the arithmetic is Thanos's to the bit:
//! - *Windows* are `[k·r, (k+1)·r)` aligned to the epoch; a window's aggregates are stamped at
//!   its last millisecond `t - t%r + r - 1`, except the last window of every output chunk,
//!   which is stamped with the chunk's last input timestamp when that is earlier.
//! - *Raw input* loses stale markers and samples that go back in time (or before the epoch);
//!   then every NaN goes. Series left empty give no chunks.
//! - *Per window:* count, sum, min, max of the samples (min starts at `f64::MAX`, max at
//!   `-f64::MAX`, as in Thanos). *Counter* is a running total over the whole output chunk:
//!   the first sample sets it, then `+= v - last` when `v >= last`, else `+= v` (a reset).
//!   The counter sub-chunk also starts with the chunk's first raw sample and ends with its
//!   last raw value repeated at the last stamp, so readers can see resets between chunks.
//! - *Cutting (raw → 5m):* `target_chunk_count` assumes 1-minute input and aims at ≤ 140
//!   windows a chunk; a batch is `len/chunks + 1` raw samples, extended to the end of the
//!   window its last sample is in, so a window never straddles two chunks.
//! - *5m → 1h:* whole input chunks form a batch (so first/last raw counter values survive);
//!   count is the sum of counts, sum of sums, min of mins, max of maxes; the counter is
//!   re-derived from the reset-corrected 5m counters, with the first raw value and the true
//!   last raw value kept as above. A 1h window can therefore appear in two output chunks.
//! - *Native histograms* are not handled: Strata's TSDB stores floats only. A histogram
//!   aggregate found in a Thanos block is refused with `UnsupportedEncoding`.
//!
//! Deviations from Thanos, all on inputs Thanos mishandles: a batch size of 0 in the 5m → 1h
//! pass (more target chunks than input chunks) is raised to 1 instead of failing the block;
//! a zero-length (absent) aggregate at the very end of an `AggrChunk` reads as absent, where
//! Thanos reports "invalid size"; an absent aggregate does not pull a 1h chunk's min time to
//! 0. Raw samples going back in time are dropped across the whole series, not per source
//! chunk (the compactor refuses overlapping chunks anyway, as Thanos does).
//!
//! **Reading** (`read_series`, `read_for`). Each chunk of a series is an `AggrChunk` or a raw
//! XOR chunk (mixed series happen where raw and downsampled blocks meet); raw chunks are read
//! as they are except where a rule below says otherwise. Samples at or before the last one
//! returned are skipped, so overlapping chunks never make the series go back in time.
//! Strata reads, per PromQL function or aggregation operator enclosing the selector:
//!
//! | function | read | why |
//! |---|---|---|
//! | `min`, `min_over_time` | `Aggregate(Min)` | exact at window stamps |
//! | `max`, `max_over_time` | `Aggregate(Max)` | exact at window stamps |
//! | `sum_over_time` | `Aggregate(Sum)` | exact over whole windows (plain `sum` reads the average, Thanos #922) |
//! | `count` (operator) | `Aggregate(Count)` | values ignored, one point per window |
//! | `count_over_time` | `SampleCount` | see below: counts raw samples, not windows |
//! | `rate`, `increase`, `irate`, `xrate`, `xincrease` | `Counter` | reset-corrected total |
//! | `resets` | `Aggregate(Min)` | see below: Thanos always answers 0 (#3644) |
//! | `changes` | `Average` | approximate, see below |
//! | anything else, none, `count_values` | `Average` | sum ÷ count per window |
//!
//! - `Counter` reads every chunk, raw ones included, through `CounterResets` (Thanos's
//!   `ApplyCounterResetsSeriesIterator`): NaNs dropped, a sample repeating the previous
//!   timestamp is the chunk's true last raw value and only sets the base for the next
//!   comparison. Raw chunks are corrected too so that a raw chunk after a downsampled one is
//!   compared with the true last raw value, not with the corrected total.
//! - **Short ranges** (`rate(x[5m])` over 5m data). A range shorter than two windows holds at
//!   most one stamp, so PromQL's rate would return nothing (Thanos #1115, #1808). With
//!   `Interpolation::for_range(resolution, range)` the `Counter` read adds points of the
//!   corrected total, interpolated linearly, at every multiple of `max(1, range / 4)` ms
//!   strictly between two consecutive downsampled points that lie in the same or adjacent
//!   windows (never across a missing window, where nothing is known, and never between raw
//!   samples). Every range then holds at least two points wherever data exists and the rate
//!   is the mean rate of the windows it overlaps (stamps sit at window ends, so a chunk's
//!   first and last window skew it by up to a quarter). Ranges of two windows (up to three)
//!   get the points too: they hold two stamps, but where a chunk ends (its last window is
//!   stamped at its last raw sample, and the next chunk starts with a raw counter point) the
//!   extra points shrink PromQL's average interval and with it the extrapolation to the range
//!   edges, so `rate(x[2h])` over 1h data read 37% low at every chunk boundary (measured on
//!   the downsample benchmark). Ranges of three windows or more need no points and get none. The query layer passes the coarsest resolution it read and
//!   must not cap the resolution at `range / 2` (Thanos's rule) when only downsampled data
//!   covers the range.
//! - `SampleCount`: the count aggregate per window, and `1` for every raw sample (stale
//!   markers pass through as they are). `count_over_time(x[R])` over it **must be evaluated
//!   as `sum_over_time`**: at a window stamp `T` with `R` a multiple of the resolution it is
//!   then exactly the raw sample count (NaNs excepted: downsampling dropped them). Thanos
//!   counts windows, about `R / resolution`.
//! - `resets` reads the minimum. For a counter a window's minimum is its first raw value
//!   unless a reset happened inside it, and the minima never fall without a reset; so each
//!   drop of the minimum from one window to the next is a reset, and a reset shows as a drop
//!   when it takes the counter below the previous window's minimum. Resets are never
//!   invented. Missed: a second reset in the same window, a reset in the window right after
//!   one that also reached the same low value, a reset in the first window read, and a reset
//!   that stays above the previous window's minimum. Exact for the usual reset to (near) zero
//!   when resets are at least one window apart. Thanos reads the corrected counter and
//!   always returns 0.
//! - `changes` reads the window averages, like Thanos: 0 for a constant series, non-zero for
//!   a counter that moves, otherwise an approximation (several changes in one window count
//!   once; one change inside a window can move two means).
//! - `approximation_note` gives the query layer a warning text for `resets` and `changes`,
//!   to attach when downsampled data answered them.

use crate::storage::chunkenc::{self, ChunkError, ENCODING_XOR};
use crate::storage::model::{EncodedChunk, Sample};

mod aggr;
mod aggr_down;
mod iter;
mod plan;
mod raw;
mod window;

#[cfg(test)]
mod aggr_tests;
#[cfg(test)]
mod iter_tests;
#[cfg(test)]
mod raw_tests;
#[cfg(test)]
mod reference;

pub use aggr::{AggrChunk, AggrType, DownsampledChunk, SubChunk, CHUNK_ENC_AGGR};
pub use aggr_down::downsample_aggr;
pub use iter::{average, read_series, CounterResets, Interpolation, ReadOptions};
pub use plan::{aggregates_for, approximation_note, read_for, Read};
pub use raw::{downsample_raw, sanitize_raw};
pub use window::{current_window, target_chunk_count};

/// Raw data: no downsampling.
pub const RES_RAW: i64 = 0;
/// The first downsampling level, 5 minutes in milliseconds.
pub const RES_5M: i64 = 300_000;
/// The second downsampling level, 1 hour in milliseconds.
pub const RES_1H: i64 = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum DownsampleError {
    #[error("aggregate {0} does not exist")]
    AggrNotExist(AggrType),
    #[error("aggregate chunk: invalid size while reading aggregate {0}")]
    InvalidSize(AggrType),
    #[error("chunk encoding {0:#04x} is not an aggregate chunk (0xff)")]
    NotAggrChunk(u8),
    #[error("aggregate {aggr} has chunk encoding {encoding}; only XOR float chunks are supported")]
    UnsupportedEncoding { aggr: AggrType, encoding: u8 },
    #[error("chunk encoding {0} cannot be downsampled or read here; only XOR float chunks are")]
    UnsupportedRawEncoding(u8),
    #[error("invalid downsampling resolution {0} ms")]
    InvalidResolution(i64),
    #[error("target resolution {to} ms is not coarser than the source resolution {from} ms")]
    ResolutionNotLower { from: i64, to: i64 },
    #[error("overlapping chunks in one series: [{prev_min}, {prev_max}] then [{min}, {max}]")]
    OverlappingChunks {
        prev_min: i64,
        prev_max: i64,
        min: i64,
        max: i64,
    },
    #[error("invalid range for downsampled aggregate chunk: no aggregate has samples")]
    EmptyAggregate,
    #[error("sum and count aggregates not aligned: {0}")]
    AverageNotAligned(String),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

pub type Result<T> = std::result::Result<T, DownsampleError>;

/// Downsamples one series of a block, as the compactor does it: `chunks` are the series'
/// chunks in time order, `from` the block's resolution and `to` the target one. From raw
/// (`RES_RAW`), every chunk must be XOR; the samples of all chunks are joined and downsampled
/// with `downsample_raw`. From a downsampled level, `AggrChunk`s are kept as they are and a
/// stray XOR chunk (found in old Thanos blocks) is first downsampled to 5m, an empty one
/// skipped, before `downsample_aggr` runs over all of them.
pub fn downsample_series(
    chunks: &[EncodedChunk],
    from: i64,
    to: i64,
) -> Result<Vec<DownsampledChunk>> {
    if to <= from {
        return Err(DownsampleError::ResolutionNotLower { from, to });
    }
    for pair in chunks.windows(2) {
        if pair[0].max_time >= pair[1].min_time {
            return Err(DownsampleError::OverlappingChunks {
                prev_min: pair[0].min_time,
                prev_max: pair[0].max_time,
                min: pair[1].min_time,
                max: pair[1].max_time,
            });
        }
    }
    if from == RES_RAW {
        let mut all: Vec<Sample> = Vec::new();
        for c in chunks {
            if c.encoding != ENCODING_XOR {
                return Err(DownsampleError::UnsupportedRawEncoding(c.encoding));
            }
            // Thanos sanitises each chunk on its own (back-in-time checks restart per chunk);
            // with non-overlapping chunks that is the same as over the whole series.
            raw::extend_sanitized(&mut all, &chunkenc::decode_all(&c.data)?);
        }
        return raw::downsample_sanitized(&all, to);
    }
    let mut fixed: Vec<DownsampledChunk> = Vec::with_capacity(chunks.len());
    for c in chunks {
        if c.encoding == CHUNK_ENC_AGGR {
            fixed.push(DownsampledChunk::from_encoded(c)?);
            continue;
        }
        if c.encoding != ENCODING_XOR {
            return Err(DownsampleError::UnsupportedRawEncoding(c.encoding));
        }
        if chunkenc::declared_samples(c) == 0 {
            // Thanos #5272: downsampled blocks may carry empty XOR chunks.
            continue;
        }
        let mut samples = Vec::new();
        raw::extend_sanitized(&mut samples, &chunkenc::decode_all(&c.data)?);
        fixed.extend(raw::downsample_sanitized(&samples, RES_5M)?);
    }
    downsample_aggr(&fixed, from, to)
}
