//! One in-memory series: its closed chunks, the open XOR appender, and the Prometheus chunk
//! cutting rules (120-sample target with end-time prediction after 30 samples, 240-sample
//! hard cap, cut at chunk-range boundaries, XOR payload never above 1024 bytes).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::labels::CompactLabels;
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::{EncodedChunk, Labels};

/// Samples per chunk Prometheus aims for.
pub const SAMPLES_PER_CHUNK: usize = 120;
/// XOR payload cap (Prometheus #12054).
pub const MAX_XOR_CHUNK_BYTES: usize = 1024;
/// Worst-case growth of a XOR payload by one sample: 4 + 64 bits of timestamp
/// delta-of-delta, 2 + 5 + 6 + 64 bits of value. Cutting before a sample that could cross
/// the cap keeps every chunk at or under 1024 bytes.
const MAX_SAMPLE_BYTES: usize = 19;

pub struct MemSeries {
    pub series_ref: u64,
    pub labels: CompactLabels,
    pub hash: u64,
    /// Its Series record is in the WAL (set under the WAL commit lock).
    pub logged: AtomicBool,
    /// Dropped from the head by truncation; appenders holding it must re-resolve.
    pub removed: AtomicBool,
    /// Time of the last appended sample (`i64::MIN`: none), readable without the lock so
    /// that appenders can pre-check order cheaply; the authoritative check is under `data`.
    last_t: AtomicI64,
    pub data: Mutex<SeriesData>,
}

impl MemSeries {
    pub fn new(series_ref: u64, labels: &Labels, hash: u64, logged: bool) -> Self {
        MemSeries {
            series_ref,
            labels: CompactLabels::from_labels(labels),
            hash,
            logged: AtomicBool::new(logged),
            removed: AtomicBool::new(false),
            last_t: AtomicI64::new(i64::MIN),
            data: Mutex::new(SeriesData::default()),
        }
    }

    /// Checks and appends under the series lock; returns the outcome.
    pub fn append_checked(&self, t: i64, v: f64, chunk_range: i64) -> Check {
        let mut d = self.data.lock();
        let c = check(d.last, t, v);
        if c == Check::Append {
            d.append(t, v, chunk_range);
            self.last_t.store(t, Ordering::Release);
        }
        c
    }

    /// The last sample, as far as an appender needs it: only a sample at exactly the last
    /// timestamp needs the value too, and only then is the lock taken.
    pub fn last_for(&self, t: i64) -> Option<(i64, u64)> {
        let lt = self.last_t.load(Ordering::Acquire);
        if lt == i64::MIN {
            return self.data.lock().last;
        }
        if t != lt {
            return Some((lt, 0));
        }
        self.data.lock().last
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Starts loading what an appender reads first (reference count, ref, last time), so a
    /// caller that knows which series comes next can overlap the cache miss with its work:
    /// with a head larger than the CPU caches, that miss is most of an append's cost.
    pub fn prefetch_header(this: &Arc<MemSeries>) {
        // The reference counts sit just before the value; the compiler places the small
        // fields after `data`, so each is asked for by address.
        prefetch_lines(Arc::as_ptr(this).cast::<u8>().wrapping_sub(16), 1);
        prefetch_lines(std::ptr::addr_of!(this.series_ref).cast(), 1);
        prefetch_lines(std::ptr::addr_of!(this.last_t).cast(), 1);
        prefetch_lines(std::ptr::addr_of!(this.removed).cast(), 1);
    }

    /// Starts loading the lock and chunk state a commit writes.
    pub fn prefetch_data(&self) {
        let start = std::ptr::addr_of!(self.data).cast::<u8>();
        prefetch_lines(start, std::mem::size_of::<Mutex<SeriesData>>());
    }
}

/// Hints the CPU to load the cache lines of `x`, for callers that know what they will
/// touch next.
pub fn prefetch<T>(x: &T) {
    prefetch_lines((x as *const T).cast(), std::mem::size_of::<T>());
}

/// Hints the CPU to load the cache lines of `len` bytes at `start` (a no-op where there is
/// no prefetch instruction).
fn prefetch_lines(start: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        let p = start.wrapping_add(off);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults and has no effect on memory
        // whatever the address, and SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
        off += 64;
    }
}

/// Outcome of checking a sample against a series' last sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Append,
    /// Same timestamp and identical value bits: accepted, nothing to store.
    Duplicate,
    OutOfOrder,
    DuplicateTimestamp,
}

/// Prometheus's rule: older is out of order; same timestamp is a no-op only when the value
/// is bit-identical (so a repeated StaleNaN is fine, a different value is an error).
pub fn check(last: Option<(i64, u64)>, t: i64, v: f64) -> Check {
    match last {
        None => Check::Append,
        Some((lt, _)) if t > lt => Check::Append,
        Some((lt, _)) if t < lt => Check::OutOfOrder,
        Some((_, lv)) if lv == v.to_bits() => Check::Duplicate,
        Some(_) => Check::DuplicateTimestamp,
    }
}

#[derive(Default)]
pub struct SeriesData {
    pub closed: Vec<EncodedChunk>,
    pub open: Option<XorAppender>,
    /// The open chunk is cut when a sample reaches this time.
    next_at: i64,
    /// Last accepted sample (time, value bits), kept even when its chunk is truncated away
    /// so that ordering checks stay right.
    pub last: Option<(i64, u64)>,
}

/// End of the chunk range that holds `t` (ranges are aligned to multiples of `width`).
pub fn range_end(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width + width
}

