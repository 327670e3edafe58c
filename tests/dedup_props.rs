//! Property and table tests of HA replica deduplication (`strata::storage::dedup`): identical
//! replicas, replicas with holes at different places giving back the complete series (query
//! and compaction paths, two and three replicas), offset replicas giving one sample per scrape
//! slot, jittered replicas, a replica outage filled from the other, counters with scrape
//! offsets and value skew (no false reset across a switch, a real reset still shown, drops
//! only at real resets), determinism, series without replica labels, more than two replicas,
//! staleness markers and source merging.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use std::collections::HashMap;
use strata::storage::chunkenc::SeriesIterator;

use strata::storage::dedup::{
    dedup_chunk_replicas, dedup_replicas, encode_chunks, merge_sources, MAX_SAMPLES_PER_CHUNK,
};
use strata::storage::model::{is_stale_nan, stale_nan, Labels, Sample, Series};

const INTERVAL: i64 = 15_000;

fn series(pairs: &[(&str, &str)], samples: &[Sample]) -> Series {
    Series {
        labels: Labels::from_pairs(pairs.iter().copied()),
        chunks: encode_chunks(samples).expect("encode"),
    }
}

fn replica(name: &str, r: &str, samples: &[Sample]) -> Series {
    series(
        &[("__name__", name), ("job", "api"), ("replica", r)],
        samples,
    )
}

fn decode(s: &Series) -> Vec<Sample> {
    let mut it = SeriesIterator::new(s.chunks.clone());
    let mut out = Vec::new();
    while let Some(x) = it.next().expect("decode") {
        out.push(x);
    }
    out
}

fn rl() -> Vec<String> {
    vec!["replica".to_string()]
}

fn dedup_one(replicas: Vec<Series>, counter: bool) -> Vec<Sample> {
    let out = dedup_replicas(replicas, &rl(), counter).expect("dedup");
    assert_eq!(out.len(), 1, "replicas must collapse into one series");
    assert_eq!(out[0].labels.get("replica"), None);
    decode(&out[0])
}

