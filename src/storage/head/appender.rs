//! Batched appends to the head. `add` validates against the series' committed state and the
//! batch so far and buffers; `commit` writes Series records for series never logged and one
//! Samples record to the WAL, and only then applies the batch to memory.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use super::series::{check, Check, MemSeries};
use super::{labels_hash, Head, HeadError, Result};
use crate::storage::model::Labels;
use crate::storage::wal::record::{encode_samples_iter, encode_series};
use crate::storage::wal::{RefSample, RefSeries};

struct Pending {
    series: Arc<MemSeries>,
    /// Newest sample of the batch for this series, or the committed one.
    last: Option<(i64, u64)>,
    /// `last` has its real value bits (a committed one may carry only its time).
    exact: bool,
}

impl Pending {
    fn new(series: Arc<MemSeries>, t: i64) -> Pending {
        let last = series.last_for(t);
        let exact = last.is_none_or(|(lt, _)| lt == t);
        Pending {
            series,
            last,
            exact,
        }
    }
}

/// An appender's buffers, recycled through the head's pool so that a steady stream of
/// batches does not regrow (and rehash) them every time.
#[derive(Default)]
pub(super) struct Buffers {
    pending: Vec<Pending>,
    by_ref: FxHashMap<u64, u32>,
    samples: Vec<(u32, i64, f64)>,
    wal_buf: Vec<u8>,
}

/// How many samples ahead a commit prefetches series state.
const PREFETCH_AHEAD: usize = 8;

/// Pooled buffers beyond this many are freed.
const POOL_MAX: usize = 32;

/// A batch of samples; dropped without `commit`, it is discarded (rollback).
pub struct HeadAppender<'a> {
    head: &'a Head,
    /// Oldest acceptable time, fixed when the appender is created (as Prometheus does), so
    /// `append` does not read the head's hot max-time for every sample.
    min_valid: i64,
    pending: Vec<Pending>,
    by_ref: FxHashMap<u64, u32>,
    samples: Vec<(u32, i64, f64)>,
    wal_buf: Vec<u8>,
}

impl Drop for HeadAppender<'_> {
    fn drop(&mut self) {
        self.pending.clear();
        self.by_ref.clear();
        self.samples.clear();
        let mut pool = self.head.appender_pool.lock();
        // A one-off huge batch should not pin its buffers.
        if pool.len() < POOL_MAX && self.samples.capacity() <= 1 << 16 {
            pool.push(Buffers {
                pending: std::mem::take(&mut self.pending),
                by_ref: std::mem::take(&mut self.by_ref),
                samples: std::mem::take(&mut self.samples),
                wal_buf: std::mem::take(&mut self.wal_buf),
            });
        }
    }
}

impl<'a> HeadAppender<'a> {
    pub(super) fn new(head: &'a Head) -> Self {
        let b = head.appender_pool.lock().pop().unwrap_or_default();
        HeadAppender {
            head,
            min_valid: head.appendable_min_valid_time(),
            pending: b.pending,
            by_ref: b.by_ref,
            samples: b.samples,
            wal_buf: b.wal_buf,
        }
    }

    /// Buffers one sample for the series with these labels.
    pub fn add(&mut self, labels: &Labels, t: i64, v: f64) -> Result<()> {
        self.append(0, labels, t, v).map(|_| ())
    }

    /// Like `add`, Prometheus-style: a non-zero `series_ref` from an earlier call skips the
    /// label lookup. Returns the series ref to pass next time.
    pub fn append(&mut self, series_ref: u64, labels: &Labels, t: i64, v: f64) -> Result<u64> {
        let head = self.head;
        if t < self.min_valid {
            head.stats.out_of_bounds.fetch_add(1, Ordering::Relaxed);
            return Err(HeadError::OutOfBounds);
        }
        let idx = match self.lookup_ref(series_ref, t) {
            Some(i) => i,
            None => {
                if labels.is_empty() {
                    return Err(HeadError::EmptyLabels);
                }
                let hash = labels_hash(labels);
                let series = head.get_or_create(labels, hash, None).0;
                let r = series.series_ref;
                match self.by_ref.get(&r) {
                    Some(&i) => i,
                    None => {
                        let i = self.pending.len() as u32;
                        self.by_ref.insert(r, i);
                        self.pending.push(Pending::new(series, t));
                        i
                    }
                }
            }
        };
        let p = &mut self.pending[idx as usize];
        if !p.exact && p.last.is_some_and(|(lt, _)| lt == t) {
            p.last = p.series.data.lock().last;
            p.exact = true;
        }
        match check(p.last, t, v) {
            Check::Append => {
                p.last = Some((t, v.to_bits()));
                p.exact = true;
                self.samples.push((idx, t, v));
                Ok(p.series.series_ref)
            }
            Check::Duplicate => Ok(p.series.series_ref),
            Check::OutOfOrder => {
                head.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                Err(HeadError::OutOfOrder)
            }
            Check::DuplicateTimestamp => {
                head.stats
                    .duplicate_timestamp
                    .fetch_add(1, Ordering::Relaxed);
                Err(HeadError::DuplicateTimestamp)
            }
        }
    }

