//! Merging and HA replica deduplication of series, the pure (no I/O, no async) core shared by
//! the QueryPlanner's read path (`query::fanout`) and the Compactor's vertical compaction of
//! replica blocks; it depends on storage types only. `merge_sources` joins the series that
//! several sources returned for one query; `dedup_replicas` (query path) and
//! `dedup_chunk_replicas` (compaction) collapse HA replicas (series that differ only by the
//! configured replica labels) into one series with the gap-fill rule below, the query path
//! optionally with the counter adjustment that keeps `rate`/`increase` free of false resets
//! across a switch. `dedup_samples` is the sample-level core of both.
//!
//! **Gap fill** (replaces Thanos's penalty algorithm, `pkg/dedup/iter.go`). Replicas are
//! folded pairwise in the given order, `dedup(dedup(r0, r1), r2)…`; for one pair:
//! - *Interval.* `I` is the local scrape interval: each replica's real samples are cut into
//!   segments of 32 to 63 deltas, a segment's estimate is the lower quartile of its deltas
//!   (robust to missed scrapes and a few outliers), and `I` at time `t` is the smallest
//!   estimate among the original replicas' segments covering `t` (a segment covers from its
//!   first sample to the next segment's; the first and last also cover before and after).
//!   Estimates come from the original replicas, never from a merged stream. When no replica
//!   has two samples, `I` is `FALLBACK_INTERVAL_MS` (10 s).
//! - *Start.* The output starts with the replica whose first sample is earliest (ties go to
//!   the first), which becomes the current replica.
//! - *Run.* The current replica's samples are emitted one after the other; the other's
//!   samples in between are duplicates and skipped, whatever their offset, so offset replicas
//!   never double the sample rate.
//! - *Gap.* After an emitted sample `c` of the current replica, there is a gap when its next
//!   sample `n` is more than `1.5 × I` later, or when it has no next sample.
//! - *Tolerance and fill.* At a gap, the other replica's samples less than `I/2` after `c`
//!   are duplicates of `c`, and those `I/2` or less before `n` are duplicates of `n`. If the
//!   other replica's first sample at least `I/2` after `c` is more than `I/2` before `n` (or
//!   there is no `n`), the output switches to it and the other replica becomes the current
//!   one (like Thanos, the output stays on the replica it switched to until that one has a
//!   gap); otherwise the other replica has nothing in the gap and the output continues at `n`.
//! - *Ambiguous fill.* One exception to the last clause: when no sample qualifies but the
//!   other replica has more samples strictly inside the gap than the gap has missed scrapes
//!   (`round((n − c) / I) − 1`), one of them is not a duplicate although each lies within
//!   `I/2` of an end. That happens when the replicas are offset by about half an interval
//!   and jitter puts the other's samples on both sides of the `I/2` line; the output then
//!   switches to the one farthest from both `c` and `n` (the earliest on ties).
//!
//! Consequences (checked by `tests/dedup_props.rs`): replicas with coinciding timestamps
//! (same scrape offset, data written twice, or within `I/2` of each other, e.g. jitter) give
//! back every sample either had; for regular replicas offset by a fraction `f` of the
//! interval, each sample pairs with the other replica's nearest sample and exactly one of
//! every pair that has a member is emitted (for `f` exactly 0.5 the nearest sample is
//! ambiguous, the `≥`/`>` above decide). Every output sample is a sample one replica had
//! (before the counter adjustment), and the output has a gap of more than about `1.5 × I`
//! only where every replica has one. Known limit: where the replicas strictly alternate for a
//! whole segment (every scrape in exactly one replica, no two consecutive in either), the data
//! is indistinguishable from two replicas scraping every `2 × I` half an interval apart, and
//! only one replica's samples are kept.
//!
//! Differences from Thanos and why: Thanos gives the side not chosen a penalty of twice the
//! last delta (5 s before the first sample) and seeks it past `last + penalty`, so after
//! every switch it drops up to two intervals of the replica switched to. With coinciding
//! timestamps those are exactly the samples that fill the hole (A = 0,15,30,_,_,75 s and
//! B = 0..75 s every 15 s gave 0,15,30,75 s, losing 45 and 60), and `count_over_time`,
//! `min_over_time`, `increase` then differ from Prometheus on the complete data. Here the
//! skipped region is half an interval instead, and the gap test uses a local interval
//! estimate instead of the last delta (Thanos's `initialPenalty` of 5 s survives only as
//! half the fallback interval). Thanos's start (the smaller first timestamp) and its
//! stickiness (stay on the replica switched to) are kept.
//!
//! Rules this module decides, beyond what Thanos documents:
//! - **Real resets.** Thanos's counter adjustment lifts a replica whenever a switch to it would
//!   make the counter go down, which also hides a real counter reset that happens to coincide
//!   with a switch. Here a drop on a switch is kept as a reset when the replica switched to saw
//!   a drop in its own samples since the emitted sample before the last (samples skipped as
//!   duplicates included) and that drop is newer than the last reset already emitted;
//!   otherwise the drop is a replica artefact (scrape offset, timestamp jitter) and is
//!   adjusted away. A replica with no earlier sample gives no evidence, so it is adjusted, as
//!   in Thanos. A drop without a switch is always a reset. When a reset is emitted every
//!   adjustment is cleared, so values after it are the raw counter (an adjustment carried
//!   over a reset would inflate `increase` by its size). Known limit: replicas whose
//!   value-versus-timestamp skew exceeds a scrape interval can still be misjudged.
//! - **Staleness markers.** The gap-fill rule runs over real samples only (markers take no
//!   part in the interval estimate either). A replica's staleness marker is put back into the
//!   output only when, at its timestamp, every replica of the group has stopped (its latest
//!   sample is a marker, is older than the 5 minute lookback, or it has no sample yet), so a
//!   marker from one replica never ends a series that another replica continues, while a
//!   series that really ended everywhere still ends.
//! - **Compaction** (`dedup_chunk_replicas`, or `dedup_samples(.., false)` + `encode_chunks`)
//!   uses the same rule without the counter adjustment: stored data keeps the raw values a
//!   replica scraped (the adjustment is a read-time view that depends on the query). A
//!   counter whose replicas disagree in value (scrape offset, value skew) can therefore show
//!   a drop at a switch point of a compacted series, as with Thanos's penalty compaction.

