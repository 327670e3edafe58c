//! The in-memory head block: series in striped hash maps (keyed by a label-set hash, with
//! collision lists) and by series ref, their chunks, the postings index, appenders that log to
//! the WAL before touching memory, WAL replay, and truncation once data is persisted to blocks.

mod appender;
mod cardinality;
mod labels;
mod postings;
mod query;
mod refmap;
pub mod series;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHasher};

pub use appender::HeadAppender;
pub use cardinality::{HeadCardinality, SeriesFootprint, Stat};
use postings::Postings;
use refmap::RefStripe;
use series::{Check, MemSeries};

use crate::storage::model::{EncodedChunk, Labels};
use crate::storage::wal::{Wal, WalError, WalRecord};

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("label set is empty")]
    EmptyLabels,
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
}

pub type Result<T> = std::result::Result<T, HeadError>;

pub const DEFAULT_CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// Lock stripes of the series maps (Prometheus uses 16384; a few hundred already spread
/// the lock traffic of many appenders well).
const STRIPES: usize = 512;

#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this (the block duration).
    pub chunk_range_ms: i64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range_ms: DEFAULT_CHUNK_RANGE_MS,
        }
    }
}

/// Counters, readable at any time.
#[derive(Debug, Default)]
pub struct HeadStats {
    pub samples_appended: AtomicU64,
    pub out_of_order: AtomicU64,
    pub duplicate_timestamp: AtomicU64,
    pub out_of_bounds: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
    /// Replayed samples whose series record was missing.
    pub replay_unknown_refs: AtomicU64,
}

/// Series by label-set hash; colliding label sets simply share a hash and are told apart
/// by comparing labels.
type HashStripe = hashbrown::HashTable<Arc<MemSeries>>;

pub struct Head {
    opts: HeadOptions,
    by_hash: Box<[RwLock<HashStripe>]>,
    by_ref: Box<[RwLock<RefStripe>]>,
    postings: RwLock<Postings>,
    next_ref: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples before this are rejected (they belong to persisted blocks).
    min_valid_time: AtomicI64,
    /// Commits hold it shared; truncation and raising the minimum valid time hold it
    /// exclusively, so they never interleave with a commit.
    gate: RwLock<()>,
    /// Orders WAL writes: held while a commit checks which of its series still need a Series
    /// record and writes its records, so a Series record always precedes its samples.
    wal_order: Mutex<()>,
    wal: Option<Arc<Wal>>,
    /// Refs of duplicate series records seen on replay → the ref kept for that label set.
    aliases: Mutex<FxHashMap<u64, u64>>,
    appender_pool: Mutex<Vec<appender::Buffers>>,
    stats: HeadStats,
}

pub fn labels_hash(labels: &Labels) -> u64 {
    let mut h = FxHasher::default();
    labels.hash(&mut h);
    h.finish()
}

/// Stripe and slot of a series ref: refs are sequential, so plain modulo spreads them evenly.
fn ref_slot(r: u64) -> (usize, u64) {
    ((r % STRIPES as u64) as usize, r / STRIPES as u64)
}

fn stripe(x: u64) -> usize {
    // Fx hashes are poor in the low bits for small inputs; mix before picking a stripe.
    ((x ^ (x >> 29) ^ (x >> 47)) as usize) % STRIPES
}

impl Head {
    pub fn new(opts: HeadOptions, wal: Option<Arc<Wal>>) -> Head {
        let by_hash = (0..STRIPES)
            .map(|_| RwLock::new(HashStripe::new()))
            .collect();
        let by_ref = (0..STRIPES)
            .map(|_| RwLock::new(RefStripe::default()))
            .collect();
        Head {
            opts,
            by_hash,
            by_ref,
            postings: RwLock::new(Postings::default()),
            next_ref: AtomicU64::new(1),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            gate: RwLock::new(()),
            wal_order: Mutex::new(()),
            wal,
            aliases: Mutex::new(FxHashMap::default()),
            appender_pool: Mutex::new(Vec::new()),
            stats: HeadStats::default(),
        }
    }