fn bits(v: &[Sample]) -> Vec<(i64, u64)> {
    v.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn strictly_increasing(v: &[Sample]) -> bool {
    v.windows(2).all(|w| w[0].t < w[1].t)
}

/// `increase` without extrapolation: the sum of rises, a drop counting as a reset to zero.
fn increase_and_resets(v: &[Sample]) -> (f64, usize) {
    let mut inc = 0.0;
    let mut resets = 0;
    for w in v.windows(2) {
        if w[1].v < w[0].v {
            resets += 1;
            inc += w[1].v;
        } else {
            inc += w[1].v - w[0].v;
        }
    }
    (inc, resets)
}

/// A counter that grows by `rate` per second plus a step every 7 s, restarting from zero at
/// `reset` when given, starting from a large base so that a false reset is unmistakable.
#[derive(Clone, Copy, Debug)]
struct Counter {
    rate: f64,
    step: f64,
    reset: Option<i64>,
}

impl Counter {
    fn raw(&self, x: i64) -> f64 {
        let x = x.max(0);
        1_000_000.0 + self.rate * x as f64 / 1000.0 + self.step * (x / 7_000) as f64
    }

    fn at(&self, x: i64) -> f64 {
        match self.reset {
            Some(r) if x >= r => self.raw(x) - self.raw(r),
            _ => self.raw(x),
        }
    }

    /// The true increase between two times, counting a reset in between.
    fn increase(&self, from: i64, to: i64) -> f64 {
        match self.reset {
            Some(r) if from < r && to >= r => self.at(r - 1) - self.at(from) + self.at(to),
            _ => self.at(to) - self.at(from),
        }
    }
}

/// One scraper's view: scrapes every interval from `offset` with per-scrape jitter, reading
/// the counter `skew` ms away from the timestamp, and missing scrapes during `down`.
fn scrape(
    c: &Counter,
    offset: i64,
    skew: i64,
    jitter: &[i64],
    down: Option<(i64, i64)>,
) -> Vec<Sample> {
    jitter
        .iter()
        .enumerate()
        .map(|(i, j)| offset + i as i64 * INTERVAL + j)
        .filter(|t| !down.is_some_and(|(a, b)| *t >= a && *t < b))
        .map(|t| Sample {
            t,
            v: c.at(t + skew),
        })
        .collect()
}

fn values() -> impl Strategy<Value = Vec<Sample>> {
    prop::collection::vec((1i64..40_000, -1e6f64..1e6), 1..400).prop_map(|v| {
        let mut t = 1_700_000_000_000i64;
        v.into_iter()
            .map(|(d, x)| {
                t += d;
                Sample { t, v: x }
            })
            .collect()
    })
}

proptest! {

    #[test]
    fn identical_replicas_equal_one(samples in values(), n in 2usize..5, counter in any::<bool>()) {
        let reps: Vec<Series> = (0..n).map(|i| replica("m", &format!("r{i}"), &samples)).collect();
        let got = dedup_one(reps, counter);
        prop_assert_eq!(bits(&got), bits(&samples));
    }

    #[test]
    fn outage_is_filled_from_other_replica(
        jit_a in prop::collection::vec(-200i64..200, 240),
        jit_b in prop::collection::vec(-200i64..200, 240),
        off_b in 300i64..14_700,
        down_start in 0i64..2_000_000,
        down_len in 0i64..1_000_000,
        b_down_after in 60_000i64..600_000,
        b_down_len in 0i64..600_000,
        b_first in any::<bool>(),
    ) {
        // Both replicas have an outage, at different times, so whichever one the output
        // settled on goes away at some point.
        let c = Counter { rate: 3.0, step: 1.0, reset: None };
        let a_down = (down_start, down_start + down_len);
        let b_down = (a_down.1 + b_down_after, a_down.1 + b_down_after + b_down_len);
        let a = scrape(&c, 1_000, 0, &jit_a, Some(a_down));
        let b = scrape(&c, 1_000 + off_b, 0, &jit_b, Some(b_down));
        let reps = if b_first {
            vec![replica("m", "b", &b), replica("m", "a", &a)]
        } else {
            vec![replica("m", "a", &a), replica("m", "b", &b)]
        };
        let got = dedup_one(reps, false);
        prop_assert!(strictly_increasing(&got));
        // Every output sample is one a replica really had.
        for s in &got {
            prop_assert!(a.contains(s) || b.contains(s), "invented sample {:?}", s);
        }
        // A gap is filled from the other replica's first sample at least half an interval
        // after the last one emitted, so no hole exceeds 1.5 intervals plus jitter although
        // one replica was down.
        let max_gap = got.windows(2).map(|w| w[1].t - w[0].t).max().unwrap_or(0);
        prop_assert!(max_gap <= 3 * INTERVAL / 2 + 800, "gap {} ms", max_gap);
        let first = a.first().map_or(i64::MAX, |s| s.t).min(b.first().map_or(i64::MAX, |s| s.t));
        prop_assert_eq!(got.first().map(|s| s.t), Some(first));
        let last = a.last().map_or(0, |s| s.t).max(b.last().map_or(0, |s| s.t));
        // The other replica's samples within half an interval after the last are duplicates.
        prop_assert!(got.last().map_or(0, |s| s.t) >= last - INTERVAL / 2 - 400);
    }

    #[test]
    fn counter_switch_has_no_false_reset(
        jit_a in prop::collection::vec(-100i64..100, 240),
        jit_b in prop::collection::vec(-100i64..100, 240),
        off_b in 500i64..14_500,
        skew_a in -1_500i64..1_500,
        skew_b in -45_000i64..1_500,
        down_start in 100_000i64..2_000_000,
        down_len in 30_000i64..800_000,
        b_down_after in 60_000i64..600_000,
        b_down_len in 30_000i64..600_000,
        rate in 0.5f64..50.0,
    ) {
        // B's values may lag its timestamps by up to 45 s, more than the fill's half-interval
        // tolerance, so a switch to B really lands below A's last value and needs the
        // adjustment.
        let c = Counter { rate, step: 2.0, reset: None };
        let a_down = (down_start, down_start + down_len);
        let b_down = (a_down.1 + b_down_after, a_down.1 + b_down_after + b_down_len);
        let a = scrape(&c, 1_000, skew_a, &jit_a, Some(a_down));
        let b = scrape(&c, 1_000 + off_b, skew_b, &jit_b, Some(b_down));
        let got = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], true);
        prop_assert!(strictly_increasing(&got));
        let (inc, resets) = increase_and_resets(&got);
        prop_assert_eq!(resets, 0, "false reset in {:?}", got);
        let (first, last) = (got[0].t, got[got.len() - 1].t);
        let truth = c.increase(first, last);
        // Skew shifts each end by at most 45 s of growth, and each switch (a handful at most)
        // adds at most 46.5 s of growth as adjustment; a false reset would add about 1e6.
        let tol = (rate + 1.0) * 400.0;
        prop_assert!((inc - truth).abs() <= tol, "increase {} vs {} (tol {})", inc, truth, tol);
    }

    #[test]
    fn shared_real_reset_is_still_a_reset(
        jit_a in prop::collection::vec(-100i64..100, 240),
        jit_b in prop::collection::vec(-100i64..100, 240),
        off_b in 500i64..14_500,
        skew_a in -1_500i64..1_500,
        skew_b in -1_500i64..1_500,
        reset_at in 200_000i64..3_000_000,
        down_from_reset in -200_000i64..200_000,
        down_len in 0i64..600_000,
        rate in 0.5f64..50.0,
    ) {
        let c = Counter { rate, step: 2.0, reset: Some(reset_at) };
        let down = (reset_at + down_from_reset, reset_at + down_from_reset + down_len);
        let a = scrape(&c, 1_000, skew_a, &jit_a, Some(down));
        let b = scrape(&c, 1_000 + off_b, skew_b, &jit_b, None);
        let got = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], true);
        prop_assert!(strictly_increasing(&got));
        let (inc, resets) = increase_and_resets(&got);
        prop_assert_eq!(resets, 1, "expected exactly the real reset in {:?}", got);
        let (first, last) = (got[0].t, got[got.len() - 1].t);
        let truth = c.increase(first, last);
        // As above, plus the growth between the last sample before the reset and the reset,
        // which no sample shows: up to three intervals when a switch leaves a hole there.
        let tol = (rate + 2.0) * 60.0;
        prop_assert!((inc - truth).abs() <= tol, "increase {} vs {} (tol {})", inc, truth, tol);
    }

    #[test]
    fn output_is_deterministic_and_order_independent(
        samples in prop::collection::vec(values(), 2..4),
        counter in any::<bool>(),
        rotate in 0usize..4,
    ) {
        let reps: Vec<Series> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| replica("m", &format!("r{i}"), s))
            .collect();
        let once = dedup_replicas(reps.clone(), &rl(), counter).expect("dedup");
        let mut shuffled = reps;
        let k = rotate % shuffled.len();
        shuffled.rotate_left(k);
        let again = dedup_replicas(shuffled, &rl(), counter).expect("dedup");
        prop_assert_eq!(&once, &again);
        let got = decode(&once[0]);
        prop_assert!(strictly_increasing(&got));
        let sizes: Vec<usize> = once[0]
            .chunks
            .iter()
            .map(|c| strata::storage::chunkenc::decode_chunk(c).map_or(usize::MAX, |v| v.len()))
            .collect();
        prop_assert!(sizes.iter().all(|&n| n <= MAX_SAMPLES_PER_CHUNK), "chunk sizes {:?}", sizes);
    }
}

