//! Test-only reference for the downsampling tests: the Thanos rules re-derived from the
//! reference text with plain loops over raw samples (group samples by window, then compute
//! each aggregate on its own), sharing no code with the production passes, plus a seeded
//! generator of awkward raw series.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::storage::model::{stale_nan, Sample};

/// One expected window.
#[derive(Clone, Debug, PartialEq)]
pub struct RefWindow {
    pub stamp: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub counter: f64,
}

/// One expected output chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct RefChunk {
    pub first_raw: Sample,
    pub windows: Vec<RefWindow>,
    pub last_raw: f64,
}

/// Drops stale markers and samples before the last kept one (starting from time 0).
pub fn ref_clean(raw: &[Sample]) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    for s in raw {
        let stale = s.v.to_bits() == stale_nan().to_bits();
        let last_t = out.last().map(|p| p.t).unwrap_or(0);
        if !stale && s.t >= last_t {
            out.push(*s);
        }
    }
    out
}

/// Thanos's chunk-count heuristic, with its loop written out as in the reference.
pub fn ref_chunk_count(mint: i64, maxt: i64, in_res: i64, out_res: i64, count: usize) -> usize {
    let span = (maxt - mint) as f64;
    let mut fullness = count as f64 / (span / in_res as f64);
    if fullness > 1.0 {
        fullness = 1.0;
    }
    let expected = (((maxt - mint) / out_res) as f64 * fullness) as i64 + 1;
    let mut x = 1;
    while expected / x > 140 {
        x += 1;
    }
    x as usize
}

/// The window index of `t` (windows are `[k·res, (k+1)·res)`).
pub fn window_of(t: i64, res: i64) -> i64 {
    t.div_euclid(res)
}

/// The stamp of window `k`: its last millisecond.
pub fn window_end(k: i64, res: i64) -> i64 {
    (k + 1) * res - 1
}

/// Thanos counter arithmetic over consecutive raw values: the increase `v` adds after `prev`.
pub fn counter_step(prev: f64, v: f64) -> f64 {
    if v < prev {
        v
    } else {
        v - prev
    }
}

/// Splits cleaned samples into batches: `len / chunks + 1` samples, then the rest of the
/// last sample's window.
pub fn ref_batches(clean: &[Sample], res: i64, chunks: usize) -> Vec<Vec<Sample>> {
    let size = clean.len() / chunks + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < clean.len() {
        let mut j = (i + size).min(clean.len());
        let w = window_of(clean[j - 1].t, res);
        while j < clean.len() && window_of(clean[j].t, res) == w {
            j += 1;
        }
        out.push(clean[i..j].to_vec());
        i = j;
    }
    out
}

/// The expected chunk of one batch (NaNs already removed, non-empty).
pub fn ref_chunk(batch: &[Sample], res: i64) -> RefChunk {
    // Group by window, keeping order.
    let mut groups: Vec<(i64, Vec<Sample>)> = Vec::new();
    for s in batch {
        let k = window_of(s.t, res);
        match groups.last_mut() {
            Some((gk, g)) if *gk == k => g.push(*s),
            _ => groups.push((k, vec![*s])),
        }
    }
    let last_t = batch.last().unwrap().t;
    let mut windows = Vec::new();
    let mut counter = 0.0;
    let mut prev: Option<f64> = None;
    for (k, g) in &groups {
        for s in g {
            counter = match prev {
                None => s.v,
                Some(p) => counter + counter_step(p, s.v),
            };
            prev = Some(s.v);
        }
        let values: Vec<f64> = g.iter().map(|s| s.v).collect();
        windows.push(RefWindow {
            stamp: window_end(*k, res).min(last_t),
            count: values.len() as f64,
            sum: values.iter().fold(0.0, |a, v| a + v),
            min: values
                .iter()
                .fold(f64::MAX, |m, &v| if v < m { v } else { m }),
            max: values
                .iter()
                .fold(-f64::MAX, |m, &v| if v > m { v } else { m }),
            counter,
        });
    }
    RefChunk {
        first_raw: batch[0],
        windows,
        last_raw: batch.last().unwrap().v,
    }
}

/// The expected raw → `res` output.
pub fn ref_downsample(raw: &[Sample], res: i64) -> Vec<RefChunk> {
    let clean = ref_clean(raw);
    if clean.is_empty() {
        return Vec::new();
    }
    let chunks = ref_chunk_count(
        clean[0].t,
        clean.last().unwrap().t,
        60_000,
        res,
        clean.len(),
    );
    ref_batches(&clean, res, chunks)
        .into_iter()
        .map(|b| b.into_iter().filter(|s| !s.v.is_nan()).collect::<Vec<_>>())
        .filter(|b| !b.is_empty())
        .map(|b| ref_chunk(&b, res))
        .collect()
}

/// Reset-aware increase over the usable raw samples (clean, no NaN) with `t <= until`.
pub fn ref_increase(raw: &[Sample], until: i64) -> f64 {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for s in ref_clean(raw) {
        if s.v.is_nan() || s.t > until {
            continue;
        }
        if let Some(p) = prev {
            total += counter_step(p, s.v);
        }
        prev = Some(s.v);
    }
    total
}

/// Usable raw samples (clean, no NaN) in `[from, to]`.
pub fn ref_usable(raw: &[Sample], from: i64, to: i64) -> Vec<Sample> {
    ref_clean(raw)
        .into_iter()
        .filter(|s| !s.v.is_nan() && s.t >= from && s.t <= to)
        .collect()
}

/// Knobs of the generated series.
#[derive(Clone, Copy, Debug)]
pub struct Gen {
    pub seed: u64,
    pub len: usize,
    pub start: i64,
    /// Typical scrape interval in ms.
    pub interval: i64,
    /// A counter (with resets) when true, a gauge (negative values too) otherwise.
    pub counter: bool,
    /// Per mille of samples followed by a gap of up to 3 hours.
    pub gaps: u32,
    /// Per mille of samples that are a stale marker or another NaN.
    pub nans: u32,
}

/// A reproducible raw series: integer values (so sums are exact in any order), jittered
/// intervals, resets, gaps, NaNs, stale markers and the odd duplicate or backwards sample.
pub fn generate(g: Gen) -> Vec<Sample> {
    let mut x = g.seed | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let mut out = Vec::with_capacity(g.len);
    let mut t = g.start;
    let mut v = rnd(1000) as f64;
    for _ in 0..g.len {
        let jitter = rnd(g.interval as u64 / 4 + 1) as i64;
        t += g.interval - g.interval / 8 + jitter;
        if (rnd(1000) as u32) < g.gaps {
            t += rnd(3 * 3_600_000) as i64;
        }
        let roll = rnd(1000) as u32;
        if roll < g.nans {
            let value = if roll.is_multiple_of(2) {
                stale_nan()
            } else {
                f64::NAN
            };
            out.push(Sample { t, v: value });
            continue;
        }
        if g.counter {
            if rnd(100) < 3 {
                v = rnd(10) as f64;
            } else {
                v += rnd(100) as f64;
            }
        } else {
            v = rnd(2001) as f64 - 1000.0;
        }
        out.push(Sample { t, v });
        if rnd(1000) < 2 {
            // A duplicate timestamp or a sample going back in time: both must be tolerated.
            let back = rnd(2) as i64 * g.interval;
            out.push(Sample { t: t - back, v });
        }
    }
    out
}