use std::cell::Cell;

use crate::storage::chunkenc::{ChunkError, SeriesIterator, XorAppender};
use crate::storage::model::{is_stale_nan, EncodedChunk, Labels, Sample, Series};

/// Samples per re-encoded chunk, the size Prometheus cuts.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// How long a replica counts as alive after its last real sample when deciding whether a
/// staleness marker ends the deduplicated series (Prometheus's default lookback delta).
pub const STALENESS_LOOKBACK_MS: i64 = 300_000;

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("cannot decode the chunks of replica {replica} of a series: {source}")]
    DecodeReplica {
        replica: usize,
        #[source]
        source: ChunkError,
    },
    #[error("cannot re-encode the deduplicated samples of a series' replicas: {source}")]
    EncodeReplicas {
        #[source]
        source: ChunkError,
    },
    #[error("cannot decode the chunks of series {series}: {source}")]
    Decode {
        series: String,
        #[source]
        source: ChunkError,
    },
    #[error("cannot re-encode the deduplicated samples of series {series}: {source}")]
    Encode {
        series: String,
        #[source]
        source: ChunkError,
    },
}

pub type Result<T> = std::result::Result<T, DedupError>;

/// Merges the series that several sources returned into one list sorted by labels, one entry
/// per distinct label set. Chunks of the same series are concatenated, exact duplicate chunks
/// (the same block served twice) are dropped, and the rest are ordered by time; overlapping
/// chunks stay for `SeriesIterator` to merge sample by sample. Parts are expected sorted by
/// labels, but an unsorted part is still merged correctly (only more slowly).
pub fn merge_sources(parts: Vec<Vec<Series>>) -> Vec<Series> {
    let mut all: Vec<Series> = parts.into_iter().flatten().collect();
    // A stable sort of concatenated sorted runs is a run merge; equal label sets keep source
    // order, so a later source's chunk stays later and wins exact-timestamp ties downstream.
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for s in all {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => last.chunks.extend(s.chunks),
            _ => out.push(s),
        }
    }
    for s in &mut out {
        normalize_chunks(&mut s.chunks);
    }
    out
}

/// Sorts chunks by time range (stable) and removes exact duplicates.
pub(crate) fn normalize_chunks(chunks: &mut Vec<EncodedChunk>) {
    // Strictly increasing ranges (the usual case) are sorted and cannot hold a duplicate.
    let ordered = chunks
        .windows(2)
        .all(|w| (w[0].min_time, w[0].max_time) < (w[1].min_time, w[1].max_time));
    if ordered {
        return;
    }
    chunks.sort_by(|a, b| {
        a.min_time
            .cmp(&b.min_time)
            .then(a.max_time.cmp(&b.max_time))
    });
    let mut kept: Vec<EncodedChunk> = Vec::with_capacity(chunks.len());
    let mut run_start = 0;
    for c in chunks.drain(..) {
        let same_range = kept
            .last()
            .is_some_and(|k| k.min_time == c.min_time && k.max_time == c.max_time);
        if !same_range {
            run_start = kept.len();
        }
        // Duplicates share a time range, so only the current run needs checking.
        let dup = kept.get(run_start..).is_some_and(|run| run.contains(&c));
        if !dup {
            kept.push(c);
        }
    }
    *chunks = kept;
}

/// Deduplicates HA replicas. The replica labels are removed from every series; series whose
/// remaining labels are identical are replicas of one series and are merged with the gap-fill
/// rule (see the module docs and `dedup_samples`), their samples re-encoded into XOR chunks of at most
/// `MAX_SAMPLES_PER_CHUNK` samples. A group with one replica keeps its chunks untouched.
/// Series without any replica label simply keep their labels (and join a group whose stripped
/// labels equal theirs). Set `counter_adjust` for `rate`, `increase`, `irate` and `resets`.
/// The output is sorted by labels; replicas are folded in label order, so it is deterministic.
pub fn dedup_replicas(
    series: Vec<Series>,
    replica_labels: &[String],
    counter_adjust: bool,
) -> Result<Vec<Series>> {
    let names: Vec<&str> = replica_labels.iter().map(String::as_str).collect();
    let mut keyed: Vec<(Labels, Series)> = series
        .into_iter()
        .map(|s| (s.labels.without(&names), s))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.labels.cmp(&b.1.labels)));

    let mut out = Vec::new();
    let mut group: Vec<Series> = Vec::new();
    let mut key: Option<Labels> = None;
    for (k, s) in keyed {
        if key.as_ref().is_some_and(|cur| *cur != k) {
            if let Some(done) = key.take() {
                out.push(dedup_group(
                    done,
                    std::mem::take(&mut group),
                    counter_adjust,
                )?);
            }
        }
        key = Some(k);
        push_replica(&mut group, s);
    }
    if let Some(done) = key {
        out.push(dedup_group(done, group, counter_adjust)?);
    }
    Ok(out)
}

/// Adds a series to its group; an entry with the same full label set is the same replica
/// (e.g. not merged upstream), so its chunks are joined rather than treated as a new replica.
fn push_replica(group: &mut Vec<Series>, s: Series) {
    match group.last_mut() {
        Some(last) if last.labels == s.labels => {
            last.chunks.extend(s.chunks);
            normalize_chunks(&mut last.chunks);
        }
        _ => group.push(s),
    }
}

fn dedup_group(labels: Labels, mut replicas: Vec<Series>, counter_adjust: bool) -> Result<Series> {
    if replicas.len() == 1 {
        if let Some(only) = replicas.pop() {
            return Ok(Series {
                labels,
                chunks: only.chunks,
            });
        }
    }
    if replicas.iter().any(|r| {
        r.chunks
            .iter()
            .any(|c| c.encoding == crate::storage::downsample::CHUNK_ENC_AGGR)
    }) {
        return Ok(Series {
            labels,
            chunks: fill_chunks(replicas),
        });
    }
    let mut decoded = Vec::with_capacity(replicas.len());
    for r in replicas {
        let samples = decode_series(r.chunks).map_err(|source| DedupError::Decode {
            series: r.labels.to_string(),
            source,
        })?;
        decoded.push(samples);
    }
    let samples = dedup_samples(&decoded, counter_adjust);
    let chunks = encode_chunks(&samples).map_err(|source| DedupError::Encode {
        series: labels.to_string(),
        source,
    })?;
    Ok(Series { labels, chunks })
}

