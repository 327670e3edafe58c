//! Functions over range vectors: `rate`/`increase`/`delta` with Prometheus's extrapolation,
//! `irate`/`idelta`, `deriv`/`predict_linear` (least squares), `changes`, `resets`,
//! `double_exponential_smoothing` and every `*_over_time` function, plus the start-timestamp
//! aware variants of `rate`/`increase`/`irate`/`resets` (start times aligned with the
//! points, 0 = unknown), kept separate so the common case pays nothing for them.

use crate::promql::aggregate::{mean, quantile, KahanSum};
use crate::promql::error::{PromqlError, Result};
use crate::storage::model::Sample;

/// Where the window of a range function lies: `(end - range, end]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub end: i64,
    pub range: i64,
}

/// `rate`, `increase` (counter) and `delta` (gauge) with extrapolation to the window edges.
pub(crate) fn extrapolated_rate(
    points: &[Sample],
    w: Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let range_start = w.end - w.range;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (w.end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = sampled / (points.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.v >= 0.0 {
            to_zero = sampled * (first.v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` / `idelta` from the last two samples.
pub(crate) fn instant_value(points: &[Sample], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let prev = points[points.len() - 2];
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Whether the start time of the current sample shows that the counter restarted after the
/// previous sample.
pub(crate) fn start_ts_reset(prev_st: i64, prev_t: i64, cur_st: i64, cur_t: i64) -> bool {
    // Unknown, invalid (after the sample) or OTel's "start unknown" (equal to it): no evidence.
    if cur_st == 0 || cur_st >= cur_t {
        return false;
    }
    if cur_st != prev_t {
        return cur_st > prev_t;
    }
    // Starting exactly at the previous sample marks a delta sample, but also a cumulative
    // series whose first sample had no (or an invalid) start time: only a known, valid
    // previous start time makes this a restart.
    prev_st != 0 && prev_st < prev_t
}

/// A start time before the previous sample that is not the previous start time: the two
/// samples claim overlapping intervals, which points at bad data.
pub(crate) fn start_ts_overlap(prev_st: i64, prev_t: i64, cur_st: i64) -> bool {
    cur_st != 0 && cur_st < prev_t && cur_st != prev_st
}

/// `rate` / `increase` with start times `sts` (aligned with `points`): a start time after
/// the previous sample counts as a reset, and when the first sample's start time lies inside
/// the window the counter is taken to be 0 there instead of extrapolating to the left (so a
/// single sample can be enough). Also says whether some start times overlap.
pub(crate) fn rate_with_start_ts(
    points: &[Sample],
    sts: &[i64],
    w: Window,
    is_rate: bool,
) -> (Option<f64>, bool) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return (None, false);
    };
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    let mut result = last.v - first.v;
    let mut overlap = false;
    for (i, pair) in points.windows(2).enumerate() {
        let (prev, cur) = (pair[0], pair[1]);
        overlap |= start_ts_overlap(st(i), prev.t, st(i + 1));
        if cur.v < prev.v || start_ts_reset(st(i), prev.t, st(i + 1), cur.t) {
            result += prev.v;
        }
    }
    let range_start = w.end - w.range;
    let gaps = (points.len() - 1) as f64;
    let mut sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = if gaps > 0.0 { sampled / gaps } else { 0.0 };
    let threshold = avg_between * 1.1;
    let first_st = st(0);
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    if first_st != 0 && first_st > range_start && first_st < first.t {
        to_start = 0.0;
        sampled = (last.t - first_st) as f64 / 1000.0;
        result += first.v;
    } else if points.len() < 2 {
        return (None, overlap);
    } else {
        if to_start >= threshold {
            to_start = avg_between / 2.0;
        }
        if result > 0.0 && first.v >= 0.0 {
            to_start = to_start.min(sampled * (first.v / result));
        }
    }
    let mut to_end = (w.end - last.t) as f64 / 1000.0;
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    (Some(result * factor), overlap)
}

/// `irate` with start times: a restart shown by the last sample's start time counts as a
/// reset just like a drop in value.
pub(crate) fn irate_with_start_ts(points: &[Sample], sts: &[i64]) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = (points[n - 2], points[n - 1]);
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    let reset = last.v < prev.v || start_ts_reset(st(n - 2), prev.t, st(n - 1), last.t);
    let v = if reset { last.v } else { last.v - prev.v };
    Some(v / (interval as f64 / 1000.0))
}

/// `resets` counting restarts shown by start times as well as drops in value.
pub(crate) fn resets_with_start_ts(points: &[Sample], sts: &[i64]) -> f64 {
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    points
        .windows(2)
        .enumerate()
        .filter(|(i, w)| w[1].v < w[0].v || start_ts_reset(st(*i), w[0].t, st(i + 1), w[1].t))
        .count() as f64
}

/// Least-squares slope and intercept (at `intercept_t`) with Kahan-compensated sums.
pub(crate) fn linear_regression(points: &[Sample], intercept_t: i64) -> (f64, f64) {
    let init_y = points.first().map_or(f64::NAN, |p| p.v);
    let const_y = points.iter().all(|p| p.v == init_y);
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (mut sx, mut sy, mut sxy, mut sx2) = (
        KahanSum::default(),
        KahanSum::default(),
        KahanSum::default(),
        KahanSum::default(),
    );
    let n = points.len() as f64;
    for p in points {
        let x = (p.t - intercept_t) as f64 / 1e3;
        sx.add(x);
        sy.add(p.v);
        sxy.add(x * p.v);
        sx2.add(x * x);
    }
    let (sx, sy, sxy, sx2) = (sx.value(), sy.value(), sxy.value(), sx2.value());
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

pub(crate) fn changes(points: &[Sample]) -> f64 {
    let mut n = 0.0;
    for w in points.windows(2) {
        let (a, b) = (w[0].v, w[1].v);
        if a != b && !(a.is_nan() && b.is_nan()) {
            n += 1.0;
        }
    }
    n
}

pub(crate) fn resets(points: &[Sample]) -> f64 {
    points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64
}

/// Welford variance with Kahan-compensated mean and sum of squares (`stdvar_over_time`).
pub(crate) fn variance_over_time(points: &[Sample]) -> f64 {
    let mut count = 0.0;
    let mut m = KahanSum::default();
    let mut aux = KahanSum::default();
    for p in points {
        count += 1.0;
        let delta = p.v - m.value();
        m.add(delta / count);
        aux.add(delta * (p.v - m.value()));
    }
    aux.value() / count
}

pub(crate) fn double_exponential_smoothing(
    points: &[Sample],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(PromqlError::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(PromqlError::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if points.len() < 2 {
        return Ok(None);
    }
    let mut s0 = 0.0;
    let mut s1 = points[0].v;
    let mut b = points[1].v - points[0].v;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// The simple `*_over_time` functions that need only the points.
pub(crate) fn over_time(name: &str, points: &[Sample]) -> Option<f64> {
    let values: Vec<f64> = points.iter().map(|p| p.v).collect();
    let first = points.first()?;
    let last = points.last()?;
    Some(match name {
        "avg_over_time" => mean(&values),
        "sum_over_time" => {
            let mut k = KahanSum::default();
            for v in &values {
                k.add(*v);
            }
            k.value()
        }
        "count_over_time" => values.len() as f64,
        "min_over_time" => {
            values.iter().fold(
                f64::NAN,
                |acc, &v| if acc.is_nan() || v < acc { v } else { acc },
            )
        }
        "max_over_time" => {
            values.iter().fold(
                f64::NAN,
                |acc, &v| if acc.is_nan() || v > acc { v } else { acc },
            )
        }
        "stdvar_over_time" => variance_over_time(points),
        "stddev_over_time" => variance_over_time(points).sqrt(),
        "last_over_time" => last.v,
        "first_over_time" => first.v,
        "ts_of_last_over_time" => last.t as f64 / 1000.0,
        "ts_of_first_over_time" => first.t as f64 / 1000.0,
        "ts_of_max_over_time" => {
            let mut best = *first;
            for p in points {
                if p.v >= best.v || best.v.is_nan() {
                    best = *p;
                }
            }
            best.t as f64 / 1000.0
        }
        "ts_of_min_over_time" => {
            let mut best = *first;
            for p in points {
                if p.v <= best.v || best.v.is_nan() {
                    best = *p;
                }
            }
            best.t as f64 / 1000.0
        }
        "present_over_time" => 1.0,
        "changes" => changes(points),
        "resets" => resets(points),
        "mad_over_time" if values.iter().any(|v| v.is_nan()) => f64::NAN,
        "mad_over_time" => {
            let mut vals = values.clone();
            let median = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
            quantile(0.5, &mut dev)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Sample> {
        v.iter().map(|&(t, v)| Sample { t, v }).collect()
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        let p = pts(&[
            (60_000, 1.0),
            (120_000, 2.0),
            (180_000, 3.0),
            (240_000, 4.0),
        ]);
        let r = extrapolated_rate(
            &p,
            Window {
                end: 300_000,
                range: 300_000,
            },
            true,
            false,
        );
        assert!((r.unwrap_or(0.0) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn start_times_mark_resets() {
        // Start after the previous sample: restarted in between.
        assert!(start_ts_reset(0, 60_000, 90_000, 120_000));
        // Unknown, equal to the sample (start unknown) or after it (invalid): no reset.
        assert!(!start_ts_reset(0, 60_000, 0, 120_000));
        assert!(!start_ts_reset(0, 60_000, 120_000, 120_000));
        assert!(!start_ts_reset(0, 60_000, 130_000, 120_000));
        // At the previous sample: a delta sample only if the previous start was known.
        assert!(!start_ts_reset(0, 60_000, 60_000, 120_000));
        assert!(start_ts_reset(1, 60_000, 60_000, 120_000));
        assert!(!start_ts_reset(70_000, 60_000, 60_000, 120_000));
        assert!(start_ts_overlap(0, 60_000, 30_000));
        assert!(!start_ts_overlap(30_000, 60_000, 30_000));
        assert!(!start_ts_overlap(0, 60_000, 60_000));
    }

    #[test]
    fn start_time_inside_the_window_replaces_left_extrapolation() {
        let w = Window {
            end: 360_000,
            range: 300_000,
        };
        // One sample of 3 whose count began 150s earlier, inside the window: increase 3.
        let p = pts(&[(240_000, 3.0)]);
        assert_eq!(
            rate_with_start_ts(&p, &[90_000], w, false),
            (Some(3.0), false)
        );
        // The start time on the window's (open) left edge does not count.
        assert_eq!(rate_with_start_ts(&p, &[60_000], w, false), (None, false));
        // Delta samples (each starting at the previous one) add up; overlaps are reported.
        let p = pts(&[(120_000, 60.0), (180_000, 60.0), (240_000, 60.0)]);
        let w = Window {
            end: 240_000,
            range: 180_000,
        };
        let (v, overlap) = rate_with_start_ts(&p, &[60_000, 120_000, 180_000], w, false);
        assert!((v.unwrap_or(0.0) - 180.0).abs() < 1e-9 && !overlap);
        assert!(rate_with_start_ts(&p, &[60_000, 100_000, 180_000], w, false).1);
        assert_eq!(irate_with_start_ts(&p, &[0, 120_000, 180_000]), Some(1.0));
        assert_eq!(resets_with_start_ts(&p, &[60_000, 120_000, 180_000]), 2.0);
    }

    #[test]
    fn regression_of_a_line() {
        let p = pts(&[(0, 1.0), (1000, 3.0), (2000, 5.0)]);
        let (s, i) = linear_regression(&p, 0);
        assert!((s - 2.0).abs() < 1e-12 && (i - 1.0).abs() < 1e-12);
    }
}
