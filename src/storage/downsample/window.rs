//! Window arithmetic shared by both downsampling passes: the stamp of a window, how many
//! output chunks a series gets, the per-window float aggregator and the loop that feeds a
//! batch of samples through it window by window. Thanos's `currentWindow`,
//! `targetChunkCount`, `floatAggregator` and `downsampleBatch`, with the same float
//! operations in the same order so that the encoded values match bit for bit.

use super::Result;
use crate::storage::model::Sample;

/// Most windows an output chunk should hold on average.
const MAX_WINDOWS_PER_CHUNK: i64 = 140;

/// The stamp of the window `t` falls in: the window's last millisecond, `t - t%r + r - 1`.
/// Windows are `[k·r, (k+1)·r)`, so the stamp still belongs to the window it describes.
/// Wrapping arithmetic as in Go; callers only pass `t >= 0` and `r > 0`.
pub fn current_window(t: i64, r: i64) -> i64 {
    t.wrapping_sub(t % r).wrapping_add(r).wrapping_sub(1)
}

/// The share of `[mint, maxt]` that `count` samples at `step` cover, at most 1.
fn range_fullness(mint: i64, maxt: i64, step: i64, count: usize) -> f64 {
    let f = count as f64 / (maxt.saturating_sub(mint) as f64 / step as f64);
    if f > 1.0 {
        1.0
    } else {
        f
    }
}

/// How many output chunks a series gets: the expected number of output windows (the range
/// at `out_res`, scaled by how densely `count` samples at `in_res` fill it, plus one),
/// divided into the fewest chunks of at most 140 windows on average.
pub fn target_chunk_count(mint: i64, maxt: i64, in_res: i64, out_res: i64, count: usize) -> usize {
    let max_samples = (maxt.saturating_sub(mint) / out_res) as f64;
    // `as` truncates like Go's int() (and maps NaN, from an empty range, to 0).
    let expected = (max_samples * range_fullness(mint, maxt, in_res, count)) as i64 + 1;
    // The smallest x with expected / x <= 140 (integer division), without Thanos's loop.
    if expected <= MAX_WINDOWS_PER_CHUNK {
        return 1;
    }
    (expected / (MAX_WINDOWS_PER_CHUNK + 1) + 1) as usize
}

/// Aggregates of the current window plus the running counter of the whole batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct FloatAggregator {
    /// Samples since the start of the batch.
    total: usize,
    pub(crate) count: usize,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) counter: f64,
    last: f64,
}

impl FloatAggregator {
    /// Starts a new window; the counter runs on.
    fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::MAX;
        self.max = -f64::MAX;
    }

    fn add(&mut self, v: f64) {
        if self.total > 0 {
            if v < self.last {
                // A reset: the counter restarted from 0, so all of `v` is new increase.
                self.counter += v;
            } else {
                self.counter += v - self.last;
            }
        } else {
            self.counter = v;
        }
        self.last = v;
        self.sum += v;
        self.count += 1;
        self.total += 1;
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }
}

/// Feeds `data` (time-ordered, non-empty for any output) through a fresh aggregator and calls
/// `emit(stamp, aggregator)` at the end of every window. A window is stamped at its last
/// millisecond, but never after the batch's last timestamp, so that consecutive chunks never
/// overlap in time. Returns the last stamp (-1 for empty input).
pub(crate) fn downsample_batch(
    data: &[Sample],
    resolution: i64,
    mut emit: impl FnMut(i64, &FloatAggregator) -> Result<()>,
) -> Result<i64> {
    let mut aggr = FloatAggregator::default();
    let Some(last) = data.last() else {
        return Ok(-1);
    };
    let mut next_t: i64 = -1;
    for s in data {
        if s.t > next_t {
            if next_t != -1 {
                emit(next_t, &aggr)?;
            }
            aggr.reset();
            next_t = current_window(s.t, resolution).min(last.t);
        }
        aggr.add(s.v);
    }
    if aggr.total > 0 {
        emit(next_t, &aggr)?;
    }
    Ok(next_t)
}