/// Gap fill at chunk granularity, for replicas with downsampled chunks (five aggregates per
/// chunk, which sample-level gap fill cannot merge): the replica covering the most time
/// answers, and another replica's chunk fills in wherever it overlaps no chunk kept so far
/// (a replica whose block was never downsampled or was deleted, say). The engine decodes the
/// aggregate it needs later.
fn fill_chunks(mut replicas: Vec<Series>) -> Vec<EncodedChunk> {
    let span = |r: &Series| -> i64 {
        r.chunks
            .iter()
            .map(|c| c.max_time.saturating_sub(c.min_time))
            .sum()
    };
    // Stable: among equal spans the replica first in label order leads, deterministically.
    replicas.sort_by_key(|r| std::cmp::Reverse(span(r)));
    // Kept chunks never overlap, so sorted by start they are sorted by end too.
    let mut kept: Vec<EncodedChunk> = Vec::new();
    for r in replicas {
        for c in r.chunks {
            let at = kept.partition_point(|k| k.max_time < c.min_time);
            if kept.get(at).is_some_and(|k| k.min_time <= c.max_time) {
                continue;
            }
            kept.insert(at, c);
        }
    }
    kept
}

fn decode_series(chunks: Vec<EncodedChunk>) -> std::result::Result<Vec<Sample>, ChunkError> {
    let mut it = SeriesIterator::new(chunks);
    let mut out = Vec::new();
    while let Some(s) = it.next()? {
        out.push(s);
    }
    Ok(out)
}

/// Cuts samples (strictly increasing timestamps) into XOR chunks of at most
/// `MAX_SAMPLES_PER_CHUNK` samples each.
pub fn encode_chunks(samples: &[Sample]) -> std::result::Result<Vec<EncodedChunk>, ChunkError> {
    let mut chunks = Vec::with_capacity(samples.len().div_ceil(MAX_SAMPLES_PER_CHUNK));
    for part in samples.chunks(MAX_SAMPLES_PER_CHUNK) {
        let mut app = XorAppender::new();
        for s in part {
            app.try_append(s.t, s.v)?;
        }
        if let Some(c) = app.to_encoded() {
            chunks.push(c);
        }
    }
    Ok(chunks)
}

/// Deduplicates the sample streams of one series' replicas (each strictly increasing in time):
/// staleness markers are set aside, the real samples are folded pairwise in the given order
/// (`dedup(dedup(r0, r1), r2)`) with the gap-fill rule of the module docs, and markers are
/// restored where every replica had stopped. Output timestamps are strictly increasing.
///
/// With `counter_adjust` the values are lifted across replica switches so that a counter does
/// not show a false reset (for `rate`, `increase`, `irate`, `resets`); without it every
/// output sample is a sample one replica really had, value bits included, which is what
/// stored data needs (vertical compaction calls this with `false`, then `encode_chunks`).
pub fn dedup_samples(replicas: &[Vec<Sample>], counter_adjust: bool) -> Vec<Sample> {
    let real: Vec<Vec<Sample>> = replicas
        .iter()
        .map(|r| r.iter().copied().filter(|s| !is_stale_nan(s.v)).collect())
        .collect();
    let merged = if let [first, second, rest @ ..] = real.as_slice() {
        let intervals = Intervals::new(&real);
        let mut acc = merge_pair(first, second, counter_adjust, &intervals);
        for r in rest {
            acc = merge_pair(&acc, r, counter_adjust, &intervals);
        }
        acc
    } else {
        real.into_iter().next().unwrap_or_default()
    };
    restore_staleness(merged, replicas)
}

/// Deduplicates the chunks of one series' HA replicas for vertical compaction: each replica's
/// chunks (in any order, possibly overlapping) are decoded, the samples are deduplicated by
/// `dedup_samples` without counter adjustment (stored data keeps the raw values; staleness
/// markers follow the module rules) and re-encoded into XOR chunks of at most
/// `MAX_SAMPLES_PER_CHUNK` samples. Replicas without chunks are ignored; a single replica
/// whose chunks are already ordered and disjoint is returned as it is, without re-encoding.
/// Replicas are folded in the given order, so pass them in a deterministic order (e.g. by
/// block ULID or replica label) to get reproducible blocks.
pub fn dedup_chunk_replicas(replicas: Vec<Vec<EncodedChunk>>) -> Result<Vec<EncodedChunk>> {
    let mut replicas: Vec<Vec<EncodedChunk>> =
        replicas.into_iter().filter(|r| !r.is_empty()).collect();
    if replicas.len() == 1 {
        if let Some(mut only) = replicas.pop() {
            normalize_chunks(&mut only);
            if only.windows(2).all(|w| w[0].max_time < w[1].min_time) {
                return Ok(only);
            }
            replicas.push(only);
        }
    }
    let mut decoded = Vec::with_capacity(replicas.len());
    for (replica, chunks) in replicas.into_iter().enumerate() {
        let samples = decode_series(chunks)
            .map_err(|source| DedupError::DecodeReplica { replica, source })?;
        decoded.push(samples);
    }
    let samples = dedup_samples(&decoded, false);
    encode_chunks(&samples).map_err(|source| DedupError::EncodeReplicas { source })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One emitted sample: which side and its index there.
#[derive(Clone, Copy, Debug)]
struct Pick {
    side: Side,
    idx: usize,
}

fn merge_pair(
    a: &[Sample],
    b: &[Sample],
    counter_adjust: bool,
    intervals: &Intervals,
) -> Vec<Sample> {
    let picks = gap_fill_picks(a, b, &mut intervals.cursor());
    if counter_adjust {
        return adjust_counter(a, b, &picks);
    }
    picks
        .iter()
        .filter_map(|p| side_of(a, b, p.side).get(p.idx).copied())
        .collect()
}

fn side_of<'a>(a: &'a [Sample], b: &'a [Sample], side: Side) -> &'a [Sample] {
    match side {
        Side::A => a,
        Side::B => b,
    }
}

/// Real-sample deltas per segment of a replica's interval estimate (a segment holds between
/// this many and twice as many deltas, or all of them when the replica has fewer).
const INTERVAL_SEGMENT_DELTAS: usize = 32;

/// Interval assumed when no replica has two real samples, so none can be measured: twice
/// Thanos's 5 s `initialPenalty`, i.e. samples within 5 s of each other are duplicates.
pub const FALLBACK_INTERVAL_MS: i64 = 10_000;

/// The local scrape interval of a replica group, estimated from the replicas' own samples
/// (never from a merged stream, whose switch points have short deltas). Each replica's
/// samples are cut into segments of `INTERVAL_SEGMENT_DELTAS`..`2*INTERVAL_SEGMENT_DELTAS`
/// deltas and each segment's estimate is the lower quartile of its deltas, so missed scrapes
/// (long deltas) up to three quarters of a segment and a few outliers do not move it. The
/// interval at time `t` is the smallest estimate among the replicas' segments covering `t`.
///
/// Only gaps need the estimate itself; every other step needs to know that a delta is not a
/// gap, which the segments' smallest deltas (a lower bound of the estimate) tell for free.
/// Quartiles are therefore computed on first use.
struct Intervals<'a> {
    replicas: &'a [Vec<Sample>],
    /// Per replica, its segments in time order.
    segments: Vec<Vec<Segment>>,
}