    pub fn set_wal(&mut self, wal: Arc<Wal>) {
        self.wal = Some(wal);
    }

    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.as_ref()
    }

    pub fn stats(&self) -> &HeadStats {
        &self.stats
    }

    pub fn chunk_range(&self) -> i64 {
        self.opts.chunk_range_ms
    }

    pub fn appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(self)
    }

    /// Smallest sample time in the head (`i64::MAX` when empty).
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Acquire)
    }

    /// Largest sample time in the head (`i64::MIN` when empty).
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Acquire)
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    /// Oldest time an appender accepts (Prometheus's `appendableMinValidTime`): nothing
    /// before the persisted range, and nothing more than half a chunk range behind the
    /// newest sample, so a range that is being cut into a block never gets new samples.
    pub fn appendable_min_valid_time(&self) -> i64 {
        let min_valid = self.min_valid_time();
        let max = self.max_time();
        if max == i64::MIN {
            return min_valid;
        }
        min_valid.max(max.saturating_sub(self.opts.chunk_range_ms / 2))
    }

    /// Rejects samples before `t` from now on (data up to there lives in blocks). Taken
    /// under the commit lock, so when this returns no commit still applies older samples.
    pub fn set_min_valid_time(&self, t: i64) {
        let _gate = self.gate.write();
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    pub fn num_series(&self) -> usize {
        self.by_ref.iter().map(|s| s.read().len()).sum()
    }

    fn note_time(&self, t: i64) {
        // Plain loads first: these lines are read by every appender, so avoid dirtying them
        // when nothing changes.
        if t < self.min_time.load(Ordering::Acquire) {
            self.min_time.fetch_min(t, Ordering::AcqRel);
        }
        if t > self.max_time.load(Ordering::Acquire) {
            self.max_time.fetch_max(t, Ordering::AcqRel);
        }
    }

    pub(crate) fn get_by_ref(&self, r: u64) -> Option<Arc<MemSeries>> {
        let (st, idx) = ref_slot(r);
        self.by_ref[st].read().get(idx).cloned()
    }

    pub(crate) fn get_by_labels(&self, labels: &Labels, hash: u64) -> Option<Arc<MemSeries>> {
        self.by_hash[stripe(hash)]
            .read()
            .find(hash, |s| s.hash == hash && s.labels.eq_labels(labels))
            .cloned()
    }

    /// Finds or creates the series; `with_ref` forces the ref (WAL replay).
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        hash: u64,
        with_ref: Option<u64>,
    ) -> (Arc<MemSeries>, bool) {
        if let Some(s) = self.get_by_labels(labels, hash) {
            return (s, false);
        }
        let series = {
            let mut map = self.by_hash[stripe(hash)].write();
            if let Some(s) = map.find(hash, |s| s.hash == hash && s.labels.eq_labels(labels)) {
                return (s.clone(), false);
            }
            let r = match with_ref {
                Some(r) => {
                    self.next_ref.fetch_max(r + 1, Ordering::AcqRel);
                    r
                }
                None => self.next_ref.fetch_add(1, Ordering::AcqRel),
            };
            let s = Arc::new(MemSeries::new(r, labels, hash, with_ref.is_some()));
            map.insert_unique(hash, s.clone(), |x| x.hash);
            s
        };
        let (st, idx) = ref_slot(series.series_ref);
        self.by_ref[st].write().insert(idx, series.clone());
        self.postings
            .write()
            .add(series.series_ref, series.labels.iter());
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
        (series, true)
    }

    fn remove_series(&self, s: &Arc<MemSeries>) {
        {
            let mut map = self.by_hash[stripe(s.hash)].write();
            if let Ok(entry) = map.find_entry(s.hash, |x| Arc::ptr_eq(x, s)) {
                entry.remove();
            }
        }
        let (st, idx) = ref_slot(s.series_ref);
        self.by_ref[st].write().remove(idx);
        self.postings.write().remove(s.series_ref, s.labels.iter());
        self.stats.series_removed.fetch_add(1, Ordering::Relaxed);
    }

    /// Every series, in no particular order.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let mut out = Vec::new();
        for s in self.by_ref.iter() {
            out.extend(s.read().values().cloned());
        }
        out
    }

    /// Is `r` (or the ref it was merged into on replay) a live series? Used to decide what a
    /// WAL checkpoint keeps.
    pub fn is_live_ref(&self, r: u64) -> bool {
        if self.get_by_ref(r).is_some() {
            return true;
        }
        let target = self.aliases.lock().get(&r).copied();
        target.is_some_and(|t| self.get_by_ref(t).is_some())
    }

    /// Applies one replayed WAL record (no re-logging). Bad samples are dropped and counted,
    /// as a replay must never fail on data the WAL accepted.
    pub fn replay_record(&self, rec: WalRecord) {
        match rec {
            WalRecord::Series(list) => {
                for rs in list {
                    let hash = labels_hash(&rs.labels);
                    let (s, created) = self.get_or_create(&rs.labels, hash, Some(rs.series_ref));
                    if !created && s.series_ref != rs.series_ref {
                        self.aliases.lock().insert(rs.series_ref, s.series_ref);
                    }
                }
            }
            WalRecord::Samples(list) => {
                let min_valid = self.min_valid_time();
                let mut last: Option<Arc<MemSeries>> = None;
                for rs in list {
                    if rs.t < min_valid {
                        continue;
                    }
                    let s = match &last {
                        Some(s) if s.series_ref == rs.series_ref => s.clone(),
                        _ => {
                            let r = self
                                .aliases
                                .lock()
                                .get(&rs.series_ref)
                                .copied()
                                .unwrap_or(rs.series_ref);
                            match self.get_by_ref(r) {
                                Some(s) => s,
                                None => {
                                    self.stats
                                        .replay_unknown_refs
                                        .fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                    };
                    let outcome = s.append_checked(rs.t, rs.v, self.opts.chunk_range_ms);
                    match outcome {
                        Check::Append => {
                            self.note_time(rs.t);
                            self.stats.samples_appended.fetch_add(1, Ordering::Relaxed);
                        }
                        Check::Duplicate => {}
                        Check::OutOfOrder => {
                            self.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                        }
                        Check::DuplicateTimestamp => {
                            self.stats
                                .duplicate_timestamp
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    last = Some(s);
                }
            }
        }
    }

    /// Chunks of every series that lie in `[mint, maxt)`, sorted by labels, for writing a
    /// block. Open chunks are included as snapshots. Chunks are cut at chunk-range
    /// boundaries, so with an aligned range no chunk straddles `maxt`.
    pub fn chunks_for_block(&self, mint: i64, maxt: i64) -> Vec<(Labels, Vec<EncodedChunk>)> {
        let mut out = Vec::new();
        for s in self.all_series() {
            let chunks: Vec<EncodedChunk> = s
                .data
                .lock()
                .chunks_in(mint, maxt - 1)
                .into_iter()
                .filter(|c| c.min_time >= mint && c.max_time < maxt)
                .collect();
            if !chunks.is_empty() {
                out.push((s.labels.to_labels(), chunks));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops everything before `mint` (now persisted in a block), removes series left
    /// empty, and rejects samples before `mint` from now on.
    pub fn truncate(&self, mint: i64) -> usize {
        let _gate = self.gate.write();
        self.min_valid_time.fetch_max(mint, Ordering::AcqRel);
        let mut removed = 0;
        let mut new_min = i64::MAX;
        for s in self.all_series() {
            let mut d = s.data.lock();
            if d.truncate_before(mint) {
                s.removed.store(true, Ordering::Release);
                drop(d);
                self.remove_series(&s);
                removed += 1;
            } else if let Some(m) = d.min_time() {
                new_min = new_min.min(m);
            }
        }
        if new_min == i64::MAX {
            self.min_time.store(i64::MAX, Ordering::Release);
            self.max_time.store(i64::MIN, Ordering::Release);
        } else {
            // Like Prometheus: the head now starts at the truncation point, so the next block
            // cut from it is range-aligned.
            self.min_time.store(mint.min(new_min), Ordering::Release);
        }
        let mut aliases = self.aliases.lock();
        aliases.retain(|_, t| {
            let (st, idx) = ref_slot(*t);
            self.by_ref[st].read().contains(idx)
        });
        removed
    }
}

#[cfg(test)]
mod tests;