/// Scrape slots of the generated series in the gap-fill properties.
const SLOTS: usize = 300;

/// Which of `SLOTS` slots a replica misses: up to 6 runs of 1 to 30 slots (outages) plus
/// scattered single misses at a rate of up to 30 %.
fn holes() -> impl Strategy<Value = Vec<bool>> {
    (
        prop::collection::vec((0..SLOTS, 1usize..30), 0..6),
        0u32..30,
        prop::collection::vec(0u32..100, SLOTS),
    )
        .prop_map(|(runs, rate, dice)| {
            let mut miss: Vec<bool> = dice.iter().map(|d| *d < rate).collect();
            for (start, len) in runs {
                for m in miss.iter_mut().skip(start).take(len) {
                    *m = true;
                }
            }
            miss
        })
}

/// `k` hole masks such that no slot is missed by all `k` replicas (such a slot goes back to
/// the replica `fix` names).
fn covering_holes(k: usize) -> impl Strategy<Value = Vec<Vec<bool>>> {
    (
        prop::collection::vec(holes(), k),
        prop::collection::vec(0usize..3, SLOTS),
    )
        .prop_map(move |(mut masks, fix)| {
            for (slot, f) in fix.iter().enumerate() {
                if masks.iter().all(|m| m[slot]) {
                    masks[f % k][slot] = false;
                }
            }
            masks
        })
}

fn interval() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![1_000i64, 10_000, 15_000, 30_000, 60_000])
}