struct Segment {
    /// Time of the segment's first sample.
    start: i64,
    /// Sample indices: the segment's deltas are those between samples `lo..=hi`.
    lo: usize,
    hi: usize,
    /// The smallest delta (at least 1 ms).
    min: i64,
    /// The lower quartile of the deltas once computed, 0 before.
    quartile: Cell<i64>,
}

impl<'a> Intervals<'a> {
    fn new(replicas: &'a [Vec<Sample>]) -> Intervals<'a> {
        let segments = replicas.iter().map(|r| replica_segments(r)).collect();
        Intervals { replicas, segments }
    }

    fn cursor(&self) -> IntervalCursor<'_, 'a> {
        let mut cursor = IntervalCursor {
            intervals: self,
            pos: vec![0; self.segments.len()],
            until: i64::MIN,
            lower: FALLBACK_INTERVAL_MS,
            exact: None,
        };
        cursor.refresh();
        cursor
    }

    /// The lower quartile of a segment's deltas, computed on first use.
    fn quartile(&self, replica: usize, seg: &Segment) -> i64 {
        let known = seg.quartile.get();
        if known > 0 {
            return known;
        }
        let mut buf = [0i64; 2 * INTERVAL_SEGMENT_DELTAS];
        let samples = self
            .replicas
            .get(replica)
            .and_then(|r| r.get(seg.lo..=seg.hi))
            .unwrap_or_default();
        let mut n = 0;
        for (slot, w) in buf.iter_mut().zip(samples.windows(2)) {
            *slot = delta(w[0].t, w[1].t);
            n += 1;
        }
        let deltas = buf.get_mut(..n).unwrap_or_default();
        let q = deltas.len() / 4;
        let est = if q < deltas.len() {
            *deltas.select_nth_unstable(q).1
        } else {
            seg.min
        };
        seg.quartile.set(est);
        est
    }
}

/// A delta between consecutive samples, at least 1 ms.
fn delta(from: i64, to: i64) -> i64 {
    to.saturating_sub(from).max(1)
}

fn replica_segments(r: &[Sample]) -> Vec<Segment> {
    let deltas = r.len().saturating_sub(1);
    if deltas == 0 {
        return Vec::new();
    }
    let n = (deltas / INTERVAL_SEGMENT_DELTAS).max(1);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        // Delta j is between samples j and j + 1; a segment has fewer than 64 deltas.
        let (lo, hi) = (k * deltas / n, (k + 1) * deltas / n);
        let Some(part) = r.get(lo..=hi) else {
            continue;
        };
        let min = part
            .windows(2)
            .map(|w| delta(w[0].t, w[1].t))
            .min()
            .unwrap_or(FALLBACK_INTERVAL_MS);
        out.push(Segment {
            start: part.first().map_or(i64::MIN, |s| s.t),
            lo,
            hi,
            min,
            quartile: Cell::new(0),
        });
    }
    out
}

/// Looks up `Intervals` at non-decreasing times in amortised constant time.
struct IntervalCursor<'i, 'a> {
    intervals: &'i Intervals<'a>,
    /// Per replica, the index of its segment covering the current time.
    pos: Vec<usize>,
    /// The current segments cover times before this one.
    until: i64,
    /// The smallest `min` of the current segments: a lower bound of the interval.
    lower: i64,
    /// The interval of the current segments once computed.
    exact: Option<i64>,
}

impl IntervalCursor<'_, '_> {
    /// Moves to the segments covering `t`; `t` must not decrease between calls.
    fn seek(&mut self, t: i64) {
        if t < self.until {
            return;
        }
        for (segs, pos) in self.intervals.segments.iter().zip(self.pos.iter_mut()) {
            while segs.get(*pos + 1).is_some_and(|s| s.start <= t) {
                *pos += 1;
            }
        }
        self.refresh();
    }

    fn refresh(&mut self) {
        let (mut until, mut lower) = (i64::MAX, None::<i64>);
        for (segs, pos) in self.intervals.segments.iter().zip(&self.pos) {
            if let Some(next) = segs.get(*pos + 1) {
                until = until.min(next.start);
            }
            if let Some(seg) = segs.get(*pos) {
                lower = Some(lower.map_or(seg.min, |l| l.min(seg.min)));
            }
        }
        self.until = until;
        self.lower = lower.unwrap_or(FALLBACK_INTERVAL_MS).max(1);
        self.exact = None;
    }

    /// A lower bound of the interval at `t`.
    fn lower_bound(&mut self, t: i64) -> i64 {
        self.seek(t);
        self.lower
    }

    /// The interval at `t` (at least 1 ms).
    fn at(&mut self, t: i64) -> i64 {
        self.seek(t);
        if let Some(known) = self.exact {
            return known;
        }
        let mut best: Option<i64> = None;
        for (replica, (segs, pos)) in self.intervals.segments.iter().zip(&self.pos).enumerate() {
            if let Some(seg) = segs.get(*pos) {
                let est = self.intervals.quartile(replica, seg);
                best = Some(best.map_or(est, |b| b.min(est)));
            }
        }
        let exact = best.unwrap_or(FALLBACK_INTERVAL_MS).max(1);
        self.exact = Some(exact);
        exact
    }
}

