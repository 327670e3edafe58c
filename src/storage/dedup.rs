//! Merging and HA replica deduplication of series, the pure (no I/O, no async) core shared by
//! the QueryPlanner's read path (`query::fanout`) and, later, the Compactor's vertical
//! compaction of replica blocks; it depends on storage types only. `merge_sources` joins the
//! series that several sources returned for one query, and `dedup_replicas` collapses HA
//! replicas (series that differ only by the configured replica labels) into one series with
//! Thanos's penalty algorithm, optionally with the counter adjustment that keeps
//! `rate`/`increase` free of false resets across a switch.
//!
//! Rules this module decides, beyond what Thanos documents:
//! - **Real resets.** Thanos's counter adjustment lifts a replica whenever a switch to it would
//!   make the counter go down, which also hides a real counter reset that happens to coincide
//!   with a switch. Here a drop on a switch is kept as a reset when the replica switched to saw
//!   a drop in its own samples since the emitted sample before the last (samples the penalty
//!   skipped included) and that drop is newer than the last reset already emitted; otherwise
//!   the drop is a replica artefact (scrape offset, timestamp jitter) and is adjusted away. A
//!   replica with no earlier sample gives no evidence, so it is adjusted, as in Thanos. A drop
//!   without a switch is always a reset. When a reset is emitted every adjustment is cleared,
//!   so values after it are the raw counter (an adjustment carried over a reset would inflate
//!   `increase` by its size). Known limit: replicas whose value-versus-timestamp skew exceeds a
//!   scrape interval can still be misjudged.
//! - **Staleness markers.** The penalty algorithm runs over real samples only. A replica's
//!   staleness marker is put back into the output only when, at its timestamp, every replica of
//!   the group has stopped (its latest sample is a marker, is older than the 5 minute lookback,
//!   or it has no sample yet), so a marker from one replica never ends a series that another
//!   replica continues, while a series that really ended everywhere still ends.

use crate::storage::chunkenc::{ChunkError, SeriesIterator, XorAppender};
use crate::storage::model::{is_stale_nan, EncodedChunk, Labels, Sample, Series};

/// Samples per re-encoded chunk, the size Prometheus cuts.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Penalty for the side not chosen while no sample has been emitted yet (Thanos
/// `initialPenalty`): timestamps are milliseconds and scrape intervals are seconds long.
pub const INITIAL_PENALTY_MS: i64 = 5_000;