fn without(samples: &[Sample], miss: &[bool]) -> Vec<Sample> {
    samples
        .iter()
        .zip(miss)
        .filter(|(_, m)| !**m)
        .map(|(s, _)| *s)
        .collect()
}

fn decode_chunks(chunks: &[strata::storage::model::EncodedChunk]) -> Vec<Sample> {
    let mut it = SeriesIterator::new(chunks.to_vec());
    let mut out = Vec::new();
    while let Some(x) = it.next().expect("decode") {
        out.push(x);
    }
    out
}

/// Counts output samples per scrape slot; `slot_of` maps every input timestamp to its slot.
/// Fails on a sample no replica had.
fn per_slot(
    got: &[Sample],
    slot_of: &HashMap<i64, usize>,
) -> std::result::Result<Vec<usize>, TestCaseError> {
    let mut count = vec![0usize; SLOTS + 1];
    for s in got {
        let Some(&k) = slot_of.get(&s.t) else {
            return Err(TestCaseError::fail(format!("invented sample {s:?}")));
        };
        count[k] += 1;
    }
    Ok(count)
}

proptest! {
    /// Replicas with the same timestamps (HA pair scraping at one offset, data written twice)
    /// and holes at different places give back exactly the complete series, by the query path
    /// (label order) and the compaction path (`dedup_chunk_replicas`, given order).
    #[test]
    fn holed_coinciding_replicas_give_back_the_complete_series(
        k in 2usize..=3,
        masks in covering_holes(3),
        iv in interval(),
        start in 1_600_000_000_000i64..1_700_000_000_000,
        vals in prop::collection::vec(-1e6f64..1e6, SLOTS),
        rotate in 0usize..3,
    ) {
        // Replica r misses what masks[r] says; the covering fix was for all three masks, so
        // with two replicas slots missed by both go to the first.
        let mut masks = masks;
        masks.truncate(k);
        if k == 2 {
            let (first, rest) = masks.split_at_mut(1);
            for (m0, m1) in first[0].iter_mut().zip(&rest[0]) {
                *m0 &= !*m1;
            }
        }
        let full: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| Sample { t: start + i as i64 * iv, v: *v })
            .collect();
        let reps: Vec<Vec<Sample>> = masks.iter().map(|m| without(&full, m)).collect();
        let series: Vec<Series> = reps
            .iter()
            .enumerate()
            .map(|(i, r)| replica("m", &format!("r{i}"), r))
            .collect();
        let got = dedup_one(series, false);
        prop_assert_eq!(bits(&got), bits(&full));

        let mut chunks: Vec<_> = reps.iter().map(|r| encode_chunks(r).expect("encode")).collect();
        chunks.rotate_left(rotate % k);
        let compacted = dedup_chunk_replicas(chunks).expect("dedup");
        prop_assert!(compacted.iter().all(|c| strata::storage::chunkenc::decode_chunk(c)
            .is_ok_and(|v| v.len() <= MAX_SAMPLES_PER_CHUNK)));
        prop_assert_eq!(bits(&decode_chunks(&compacted)), bits(&full));

        // A counter (values only go up) through the counter adjustment: nothing to adjust.
        let mut acc = 0.0;
        let counter: Vec<Sample> = full
            .iter()
            .map(|s| {
                acc += s.v.abs();
                Sample { t: s.t, v: acc }
            })
            .collect();
        let series: Vec<Series> = masks
            .iter()
            .enumerate()
            .map(|(i, m)| replica("c", &format!("r{i}"), &without(&counter, m)))
            .collect();
        let got = dedup_one(series, true);
        prop_assert_eq!(bits(&got), bits(&counter));
    }

    /// Replicas scraping at offsets a fraction 0.2 to 0.8 of the interval apart: each sample
    /// pairs with the other replica's nearest one (a scrape slot); the output has at most one
    /// sample per slot and one in every slot where either replica has a sample.
    #[test]
    fn offset_replicas_give_one_sample_per_slot(
        miss_a in holes(),
        miss_b in holes(),
        iv in interval(),
        frac in 0.2f64..=0.8,
        start in 1_600_000_000_000i64..1_700_000_000_000,
        b_first in any::<bool>(),
        counter in any::<bool>(),
    ) {
        let mut off = (frac * iv as f64).round() as i64;
        if 2 * off == iv {
            // Exactly half an interval: the nearest sample is ambiguous (see the module docs).
            off += 1;
        }
        let a: Vec<Sample> = (0..SLOTS)
            .filter(|i| !miss_a[*i])
            .map(|i| Sample { t: start + i as i64 * iv, v: i as f64 })
            .collect();
        let b: Vec<Sample> = (0..SLOTS)
            .filter(|i| !miss_b[*i])
            .map(|i| Sample { t: start + off + i as i64 * iv, v: i as f64 + 0.5 })
            .collect();
        // A's i-th sample pairs with B's i-th when B is less than half an interval later,
        // else with B's (i-1)-th, which is less than half an interval earlier.
        let shift = usize::from(2 * off > iv);
        let mut slot_of = HashMap::new();
        for (i, _) in miss_a.iter().enumerate() {
            slot_of.insert(start + i as i64 * iv, i);
            slot_of.insert(start + off + i as i64 * iv, i + shift);
        }
        let reps = if b_first {
            vec![replica("m", "a", &b), replica("m", "b", &a)]
        } else {
            vec![replica("m", "a", &a), replica("m", "b", &b)]
        };
        let got = dedup_one(reps, counter);
        prop_assert!(strictly_increasing(&got));
        let count = per_slot(&got, &slot_of)?;
        for slot in 0..=SLOTS {
            let has_a = slot < SLOTS && !miss_a[slot];
            let has_b = slot >= shift && slot - shift < SLOTS && !miss_b[slot - shift];
            let want = usize::from(has_a || has_b);
            prop_assert_eq!(count[slot], want, "slot {} (a {}, b {}) in {:?}", slot, has_a, has_b, got);
        }
    }

    /// Coinciding replicas whose timestamps jitter by up to ±250 ms independently: one sample
    /// per scrape slot, none lost, whichever replica it comes from.
    #[test]
    fn jittered_replicas_give_one_sample_per_slot(
        masks in covering_holes(2),
        jit_a in prop::collection::vec(-250i64..=250, SLOTS),
        jit_b in prop::collection::vec(-250i64..=250, SLOTS),
        iv in prop::sample::select(vec![10_000i64, 15_000, 30_000, 60_000]),
        start in 1_600_000_000_000i64..1_700_000_000_000,
        counter in any::<bool>(),
    ) {
        let mut slot_of = HashMap::new();
        let mut reps = Vec::new();
        for (r, (miss, jit)) in [(&masks[0], &jit_a), (&masks[1], &jit_b)].into_iter().enumerate() {
            let samples: Vec<Sample> = (0..SLOTS)
                .filter(|i| !miss[*i])
                .map(|i| {
                    let t = start + i as i64 * iv + jit[i];
                    slot_of.insert(t, i);
                    Sample { t, v: i as f64 }
                })
                .collect();
            reps.push(replica("m", &format!("r{r}"), &samples));
        }
        let got = dedup_one(reps, counter);
        prop_assert!(strictly_increasing(&got));
        let count = per_slot(&got, &slot_of)?;
        prop_assert!(count[..SLOTS].iter().all(|&n| n == 1), "per slot {:?} in {:?}", count, got);
        // The values are the slot numbers, the same in both replicas: nothing to adjust.
        prop_assert!(got.iter().all(|s| slot_of.get(&s.t) == Some(&(s.v as usize))));
    }

    /// The counter adjustment never makes a counter go down except at real resets (no false
    /// reset), whatever the offsets, jitter, value skew, holes and outages of the replicas.
    #[test]
    fn counter_drops_only_at_real_resets(
        miss_a in holes(),
        miss_b in holes(),
        jit_a in prop::collection::vec(-200i64..=200, SLOTS),
        jit_b in prop::collection::vec(-200i64..=200, SLOTS),
        offset in prop_oneof![Just(0i64), 0i64..INTERVAL],
        skew_a in -1_500i64..=1_500,
        skew_b in -1_500i64..=1_500,
        resets in prop::collection::vec(0i64..(SLOTS as i64 * INTERVAL), 0..4),
        rate in 0.5f64..50.0,
    ) {
        let mut resets = resets;
        resets.sort_unstable();
        resets.dedup();
        let value = |x: i64| {
            let since = resets.iter().rev().find(|r| **r <= x).copied();
            match since {
                Some(r) => rate * (x - r) as f64 / 1000.0,
                None => 1_000_000.0 + rate * x.max(0) as f64 / 1000.0,
            }
        };
        let scrape = |miss: &[bool], jit: &[i64], off: i64, skew: i64| -> Vec<Sample> {
            (0..SLOTS)
                .filter(|i| !miss[*i])
                .map(|i| {
                    let t = off + i as i64 * INTERVAL + jit[i];
                    Sample { t, v: value(t + skew) }
                })
                .collect()
        };
        let a = scrape(&miss_a, &jit_a, 0, skew_a);
        let b = scrape(&miss_b, &jit_b, offset, skew_b);
        if a.is_empty() || b.is_empty() {
            return Ok(());
        }
        let got = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], true);
        prop_assert!(strictly_increasing(&got));
        // Each drop uses up one real reset that happened by then (allowing for the skew). A
        // drop may come later than its reset: a switch to a replica with no sample before the
        // reset has no evidence of it and is adjusted (as in Thanos), and the drop shows when
        // the output next switches to a replica that saw it.
        let mut used = 0;
        for w in got.windows(2) {
            if w[1].v < w[0].v {
                let real = resets.get(used).is_some_and(|r| *r <= w[1].t + 1_500);
                prop_assert!(real, "drop {:?} -> {:?} without a reset (resets {:?})", w[0], w[1], resets);
                used += 1;
            }
        }
    }
}