/// `to - from > 1.5 * interval`: a replica with consecutive samples this far apart missed at
/// least one scrape between them.
fn is_gap(from: i64, to: i64, interval: i64) -> bool {
    2 * (i128::from(to) - i128::from(from)) > 3 * i128::from(interval)
}

/// `to - from >= interval / 2`, exactly: a sample at `to` is not a duplicate of one at `from`.
fn half_or_more(from: i64, to: i64, interval: i64) -> bool {
    2 * (i128::from(to) - i128::from(from)) >= i128::from(interval)
}

/// `to - from > interval / 2`, exactly: a sample at `from` is not a duplicate of one at `to`.
fn more_than_half(from: i64, to: i64, interval: i64) -> bool {
    2 * (i128::from(to) - i128::from(from)) > i128::from(interval)
}

/// The gap-fill rule (see the module docs): which sample of `a` or `b` is emitted next. The
/// current replica's samples are emitted in order; at a gap of it (or after its last sample)
/// the other replica takes over from its first sample at least half an interval after the
/// last emitted one, provided that sample is more than half an interval before the current
/// replica's next sample (otherwise the other replica has nothing in the gap either). Only
/// timestamps matter here; values are handled by the caller.
fn gap_fill_picks(a: &[Sample], b: &[Sample], intervals: &mut IntervalCursor<'_, '_>) -> Vec<Pick> {
    let mut picks = Vec::with_capacity(a.len().max(b.len()));
    // Start with the replica that starts first (ties go to A).
    let mut side = match (a.first(), b.first()) {
        (Some(x), Some(y)) if y.t < x.t => Side::B,
        (Some(_), _) => Side::A,
        (None, Some(_)) => Side::B,
        (None, None) => return picks,
    };
    let (mut idx, mut other_idx) = (0usize, 0usize);
    loop {
        let cur = side_of(a, b, side);
        let Some(c) = cur.get(idx) else {
            break;
        };
        picks.push(Pick { side, idx });
        let next = cur.get(idx + 1);
        // The lower bound rules most deltas out without computing the interval.
        let lower = intervals.lower_bound(c.t);
        let interval = match next {
            Some(n) if !is_gap(c.t, n.t, lower) => None,
            _ => Some(intervals.at(c.t)),
        };
        if let Some(interval) = interval.filter(|iv| next.is_none_or(|n| is_gap(c.t, n.t, *iv))) {
            let other = side_of(a, b, side.other());
            // Samples of the other replica within half an interval after `c` duplicate it.
            while other
                .get(other_idx)
                .is_some_and(|x| !half_or_more(c.t, x.t, interval))
            {
                other_idx += 1;
            }
            let fill = match (other.get(other_idx), next) {
                (None, _) => None,
                (Some(_), None) => Some(other_idx),
                // Within half an interval before `next`, it duplicates `next`.
                (Some(x), Some(n)) if more_than_half(x.t, n.t, interval) => Some(other_idx),
                (Some(_), Some(n)) => ambiguous_fill(other, other_idx, c.t, n.t, interval),
            };
            if let Some(fill) = fill {
                // Switch: the other replica becomes the current one from this sample on.
                let resume = idx + 1;
                side = side.other();
                idx = fill;
                other_idx = resume;
                continue;
            }
        }
        idx += 1;
    }
    picks
}

/// The fill of a gap `(c, n)` of the current replica when no sample of `other` is at least
/// half an interval from both ends: if `other` still has more samples strictly inside the
/// gap than the gap has missed scrapes (`round((n - c) / interval) - 1`), one of them is not
/// a duplicate although each lies within half an interval of an end (an offset close to half
/// an interval, with jitter), so the one farthest from both ends (the earliest on ties) fills.
/// `from` is the first index of `other` at least half an interval after `c`.
fn ambiguous_fill(other: &[Sample], from: usize, c: i64, n: i64, interval: i64) -> Option<usize> {
    let mut first = from;
    while first > 0 && other.get(first - 1).is_some_and(|x| x.t > c) {
        first -= 1;
    }
    let (gap, iv) = (i128::from(n) - i128::from(c), i128::from(interval));
    let missed = (2 * gap + iv) / (2 * iv) - 1;
    let mut count = 0i128;
    let mut best: Option<(usize, i128)> = None;
    for (i, x) in other.iter().enumerate().skip(first) {
        if x.t >= n {
            break;
        }
        count += 1;
        let slack = (i128::from(x.t) - i128::from(c)).min(i128::from(n) - i128::from(x.t));
        if best.is_none_or(|(_, b)| slack > b) {
            best = Some((i, slack));
        }
    }
    best.filter(|_| count > missed).map(|(i, _)| i)
}

/// Applies the counter adjustment to the picked samples; the rule is in the module docs.
fn adjust_counter(a: &[Sample], b: &[Sample], picks: &[Pick]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(picks.len());
    let mut adj = [0.0f64; 2];
    // Side, timestamp and value of the last emitted sample.
    let mut last: Option<(Side, i64, f64)> = None;
    let mut before_last_t: Option<i64> = None;
    let mut last_reset_t: Option<i64> = None;
    for p in picks {
        let src = side_of(a, b, p.side);
        let Some(cur) = src.get(p.idx).copied() else {
            continue;
        };
        let k = match p.side {
            Side::A => 0,
            Side::B => 1,
        };
        // Adding a zero adjustment could still rewrite a NaN payload; leave those bits alone.
        let mut v = if adj[k] == 0.0 { cur.v } else { cur.v + adj[k] };
        let reset = match last {
            // Consecutive picks of one side are consecutive samples of it (a replica's run is
            // never interrupted), so any drop is the replica's own and a real reset.
            Some((side, _, last_v)) if side == p.side => v < last_v,
            Some((_, last_t, last_v)) if v < last_v => {
                // Scan from the emitted sample before the last one: a replica whose values lag
                // its timestamps may show the reset slightly before the last emitted time.
                let since = before_last_t.unwrap_or(last_t);
                if saw_unshown_reset(src, p.idx, since, last_reset_t) {
                    true
                } else {
                    adj[k] += last_v - v;
                    v = last_v;
                    false
                }
            }
            _ => false,
        };
        if reset {
            adj = [0.0; 2];
            v = cur.v;
            last_reset_t = Some(cur.t);
        }
        out.push(Sample { t: cur.t, v });
        before_last_t = last.map(|l| l.1);
        last = Some((p.side, cur.t, v));
    }
    out
}