    /// Like `append` for a series the caller keeps from `series`: skips the ref lookup.
    /// Returns the series ref, which differs from `series.series_ref` when the series was
    /// truncated away meanwhile and came back under a new ref (then `series` is stale).
    pub fn append_to(
        &mut self,
        series: &Arc<MemSeries>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<u64> {
        if series.is_removed() {
            return self.append(0, labels, t, v);
        }
        let r = series.series_ref;
        if !self.by_ref.contains_key(&r) && t >= self.min_valid {
            let i = self.pending.len() as u32;
            self.by_ref.insert(r, i);
            self.pending.push(Pending::new(series.clone(), t));
        }
        self.append(r, labels, t, v)
    }

    /// The head's series for a ref `append` returned, to keep for `append_to`.
    pub fn series(&self, series_ref: u64) -> Option<Arc<MemSeries>> {
        self.head.get_by_ref(series_ref)
    }

    /// The batch slot of series `series_ref` (0 = unknown), joining the batch if needed;
    /// `None` when the head has no such series.
    fn lookup_ref(&mut self, series_ref: u64, t: i64) -> Option<u32> {
        if series_ref == 0 {
            return None;
        }
        match self.by_ref.entry(series_ref) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                let series = self.head.get_by_ref(series_ref)?;
                let i = self.pending.len() as u32;
                e.insert(i);
                self.pending.push(Pending::new(series, t));
                Some(i)
            }
        }
    }

    /// Number of buffered samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Discards the batch.
    pub fn rollback(self) {}

    /// Logs the batch to the WAL (returning only after the write, and the fsync when
    /// configured), then applies it. Samples that became invalid because another appender
    /// committed newer data to the same series meanwhile are dropped and counted at apply
    /// time, as Prometheus does. Only WAL writes are serialised; applying runs in parallel.
    /// So replay rebuilds exactly the same head except when two appenders race on the same
    /// series and one sample loses (WAL order decides on replay, apply order in memory), a
    /// case Prometheus has too; one writer per series (the scrape-loop model) never hits it.
    pub fn commit(mut self) -> Result<()> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let head = self.head;
        // Encoding outside the commit lock lets other appenders' encoding overlap ours.
        self.wal_buf.clear();
        if head.wal().is_some()
            && self
                .samples
                .iter()
                .all(|&(_, t, _)| t >= head.min_valid_time())
        {
            encode_samples_iter(wal_samples(&self.pending, &self.samples), &mut self.wal_buf);
        }
        let seq = {
            let _gate = head.gate.read();
            self.commit_locked()?
        };
        // The fsync runs after the commit so that concurrent commits share it (group
        // commit); the batch is already visible to queries, but `commit` only returns once
        // it is durable.
        if let (Some(wal), Some(seq)) = (head.wal(), seq) {
            if wal.fsync_enabled() {
                wal.sync_upto(seq)?;
            }
        }
        Ok(())
    }

    /// The part of `commit` under the shared gate: WAL write (ordered, without fsync), then
    /// apply, which runs in parallel with other commits. Returns the WAL write's sequence
    /// number, if anything was written.
    fn commit_locked(&mut self) -> Result<Option<u64>> {
        let head = self.head;
        let min_valid = head.min_valid_time();

        // Series truncated away since `add` come back under a fresh ref (and the record
        // encoded above must then be redone).
        let mut resurrected = false;
        for p in self.pending.iter_mut() {
            if p.series.is_removed() {
                p.series = head
                    .get_or_create(&p.series.labels.to_labels(), p.series.hash, None)
                    .0;
                resurrected = true;
            }
        }
        let before = self.samples.len();
        if self.samples.iter().any(|&(_, t, _)| t < min_valid) {
            // The encoded record would carry samples we are about to drop.
            self.wal_buf.clear();
        }
        self.samples.retain(|&(_, t, _)| t >= min_valid);
        head.stats
            .out_of_bounds
            .fetch_add((before - self.samples.len()) as u64, Ordering::Relaxed);
        if self.samples.is_empty() {
            return Ok(None);
        }

        let mut seq = None;
        if let Some(wal) = head.wal() {
            if resurrected || self.wal_buf.is_empty() {
                self.wal_buf.clear();
                encode_samples_iter(wal_samples(&self.pending, &self.samples), &mut self.wal_buf);
            }
            let _order = head.wal_order.lock();
            let new_series: Vec<RefSeries> = self
                .pending
                .iter()
                .filter(|p| !p.series.logged.load(Ordering::Acquire))
                .map(|p| RefSeries {
                    series_ref: p.series.series_ref,
                    labels: p.series.labels.to_labels(),
                })
                .collect();
            if new_series.is_empty() {
                seq = Some(wal.write_encoded(&[&self.wal_buf])?);
            } else {
                let mut series_buf = Vec::new();
                encode_series(&new_series, &mut series_buf);
                seq = Some(wal.write_encoded(&[&series_buf, &self.wal_buf])?);
                for p in &self.pending {
                    p.series.logged.store(true, Ordering::Release);
                }
            }
        }

        let range = head.chunk_range();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut appended = 0u64;
        for (j, &(i, t, v)) in self.samples.iter().enumerate() {
            // Each sample's series state is likely out of cache; start loading a few ahead.
            if let Some(&(ahead, _, _)) = self.samples.get(j + PREFETCH_AHEAD) {
                self.pending[ahead as usize].series.prefetch_data();
            }
            let p = &self.pending[i as usize];
            match p.series.append_checked(t, v, range) {
                Check::Append => {
                    appended += 1;
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
                Check::Duplicate => {}
                Check::OutOfOrder => {
                    head.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                Check::DuplicateTimestamp => {
                    head.stats
                        .duplicate_timestamp
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if appended > 0 {
            head.note_time(lo);
            head.note_time(hi);
        }
        head.stats
            .samples_appended
            .fetch_add(appended, Ordering::Relaxed);
        Ok(seq)
    }
}

fn wal_samples<'b>(
    pending: &'b [Pending],
    samples: &'b [(u32, i64, f64)],
) -> impl Iterator<Item = RefSample> + 'b {
    samples.iter().map(|&(i, t, v)| RefSample {
        series_ref: pending[i as usize].series.series_ref,
        t,
        v,
    })
}