fn regular(offset: i64, n: usize, value: impl Fn(i64) -> f64) -> Vec<Sample> {
    (0..n as i64)
        .map(|i| {
            let t = offset + i * INTERVAL;
            Sample { t, v: value(t) }
        })
        .collect()
}

#[test]
fn counter_switch_table() {
    // B's values lag 40 s behind its timestamps (more than half an interval, so B resumes
    // below A's last value); A is down from 300 s to 600 s.
    let c = Counter {
        rate: 10.0,
        step: 0.0,
        reset: None,
    };
    let a: Vec<Sample> = regular(0, 80, |t| c.at(t))
        .into_iter()
        .filter(|s| s.t < 300_000 || s.t >= 600_000)
        .collect();
    let b = regular(3_000, 80, |t| c.at(t - 40_000));
    let raw = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], false);
    let fixed = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], true);
    // The scenario really provokes the artefact without adjustment...
    assert_eq!(increase_and_resets(&raw).1, 1, "{raw:?}");
    // ...and the adjustment removes it while keeping the timestamps.
    let (inc, resets) = increase_and_resets(&fixed);
    assert_eq!(resets, 0, "{fixed:?}");
    assert_eq!(
        raw.iter().map(|s| s.t).collect::<Vec<_>>(),
        fixed.iter().map(|s| s.t).collect::<Vec<_>>()
    );
    let truth = c.increase(fixed[0].t, fixed[fixed.len() - 1].t);
    // The lag itself makes the tail 40 s behind: up to 400 of growth, far from a false reset.
    assert!((inc - truth).abs() <= 10.0 * 45.0, "{inc} vs {truth}");
}