/// Did replica `r`, between its last sample at or before `since` and its sample `idx`, see a
/// counter drop that is not the reset already emitted at `shown`?
/// The samples skipped as duplicates are looked at too: the drop may sit among them.
fn saw_unshown_reset(r: &[Sample], idx: usize, since: i64, shown: Option<i64>) -> bool {
    let mut j = idx;
    while j >= 1 {
        let (Some(prev), Some(cur)) = (r.get(j - 1), r.get(j)) else {
            break;
        };
        if cur.t <= since {
            break;
        }
        if cur.v < prev.v && shown.is_none_or(|s| s <= prev.t) {
            return true;
        }
        j -= 1;
    }
    false
}

/// True when `r` has stopped at time `t`: its latest sample at or before `t` is a staleness
/// marker or older than the lookback, or it has none.
fn stopped_at(r: &[Sample], t: i64) -> bool {
    let n = r.partition_point(|s| s.t <= t);
    match n.checked_sub(1).and_then(|i| r.get(i)) {
        None => true,
        Some(s) => is_stale_nan(s.v) || t.saturating_sub(s.t) > STALENESS_LOOKBACK_MS,
    }
}

/// Puts back at most one staleness marker per gap of `out`, at the first marker timestamp in
/// the gap where every replica had stopped.
fn restore_staleness(out: Vec<Sample>, replicas: &[Vec<Sample>]) -> Vec<Sample> {
    let mut marks: Vec<i64> = replicas
        .iter()
        .flat_map(|r| r.iter().filter(|s| is_stale_nan(s.v)).map(|s| s.t))
        .collect();
    if marks.is_empty() {
        return out;
    }
    marks.sort_unstable();
    marks.dedup();
    let mut inserts: Vec<(usize, i64)> = Vec::new();
    for t in marks {
        let pos = out.partition_point(|s| s.t < t);
        // A marker before any sample ends nothing; one on an emitted timestamp is superseded.
        if pos == 0 || out.get(pos).is_some_and(|s| s.t == t) {
            continue;
        }
        if inserts.last().is_some_and(|&(p, _)| p == pos) {
            continue;
        }
        if replicas.iter().all(|r| stopped_at(r, t)) {
            inserts.push((pos, t));
        }
    }
    if inserts.is_empty() {
        return out;
    }
    let stale = crate::storage::model::stale_nan();
    let mut merged = Vec::with_capacity(out.len() + inserts.len());
    let mut next = inserts.iter().peekable();
    for (i, s) in out.into_iter().enumerate() {
        while let Some(&&(pos, t)) = next.peek() {
            if pos != i {
                break;
            }
            merged.push(Sample { t, v: stale });
            next.next();
        }
        merged.push(s);
    }
    for &(_, t) in next {
        merged.push(Sample { t, v: stale });
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    fn every(start: i64, end: i64, step: i64) -> Vec<Sample> {
        (0..)
            .map(|i| start + i * step)
            .take_while(|&t| t <= end)
            .map(|t| s(t, t as f64))
            .collect()
    }

    fn times(v: &[Sample]) -> Vec<i64> {
        v.iter().map(|x| x.t).collect()
    }

    #[test]
    fn gap_is_filled_from_first_sample_half_an_interval_later() {
        let a: Vec<Sample> = every(0, 30_000, 15_000)
            .into_iter()
            .chain(every(105_000, 180_000, 15_000))
            .collect();
        let b = every(5_000, 185_000, 15_000);
        let got = times(&dedup_samples(&[a, b], false));
        // A until its outage; B's 35 s sample duplicates A's 30 s one (less than 7.5 s
        // later), so B takes over at 50 s and, once chosen, keeps being chosen.
        let mut want = vec![0, 15_000, 30_000];
        want.extend((50_000..=185_000).step_by(15_000));
        assert_eq!(got, want);
    }

    #[test]
    fn downsampled_replicas_fill_each_others_gaps_chunk_by_chunk() {
        let chunk = |min_time: i64, max_time: i64, tag: u8| EncodedChunk {
            min_time,
            max_time,
            encoding: crate::storage::downsample::CHUNK_ENC_AGGR,
            data: std::sync::Arc::from(vec![tag]),
        };
        let labels = |r: &str| Labels::from_pairs([("__name__", "x"), ("replica", r)]);
        // A lacks the middle day; B has all three days, but its first chunk starts later.
        let a = Series {
            labels: labels("a"),
            chunks: vec![chunk(0, 99, 1), chunk(200, 299, 1)],
        };
        let b = Series {
            labels: labels("b"),
            chunks: vec![chunk(10, 99, 2), chunk(100, 199, 2), chunk(200, 299, 2)],
        };
        let got = dedup_replicas(vec![a, b], &["replica".to_string()], false).unwrap();
        assert_eq!(got.len(), 1);
        let tags: Vec<(i64, u8)> = got[0]
            .chunks
            .iter()
            .map(|c| (c.min_time, c.data[0]))
            .collect();
        // B covers more time and leads; A's first chunk overlaps B's and is not added.
        assert_eq!(tags, vec![(10, 2), (100, 2), (200, 2)]);
        let a_only = Series {
            labels: labels("a"),
            chunks: vec![chunk(0, 99, 1), chunk(100, 199, 1), chunk(300, 399, 1)],
        };
        let b_gap = Series {
            labels: labels("b"),
            chunks: vec![chunk(200, 299, 2)],
        };
        let got = dedup_replicas(vec![a_only, b_gap], &["replica".to_string()], false).unwrap();
        let tags: Vec<(i64, u8)> = got[0]
            .chunks
            .iter()
            .map(|c| (c.min_time, c.data[0]))
            .collect();
        assert_eq!(tags, vec![(0, 1), (100, 1), (200, 2), (300, 1)]);
    }

    #[test]
    fn coinciding_replicas_keep_every_sample() {
        // The Compactor issue: A = 0,15,30,_,_,75 and B = 0..75 every 15 s.
        let a: Vec<Sample> = every(0, 75_000, 15_000)
            .into_iter()
            .filter(|x| x.t != 45_000 && x.t != 60_000)
            .collect();
        let b = every(0, 75_000, 15_000);
        assert_eq!(dedup_samples(&[a.clone(), b.clone()], false), b);
        assert_eq!(dedup_samples(&[b.clone(), a.clone()], false), b);
        assert_eq!(dedup_samples(&[a, b.clone()], true), b);
        // Long holes in both, at different places.
        let full = every(0, 3_000_000, 15_000);
        let a: Vec<Sample> = full
            .iter()
            .copied()
            .filter(|x| !(300_000..900_000).contains(&x.t))
            .collect();
        let b: Vec<Sample> = full
            .iter()
            .copied()
            .filter(|x| !(1_000_000..1_200_000).contains(&x.t))
            .filter(|x| x.t % 150_000 != 15_000 || (300_000..900_000).contains(&x.t))
            .collect();
        assert_eq!(dedup_samples(&[a, b], false), full);
    }

    #[test]
    fn offset_replicas_do_not_double_the_rate() {
        let a = every(0, 600_000, 15_000);
        let b = every(7_000, 607_000, 15_000);
        assert_eq!(dedup_samples(&[a.clone(), b.clone()], false), a);
        assert_eq!(dedup_samples(&[b.clone(), a.clone()], false), a);
        // A missing 45 s and 60 s: filled by their partners in B, 52 s and 67 s, and B stays.
        let holed: Vec<Sample> = a
            .iter()
            .copied()
            .filter(|x| x.t != 45_000 && x.t != 60_000)
            .collect();
        let got = times(&dedup_samples(&[holed, b.clone()], false));
        let mut want = vec![0, 15_000, 30_000];
        want.extend(times(&b).into_iter().filter(|&t| t >= 52_000));
        assert_eq!(got, want);
    }

    #[test]
    fn fill_starts_half_an_interval_after_the_last_sample() {
        let a: Vec<Sample> = every(0, 150_000, 15_000)
            .into_iter()
            .filter(|x| x.t != 45_000 && x.t != 60_000)
            .collect();
        // 7 499 ms offset: B's 37 499 ms sample is the partner of A's 30 s one.
        let b = every(7_499, 142_499, 15_000);
        let got = times(&dedup_samples(&[a.clone(), b], false));
        let mut want = vec![0, 15_000, 30_000];
        want.extend((52_499..=142_499).step_by(15_000));
        // A's 150 s sample is more than half an interval after B's last.
        want.push(150_000);
        assert_eq!(got, want);
        // Exactly half an interval: the earlier of the two equidistant samples fills.
        let b = every(7_500, 142_500, 15_000);
        let got = times(&dedup_samples(&[a, b], false));
        let mut want = vec![0, 15_000, 30_000];
        want.extend((37_500..=142_500).step_by(15_000));
        want.push(150_000);
        assert_eq!(got, want);
    }

    #[test]
    fn fill_ends_half_an_interval_before_the_next_sample() {
        // A at 0, 15 and 60 s; B's only samples in A's gap are within 7.5 s of A's: nothing
        // to fill, A continues.
        let a = vec![s(0, 0.0), s(15_000, 1.0), s(30_000, 2.0), s(75_000, 5.0)];
        let b = vec![s(1_000, 0.0), s(16_000, 1.0), s(67_500, 4.5)];
        assert_eq!(
            times(&dedup_samples(&[a, b], false)),
            vec![0, 15_000, 30_000, 75_000]
        );
    }

    #[test]
    fn other_replica_starting_first_is_used_until_its_gap() {
        // B starts 4 s before A: the output starts with B and stays on it.
        let a = every(10_000, 100_000, 15_000);
        let b = every(6_000, 96_000, 15_000);
        assert_eq!(dedup_samples(&[a.clone(), b.clone()], false), b);
        // A single sample on each side: the fallback interval (10 s) decides.
        let a = vec![s(10_000, 1.0)];
        assert_eq!(
            times(&dedup_samples(&[a.clone(), vec![s(14_000, 1.0)]], false)),
            vec![10_000]
        );
        assert_eq!(
            times(&dedup_samples(&[a, vec![s(16_000, 1.0)]], false)),
            vec![10_000, 16_000]
        );
    }

    #[test]
    fn interval_estimate_survives_alternating_holes() {
        // A has the even slots and B the odd ones plus every fifth, then A has runs of three
        // and single slots: most of each replica's deltas are 30 s or more, yet a third of B's
        // (then of A's) are 15 s, so the interval is 15 s and the output the complete series.
        // (Pure alternation, without any 15 s delta, is indistinguishable from two replicas
        // scraping every 30 s half an interval apart, and gives one replica.)
        let full = every(0, 3_600_000, 15_000);
        let in_a = |i: usize| {
            if i < 120 {
                i.is_multiple_of(2)
            } else {
                (i / 3).is_multiple_of(2) || i.is_multiple_of(3)
            }
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, x) in full.iter().enumerate() {
            if in_a(i) {
                a.push(*x);
            }
            if !in_a(i) || i.is_multiple_of(5) {
                b.push(*x);
            }
        }
        assert_eq!(dedup_samples(&[a.clone(), b.clone()], false), full);
        assert_eq!(dedup_samples(&[b, a], false), full);
    }

    #[test]
    fn ties_go_to_the_first_replica() {
        let a = vec![s(1_000, 1.0), s(2_000, 2.0)];
        let b = vec![s(1_000, 9.0), s(2_000, 9.0)];
        assert_eq!(dedup_samples(&[a.clone(), b], false), a);
    }

    #[test]
    fn switch_drop_is_adjusted_but_shared_reset_is_kept() {
        // A stops after 30 s; B lags slightly: without adjustment 29 < 30 is a false reset.
        let a = vec![s(0, 10.0), s(15_000, 20.0), s(30_000, 30.0)];
        // B's 32 s sample duplicates A's 30 s one; B takes over at 47 s, 3 below A.
        let b = vec![
            s(2_000, 9.0),
            s(17_000, 19.0),
            s(32_000, 26.0),
            s(47_000, 27.0),
            s(62_000, 28.0),
            s(77_000, 38.0),
        ];
        let got = dedup_samples(&[a.clone(), b.clone()], false);
        assert_eq!(
            got.iter().map(|x| x.v).collect::<Vec<_>>(),
            vec![10.0, 20.0, 30.0, 27.0, 28.0, 38.0]
        );
        let got = dedup_samples(&[a.clone(), b], true);
        assert_eq!(
            got.iter().map(|x| x.v).collect::<Vec<_>>(),
            vec![10.0, 20.0, 30.0, 30.0, 31.0, 41.0]
        );
        assert!(got.windows(2).all(|w| w[1].v >= w[0].v), "{got:?}");

        // Both replicas saw a restart between 30 s and 47 s: the drop must stay.
        let b = vec![
            s(2_000, 9.0),
            s(17_000, 19.0),
            s(32_000, 29.0),
            s(47_000, 39.0),
            s(62_000, 2.0),
        ];
        let got = dedup_samples(&[a, b], true);
        assert_eq!(got.last().map(|x| x.v), Some(2.0));
    }

    #[test]
    fn reset_among_duplicate_skipped_samples_is_kept() {
        // The restart happened between B's 35 s and 50 s samples; B's 35 s sample duplicates
        // A's 30 s one, so B takes over at 50 s and the drop is between a skipped sample and
        // the one switched to.
        let a = vec![s(0, 100.0), s(15_000, 110.0), s(30_000, 120.0)];
        let b = vec![
            s(2_000, 99.0),
            s(17_000, 109.0),
            s(35_000, 121.0),
            s(50_000, 2.0),
            s(65_000, 10.0),
        ];
        let got = dedup_samples(&[a, b], true);
        let vals: Vec<f64> = got.iter().map(|x| x.v).collect();
        assert_eq!(vals, vec![100.0, 110.0, 120.0, 2.0, 10.0]);
    }

    #[test]
    fn reset_already_shown_does_not_repeat_or_leak_adjustment() {
        // A resets at 45 s (shown); later A stops and B, whose previous sample predates the
        // reset, takes over slightly lower than A: adjusted, not a second reset.
        let a = vec![
            s(0, 100.0),
            s(15_000, 110.0),
            s(30_000, 120.0),
            s(45_000, 5.0),
            s(60_000, 15.0),
            s(75_000, 25.0),
            s(90_000, 35.0),
        ];
        let b = vec![
            s(2_000, 99.0),
            s(17_000, 109.0),
            s(31_000, 119.0),
            s(121_000, 34.0),
            s(136_000, 49.0),
        ];
        let got = dedup_samples(&[a, b], true);
        let vals: Vec<f64> = got.iter().map(|x| x.v).collect();
        assert_eq!(
            vals,
            vec![100.0, 110.0, 120.0, 5.0, 15.0, 25.0, 35.0, 35.0, 50.0]
        );
    }

    #[test]
    fn stale_marker_of_one_replica_does_not_end_series() {
        let stale = crate::storage::model::stale_nan();
        let a = vec![s(0, 1.0), s(15_000, 1.0), s(20_000, stale)];
        let b = every(5_000, 95_000, 15_000);
        let got = dedup_samples(&[a, b], false);
        assert!(got.iter().all(|x| !is_stale_nan(x.v)), "{got:?}");
        assert_eq!(got.last().map(|x| x.t), Some(95_000));
    }

    #[test]
    fn stale_marker_kept_when_every_replica_stops() {
        let stale = crate::storage::model::stale_nan();
        let a = vec![s(0, 1.0), s(15_000, 1.0), s(30_000, stale)];
        let b = vec![
            s(5_000, 1.0),
            s(20_000, 1.0),
            s(33_000, stale),
            s(900_000, 1.0),
        ];
        let got = dedup_samples(&[a, b], false);
        let marks: Vec<i64> = got
            .iter()
            .filter(|x| is_stale_nan(x.v))
            .map(|x| x.t)
            .collect();
        assert_eq!(marks, vec![33_000]);
        assert!(got.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn chunk_replicas_for_compaction() {
        let full = every(0, 3_000_000, 15_000);
        let a: Vec<Sample> = full
            .iter()
            .copied()
            .filter(|x| !(600_000..700_000).contains(&x.t))
            .collect();
        let b: Vec<Sample> = full
            .iter()
            .copied()
            .filter(|x| x.t < 1_000_000 || x.t >= 2_000_000)
            .collect();
        let enc = |v: &[Sample]| encode_chunks(v).unwrap_or_else(|e| panic!("encode: {e}"));
        let got = dedup_chunk_replicas(vec![enc(&a), Vec::new(), enc(&b)])
            .unwrap_or_else(|e| panic!("dedup: {e}"));
        assert_eq!(got, enc(&full));
        // A single replica with ordered, disjoint chunks comes back untouched.
        let one = enc(&a);
        let got = dedup_chunk_replicas(vec![Vec::new(), one.clone()])
            .unwrap_or_else(|e| panic!("dedup: {e}"));
        assert_eq!(got, one);
        // Overlapping chunks of a single replica are merged and re-cut.
        let mut overlapping = enc(&full[..200]);
        overlapping.extend(enc(&full[100..]));
        let got = dedup_chunk_replicas(vec![overlapping]).unwrap_or_else(|e| panic!("dedup: {e}"));
        assert_eq!(got, enc(&full));
        assert!(dedup_chunk_replicas(Vec::new()).is_ok_and(|c| c.is_empty()));
        // A corrupt chunk names the replica's position.
        let mut bad = enc(&b);
        if let Some(c) = bad.first_mut() {
            c.data = std::sync::Arc::from(&c.data[..5]);
        }
        let err = dedup_chunk_replicas(vec![enc(&a), bad])
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("replica 1"), "{err}");
    }

    #[test]
    fn merge_drops_identical_chunks_and_orders_by_time() {
        let c = |min: i64, max: i64| {
            encode_chunks(&every(min, max, 1_000))
                .ok()
                .and_then(|v| v.into_iter().next())
                .unwrap_or_else(|| panic!("encode"))
        };
        let l = Labels::from_pairs([("a", "1")]);
        let p1 = vec![Series {
            labels: l.clone(),
            chunks: vec![c(10_000, 20_000)],
        }];
        let p2 = vec![Series {
            labels: l.clone(),
            chunks: vec![c(0, 9_000), c(10_000, 20_000)],
        }];
        let got = merge_sources(vec![p1, p2]);
        assert_eq!(got.len(), 1);
        let ranges: Vec<(i64, i64)> = got[0]
            .chunks
            .iter()
            .map(|c| (c.min_time, c.max_time))
            .collect();
        assert_eq!(ranges, vec![(0, 9_000), (10_000, 20_000)]);
    }
}