/// How long a replica counts as alive after its last real sample when deciding whether a
/// staleness marker ends the deduplicated series (Prometheus's default lookback delta).
pub const STALENESS_LOOKBACK_MS: i64 = 300_000;

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
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
/// remaining labels are identical are replicas of one series and are merged with the penalty
/// algorithm (see `dedup_samples`), their samples re-encoded into XOR chunks of at most
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
/// (`dedup(dedup(r0, r1), r2)`), and markers are restored where every replica had stopped.
/// Output timestamps are strictly increasing.
pub fn dedup_samples(replicas: &[Vec<Sample>], counter_adjust: bool) -> Vec<Sample> {
    let mut acc: Option<Vec<Sample>> = None;
    for r in replicas {
        let real: Vec<Sample> = r.iter().copied().filter(|s| !is_stale_nan(s.v)).collect();
        acc = Some(match acc {
            None => real,
            Some(a) => merge_pair(&a, &real, counter_adjust),
        });
    }
    restore_staleness(acc.unwrap_or_default(), replicas)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// One emitted sample: which side and its index there.
#[derive(Clone, Copy, Debug)]
struct Pick {
    side: Side,
    idx: usize,
}

fn merge_pair(a: &[Sample], b: &[Sample], counter_adjust: bool) -> Vec<Sample> {
    let picks = penalty_picks(a, b);
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

/// First index at or after `from` whose timestamp is at least `t`. Walks sample by sample, like
/// Thanos's repeated `Next`, so nothing in between is skipped without being looked at.
fn seek(s: &[Sample], from: usize, t: i64) -> usize {
    let mut i = from;
    while s.get(i).is_some_and(|x| x.t < t) {
        i += 1;
    }
    i
}

/// The penalty algorithm (Thanos `pkg/dedup/iter.go`): which sample of `a` or `b` is emitted
/// next. Only timestamps matter here; values are handled by the caller.
fn penalty_picks(a: &[Sample], b: &[Sample]) -> Vec<Pick> {
    let mut picks = Vec::with_capacity(a.len().max(b.len()));
    let (mut ia, mut ib) = (0usize, 0usize);
    let (mut pen_a, mut pen_b) = (0i64, 0i64);
    let mut last_t: Option<i64> = None;
    loop {
        if let Some(lt) = last_t {
            // lt < i64::MAX here (checked below), so lt + 1 cannot overflow.
            ia = seek(a, ia, (lt + 1).saturating_add(pen_a));
            ib = seek(b, ib, (lt + 1).saturating_add(pen_b));
        }
        let pick = match (a.get(ia), b.get(ib)) {
            (None, None) => break,
            (Some(x), None) => {
                pen_a = 0;
                (
                    Pick {
                        side: Side::A,
                        idx: ia,
                    },
                    x.t,
                )
            }
            (None, Some(y)) => {
                pen_b = 0;
                (
                    Pick {
                        side: Side::B,
                        idx: ib,
                    },
                    y.t,
                )
            }
            (Some(x), Some(y)) => {
                let use_a = x.t <= y.t;
                let t = if use_a { x.t } else { y.t };
                let pen = match last_t {
                    Some(lt) => t.saturating_sub(lt).saturating_mul(2),
                    None => INITIAL_PENALTY_MS,
                };
                if use_a {
                    pen_a = 0;
                    pen_b = pen;
                    (
                        Pick {
                            side: Side::A,
                            idx: ia,
                        },
                        t,
                    )
                } else {
                    pen_b = 0;
                    pen_a = pen;
                    (
                        Pick {
                            side: Side::B,
                            idx: ib,
                        },
                        t,
                    )
                }
            }
        };
        picks.push(pick.0);
        if pick.1 == i64::MAX {
            break;
        }
        last_t = Some(pick.1);
    }
    picks
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
            // Consecutive picks of one side are consecutive samples of it (its penalty is 0),
            // so any drop is the replica's own and a real reset.
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
/// The samples the penalty skipped are looked at too: the drop may sit among them.
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
    fn penalty_sticks_to_first_replica_and_switches_on_gap() {
        let a: Vec<Sample> = every(0, 30_000, 15_000)
            .into_iter()
            .chain(every(105_000, 180_000, 15_000))
            .collect();
        let b = every(5_000, 185_000, 15_000);
        let got = times(&dedup_samples(&[a, b], false));
        // A until its outage; B's 50 s sample is inside the 30 s penalty window, so B takes
        // over at 65 s and, once chosen, keeps being chosen.
        let mut want = vec![0, 15_000, 30_000];
        want.extend((65_000..=185_000).step_by(15_000));
        assert_eq!(got, want);
    }

    #[test]
    fn initial_penalty_applies_before_any_sample() {
        // B's first sample lies within 5 s of A's first: skipped by the initial penalty.
        let a = vec![s(10_000, 1.0), s(40_000, 2.0)];
        let b = vec![s(12_000, 1.0), s(16_000, 1.5), s(25_000, 1.7)];
        let got = times(&dedup_samples(&[a, b], false));
        assert_eq!(got, vec![10_000, 16_000, 25_000]);
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
        // B's 47 s sample is inside the penalty window; it takes over at 62 s, 2 below A.
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
            vec![10.0, 20.0, 30.0, 28.0, 38.0]
        );
        let got = dedup_samples(&[a.clone(), b], true);
        assert_eq!(
            got.iter().map(|x| x.v).collect::<Vec<_>>(),
            vec![10.0, 20.0, 30.0, 30.0, 40.0]
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
    fn reset_among_penalty_skipped_samples_is_kept() {
        // The restart happened between B's 35 s and 50 s samples; the penalty makes B resume
        // at 65 s, whose predecessor is already post-reset.
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
        assert_eq!(vals, vec![100.0, 110.0, 120.0, 10.0]);
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