/// Predicts where to end the current chunk, which spans `start..=cur` and is a quarter full,
/// so the rest of the range up to `max` splits into chunks of equal sample counts
/// (integer arithmetic as in Prometheus 2.42).
fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let per_chunk = (cur - start + 1).saturating_mul(4).max(1);
    let n = (max - start) / per_chunk;
    if n <= 1 {
        return max;
    }
    start + (max - start) / n
}

impl SeriesData {
    /// Appends a sample already checked with `check` to be newer than the last one.
    pub fn append(&mut self, t: i64, v: f64, chunk_range: i64) {
        let cut = match self.open.as_ref() {
            None => true,
            Some(app) => {
                let n = app.num_samples();
                if n == SAMPLES_PER_CHUNK / 4 {
                    if let (Some(min), Some(max)) = (app.min_time(), app.max_time()) {
                        self.next_at = compute_chunk_end_time(min, max, self.next_at);
                    }
                }
                n == 0
                    || t >= self.next_at
                    || n >= SAMPLES_PER_CHUNK * 2
                    || app.bytes().len() + MAX_SAMPLE_BYTES > MAX_XOR_CHUNK_BYTES
            }
        };
        if cut {
            self.close_open();
            self.open = Some(XorAppender::new());
            self.next_at = range_end(t, chunk_range);
        }
        if let Some(app) = self.open.as_mut() {
            app.append(t, v);
        }
        self.last = Some((t, v.to_bits()));
    }

    /// Moves the open chunk to the closed list.
    pub fn close_open(&mut self) {
        if let Some(app) = self.open.take() {
            if let Some(c) = app.to_encoded() {
                self.closed.push(c);
            }
        }
    }

    /// Chunks overlapping `[mint, maxt]` (inclusive), the open one as a snapshot.
    pub fn chunks_in(&self, mint: i64, maxt: i64) -> Vec<EncodedChunk> {
        let mut out: Vec<EncodedChunk> = self
            .closed
            .iter()
            .filter(|c| c.max_time >= mint && c.min_time <= maxt)
            .cloned()
            .collect();
        if let Some(app) = self.open.as_ref() {
            if let (Some(min), Some(max)) = (app.min_time(), app.max_time()) {
                if max >= mint && min <= maxt {
                    out.extend(app.to_encoded());
                }
            }
        }
        out
    }

    pub fn has_data_in(&self, mint: i64, maxt: i64) -> bool {
        let open_hit = self
            .open
            .as_ref()
            .is_some_and(|a| match (a.min_time(), a.max_time()) {
                (Some(min), Some(max)) => max >= mint && min <= maxt,
                _ => false,
            });
        open_hit
            || self
                .closed
                .iter()
                .any(|c| c.max_time >= mint && c.min_time <= maxt)
    }

    /// Drops chunks that end before `mint`; true when nothing is left.
    pub fn truncate_before(&mut self, mint: i64) -> bool {
        self.closed.retain(|c| c.max_time >= mint);
        if self
            .open
            .as_ref()
            .and_then(|a| a.max_time())
            .is_some_and(|m| m < mint)
        {
            self.open = None;
        }
        self.closed.is_empty() && self.open.is_none()
    }

    pub fn min_time(&self) -> Option<i64> {
        self.closed
            .first()
            .map(|c| c.min_time)
            .or_else(|| self.open.as_ref().and_then(|a| a.min_time()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::chunkenc::decode_chunk;

    const RANGE: i64 = 2 * 3600 * 1000;

    #[test]
    fn regular_scrapes_cut_even_chunks_at_range_boundaries() {
        let mut s = SeriesData::default();
        // 15s scrapes over one full 2h range: 480 samples → 4 chunks of 120.
        for i in 0..480 {
            s.append(i * 15_000, i as f64, RANGE);
        }
        s.append(RANGE, 1.0, RANGE);
        assert_eq!(s.closed.len(), 4);
        for c in &s.closed {
            let n = decode_chunk(c).unwrap().len();
            assert_eq!(n, 120);
            assert!(c.max_time < RANGE);
        }
        assert_eq!(s.open.as_ref().unwrap().min_time(), Some(RANGE));
    }

    #[test]
    fn dense_samples_hit_the_hard_cap_or_byte_cap() {
        let mut s = SeriesData::default();
        let mut x = 1u64;
        for i in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            // Random values defeat XOR compression so the byte cap matters.
            s.append(i, f64::from_bits(x >> 2), RANGE);
        }
        s.close_open();
        let total: usize = s
            .closed
            .iter()
            .map(|c| decode_chunk(c).unwrap().len())
            .sum();
        assert_eq!(total, 5000);
        for c in &s.closed {
            assert!(c.data.len() <= MAX_XOR_CHUNK_BYTES, "{}", c.data.len());
            assert!(decode_chunk(c).unwrap().len() <= 2 * SAMPLES_PER_CHUNK);
        }
    }

    #[test]
    fn check_rules() {
        let last = Some((10, 1.0f64.to_bits()));
        assert_eq!(check(None, 5, 1.0), Check::Append);
        assert_eq!(check(last, 11, 1.0), Check::Append);
        assert_eq!(check(last, 9, 1.0), Check::OutOfOrder);
        assert_eq!(check(last, 10, 1.0), Check::Duplicate);
        assert_eq!(check(last, 10, 2.0), Check::DuplicateTimestamp);
    }

    #[test]
    fn range_end_handles_negative_times() {
        assert_eq!(range_end(0, 10), 10);
        assert_eq!(range_end(9, 10), 10);
        assert_eq!(range_end(-1, 10), 0);
        assert_eq!(range_end(-10, 10), 0);
    }
}