#[test]
fn series_without_replica_label_are_untouched() {
    let s1 = regular(0, 300, |t| t as f64);
    let plain = series(&[("__name__", "up"), ("job", "x")], &s1);
    let other = series(&[("__name__", "up"), ("job", "y"), ("replica", "a")], &s1);
    let out = dedup_replicas(vec![other.clone(), plain.clone()], &rl(), true).expect("dedup");
    assert_eq!(out.len(), 2);
    // Untouched: same labels and the very same chunk bytes, no re-encoding.
    assert_eq!(out[0], plain);
    assert_eq!(
        out[1].labels,
        Labels::from_pairs([("__name__", "up"), ("job", "y")])
    );
    assert_eq!(out[1].chunks, other.chunks);
    // Without any replica label configured nothing is stripped or merged.
    let out = dedup_replicas(vec![other.clone(), plain.clone()], &[], true).expect("dedup");
    assert_eq!(out, vec![plain, other]);
}

#[test]
fn three_replicas_fold_and_fill_each_others_gaps() {
    let f = |t: i64| (t / 1000) as f64;
    let a: Vec<Sample> = regular(0, 120, f)
        .into_iter()
        .filter(|s| s.t < 400_000)
        .collect();
    let b: Vec<Sample> = regular(4_000, 120, f)
        .into_iter()
        .filter(|s| s.t < 900_000)
        .collect();
    let c: Vec<Sample> = regular(9_000, 120, f)
        .into_iter()
        .filter(|s| s.t >= 600_000)
        .collect();
    let reps = vec![
        replica("m", "c", &c),
        replica("m", "a", &a),
        replica("m", "b", &b),
    ];
    let got = dedup_one(reps, false);
    assert!(strictly_increasing(&got));
    let max_gap = got.windows(2).map(|w| w[1].t - w[0].t).max().unwrap_or(0);
    assert!(max_gap <= 3 * INTERVAL, "gap {max_gap}");
    assert_eq!(got.first().map(|s| s.t), Some(0));
    assert_eq!(got.last().map(|s| s.t), c.last().map(|s| s.t));
    // Each phase is served by the replica that was up, folded in label order a, b, c.
    assert!(got.iter().any(|s| s.t % INTERVAL == 0));
    assert!(got.iter().any(|s| s.t % INTERVAL == 4_000));
    assert!(got.iter().any(|s| s.t % INTERVAL == 9_000));
}

