//! `histogram_quantile` / `histogram_quantiles` over classic histograms (float series with an
//! `le` label), with Prometheus's bucket coalescing and monotonicity fix. Native histogram
//! inputs are not supported yet and give a clear error where they would be needed.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::gocompat::format_float;
use crate::promql::error::Result;
use crate::promql::eval::Evaluator;
use crate::promql::value::{Elem, Val};
use crate::storage::model::{Labels, METRIC_NAME};

/// The error text for features that need native histogram samples.
pub const NATIVE_HISTOGRAMS_UNSUPPORTED: &str = "native histograms are not supported yet";

const MIN_NORMAL: f64 = f64::MIN_POSITIVE;

/// Prometheus's `almost.Equal`: relative tolerance, NaN equals NaN.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Returns the quantile and whether monotonicity had to be forced.
fn bucket_quantile(q: f64, buckets: &mut [Bucket]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    let mut forced = false;
    let mut prev = merged[0].count;
    for b in merged.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    if merged.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[merged.len() - 1].count;
    if observations == 0.0 || observations.is_nan() {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|x| x.count < rank);
    if b == n {
        return (merged[n - 1].upper, forced);
    }
    if b == 0 && merged[0].upper <= 0.0 {
        return (merged[0].upper, forced);
    }
    let end = merged[b].upper;
    let mut count = merged[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = merged[b - 1].upper;
        count -= merged[b - 1].count;
        rank -= merged[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok(),
    }
}

/// Groups bucket series by their labels without `le`, in first-seen order.
fn bucket_groups(ev: &mut Evaluator, v: Vec<Elem>) -> Vec<(Labels, Vec<Bucket>)> {
    let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for e in v {
        let le_raw = e.labels.get("le").unwrap_or("").to_string();
        let Some(upper) = parse_le(&le_raw) else {
            let name = e.labels.metric_name().unwrap_or("").to_string();
            ev.warn(format!("bucket label \"le\" is missing or has a malformed value of \"{le_raw}\" for metric name \"{name}\""));
            continue;
        };
        let key = e.labels.without(&["le"]);
        let b = Bucket { upper, count: e.v };
        match index.get(&key) {
            Some(&i) => groups[i].1.push(b),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![b]));
            }
        }
    }
    groups
}

/// OpenMetrics-style float text, as Prometheus 3 writes `le`/`quantile` values: integers
/// keep a `.0`.
fn format_bound(v: f64) -> String {
    let s = format_float(v);
    if v.is_finite() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

fn forced_info(ev: &mut Evaluator, labels: &Labels) {
    let name = labels.get(METRIC_NAME).unwrap_or("");
    ev.info(format!(
        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"{name}\""
    ));
}

pub(crate) fn histogram_quantile(ev: &mut Evaluator, q: f64, v: Vec<Elem>) -> Result<Val> {
    if !(0.0..=1.0).contains(&q) {
        ev.warn(format!(
            "quantile value should be between 0 and 1, got {}",
            format_float(q)
        ));
    }
    let mut out = Vec::new();
    for (labels, mut buckets) in bucket_groups(ev, v) {
        let (res, forced) = bucket_quantile(q, &mut buckets);
        if forced {
            forced_info(ev, &labels);
        }
        out.push(Elem {
            labels: Arc::new(labels),
            v: res,
            drop_name: true,
        });
    }
    Ok(Val::Vector(out))
}

/// `histogram_quantiles(v, "label", q1, q2, ...)`: one output series per quantile.
pub(crate) fn histogram_quantiles(
    ev: &mut Evaluator,
    v: Vec<Elem>,
    label: &str,
    qs: &[f64],
) -> Result<Val> {
    for &q in qs {
        if !(0.0..=1.0).contains(&q) {
            ev.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_float(q)
            ));
        }
    }
    let mut out = Vec::new();
    for (labels, buckets) in bucket_groups(ev, v) {
        let mut any_forced = false;
        for &q in qs {
            let mut b = buckets.clone();
            let (res, forced) = bucket_quantile(q, &mut b);
            any_forced |= forced;
            out.push(Elem {
                labels: Arc::new(labels.with(label, &format_bound(q))),
                v: res,
                drop_name: true,
            });
        }
        if any_forced {
            forced_info(ev, &labels);
        }
    }
    Ok(Val::Vector(out))
}

/// The fraction of observations between `lower` and `upper` in classic buckets, with
/// Prometheus's interpolation: the first bucket starts at 0 when its bound is positive, and
/// observations of an infinitely wide bucket sit at its infinite end.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [Bucket]) -> f64 {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    let count = merged[merged.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let mut rank = 0.0;
    let (mut lower_rank, mut upper_rank) = (None, None);
    for (i, b) in merged.iter().enumerate() {
        let lo = match i {
            0 if b.upper > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => merged[i - 1].upper,
        };
        let hi = b.upper;
        let interpolate = |v: f64| {
            if lo == f64::NEG_INFINITY {
                b.count
            } else if hi == f64::INFINITY {
                rank
            } else {
                rank + (b.count - rank) * (v - lo) / (hi - lo)
            }
        };
        if lower_rank.is_none() && lo >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && lo >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        if lower_rank.is_none() && lo < lower && hi > lower {
            lower_rank = Some(interpolate(lower));
        }
        if upper_rank.is_none() && lo < upper && hi > upper {
            upper_rank = Some(interpolate(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = b.count;
    }
    let lr = lower_rank.filter(|r| *r <= count).unwrap_or(count);
    let ur = upper_rank.filter(|r| *r <= count).unwrap_or(count);
    (ur - lr) / count
}

/// `histogram_fraction(lower, upper, v)` over classic histograms.
pub(crate) fn histogram_fraction(
    ev: &mut Evaluator,
    lower: f64,
    upper: f64,
    v: Vec<Elem>,
) -> Result<Val> {
    let mut out = Vec::new();
    for (labels, mut buckets) in bucket_groups(ev, v) {
        let res = bucket_fraction(lower, upper, &mut buckets);
        out.push(Elem {
            labels: Arc::new(labels),
            v: res,
            drop_name: true,
        });
    }
    Ok(Val::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[(f64, f64)]) -> Vec<Bucket> {
        v.iter()
            .map(|&(upper, count)| Bucket { upper, count })
            .collect()
    }

    #[test]
    fn fractions_of_classic_buckets() {
        let pos = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (f64::INFINITY, 100.0)];
        assert!((bucket_fraction(0.0, 1.5, &mut b(&pos)) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(400.0, f64::INFINITY, &mut b(&pos)) - 0.94).abs() < 1e-12);
        let neg = [
            (-3.0, 10.0),
            (-2.0, 12.0),
            (-1.0, 15.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((bucket_fraction(-4.0, -2.0, &mut b(&neg)) - 0.02).abs() < 1e-12);
        assert!(bucket_fraction(0.0, 1.0, &mut b(&[(f64::INFINITY, 0.0)])).is_nan());
    }

    #[test]
    fn quantile_with_monotonicity_fix() {
        let mut v = b(&[(0.1, 2.0), (1.0, 1.0), (f64::INFINITY, 3.0)]);
        let (q, forced) = bucket_quantile(0.5, &mut v);
        assert!(forced);
        assert!((q - 0.075).abs() < 1e-9, "{q}");
    }
}