#[test]
fn many_series_grouped_and_sorted() {
    let mut input = Vec::new();
    for job in ["z", "a", "m"] {
        for r in ["r2", "r1"] {
            input.push(series(
                &[("__name__", "m"), ("job", job), ("replica", r)],
                &regular(0, 10, |t| t as f64),
            ));
        }
    }
    let out = dedup_replicas(input, &rl(), false).expect("dedup");
    let jobs: Vec<&str> = out.iter().filter_map(|s| s.labels.get("job")).collect();
    assert_eq!(jobs, vec!["a", "m", "z"]);
    for s in &out {
        assert_eq!(decode(s).len(), 10);
    }
}

#[test]
fn stale_marker_of_one_replica_does_not_end_series() {
    let mut a = regular(0, 20, |_| 1.0);
    a.push(Sample {
        t: 20 * INTERVAL,
        v: stale_nan(),
    });
    let b = regular(5_000, 60, |_| 1.0);
    let got = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], false);
    assert!(got.iter().all(|s| !is_stale_nan(s.v)), "{got:?}");
    assert_eq!(got.last().map(|s| s.t), b.last().map(|s| s.t));
}

#[test]
fn series_ending_everywhere_keeps_one_stale_marker() {
    let mut a = regular(0, 20, |_| 1.0);
    a.push(Sample {
        t: 20 * INTERVAL,
        v: stale_nan(),
    });
    let mut b = regular(5_000, 20, |_| 1.0);
    b.push(Sample {
        t: 5_000 + 20 * INTERVAL,
        v: stale_nan(),
    });
    let got = dedup_one(vec![replica("m", "a", &a), replica("m", "b", &b)], true);
    let last = got.last().copied().expect("samples");
    assert!(is_stale_nan(last.v), "{got:?}");
    assert_eq!(last.t, 5_000 + 20 * INTERVAL);
    assert_eq!(got.iter().filter(|s| is_stale_nan(s.v)).count(), 1);
    assert!(strictly_increasing(&got));
}

#[test]
fn corrupt_chunk_is_an_error_naming_the_series() {
    let good = replica("m", "a", &regular(0, 10, |t| t as f64));
    let mut bad = replica("m", "b", &regular(0, 10, |t| t as f64));
    if let Some(c) = bad.chunks.first_mut() {
        c.data = std::sync::Arc::from(&c.data[..5]);
    }
    let err = dedup_replicas(vec![good, bad], &rl(), false).expect_err("corrupt chunk");
    let msg = err.to_string();
    assert!(msg.contains("replica=\"b\""), "{msg}");
}

#[test]
fn merge_sources_joins_and_overlaps_merge() {
    let all = regular(0, 300, |t| t as f64);
    let (first, second) = all.split_at(200);
    // Source 1 has [0, 200), source 2 has [150, 300): overlapping chunks of one series.
    let p1 = vec![series(&[("a", "1")], first), series(&[("a", "3")], first)];
    let p2 = vec![
        series(&[("a", "1")], &all[150..]),
        series(&[("a", "2")], second),
    ];
    let out = merge_sources(vec![p1.clone(), p2]);
    let names: Vec<&str> = out.iter().filter_map(|s| s.labels.get("a")).collect();
    assert_eq!(names, vec!["1", "2", "3"]);
    assert_eq!(bits(&decode(&out[0])), bits(&all));
    assert!(out[0]
        .chunks
        .windows(2)
        .all(|w| w[0].min_time <= w[1].min_time));
    // The same block from two sources collapses to one copy of each chunk.
    let twice = merge_sources(vec![p1.clone(), p1.clone()]);
    assert_eq!(twice, p1);
}
