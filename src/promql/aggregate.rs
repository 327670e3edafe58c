//! Aggregation operators (`sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`, `limitk`, `limit_ratio`) with `by`/`without`
//! grouping, following Prometheus's NaN/Inf handling and output order (first-seen group order).

use std::sync::Arc;

use promql_parser::parser::token::*;
use promql_parser::parser::{AggregateExpr, LabelModifier};
use rustc_hash::FxHashMap;

use crate::gocompat::format_float;
use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::value::{hash_labels_where, Elem, Val};
use crate::storage::model::{Labels, METRIC_NAME};

/// Kahan-compensated running sum, as Prometheus uses for `sum` and `avg`.
#[derive(Clone, Copy, Default)]
pub(crate) struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if t.is_infinite() {
            self.c = 0.0;
        } else if self.sum.abs() >= v.abs() {
            self.c += (self.sum - t) + v;
        } else {
            self.c += (v - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn value(&self) -> f64 {
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.c
        }
    }
}

/// Mean with Kahan summation, falling back to an incremental mean when the sum overflows.
pub(crate) fn mean(values: &[f64]) -> f64 {
    let mut k = KahanSum::default();
    for &v in values {
        k.add(v);
    }
    let s = k.value();
    let n = values.len() as f64;
    if s.is_finite() || values.iter().any(|v| v.is_infinite() || v.is_nan()) {
        return s / n;
    }
    let mut m = KahanSum::default();
    for (i, &v) in values.iter().enumerate() {
        let n = i as f64 + 1.0;
        let cur = m.value();
        m.add(v / n - cur / n);
    }
    m.value()
}

/// Population variance via Welford's algorithm (NaN as soon as an Inf is involved).
pub(crate) fn variance(values: &[f64]) -> f64 {
    let mut count = 0.0;
    let mut m = 0.0;
    let mut m2 = 0.0;
    for &v in values {
        count += 1.0;
        let delta = v - m;
        m += delta / count;
        m2 += delta * (v - m);
    }
    m2 / count
}

/// The φ-quantile of `values` the way Prometheus interpolates it.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go's sort puts NaN first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lo = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let hi = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lo * (1.0 - weight) + hi * weight
}

fn group_labels(l: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        Some(LabelModifier::Include(names)) => {
            let keep: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
            l.keep_only(&keep)
        }
        Some(LabelModifier::Exclude(names)) => {
            let mut drop: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
            drop.push(METRIC_NAME);
            l.without(&drop)
        }
        None => Labels::empty(),
    }
}

/// A hash of the grouping labels, computed without building them.
fn group_hash(l: &Labels, modifier: Option<&LabelModifier>) -> u64 {
    match modifier {
        Some(LabelModifier::Include(names)) => {
            hash_labels_where(l, |n| names.labels.iter().any(|x| x == n))
        }
        Some(LabelModifier::Exclude(names)) => hash_labels_where(l, |n| {
            n != METRIC_NAME && !names.labels.iter().any(|x| x == n)
        }),
        None => 0,
    }
}

/// Groups `elems` by their grouping labels, keeping first-seen group order. `node` names the
/// aggregation for the evaluator's per-query hash memo.
fn group(
    ev: &mut Evaluator,
    node: usize,
    elems: Vec<Elem>,
    modifier: Option<&LabelModifier>,
) -> Vec<(Labels, Vec<Elem>)> {
    let mut index: FxHashMap<u64, usize> = FxHashMap::default();
    let mut groups: Vec<(Labels, Vec<Elem>)> = Vec::new();
    for e in elems {
        let key = ev.memo_hash(node, &e.labels, |l| group_hash(l, modifier));
        match index.get(&key) {
            Some(&i) => groups[i].1.push(e),
            None => {
                index.insert(key, groups.len());
                groups.push((group_labels(&e.labels, modifier), vec![e]));
            }
        }
    }
    groups
}

/// Like `group`, keeping only the values, for the aggregations that need nothing else. The
/// group label sets come from the evaluator's per-query cache, so every step shares them:
/// nothing is rebuilt per step, and the operators above see the same label sets again.
fn group_values(
    ev: &mut Evaluator,
    node: usize,
    elems: Vec<Elem>,
    modifier: Option<&LabelModifier>,
) -> Vec<(Arc<Labels>, bool, Vec<f64>)> {
    let mut index: FxHashMap<u64, usize> = FxHashMap::default();
    let mut groups: Vec<(Arc<Labels>, bool, Vec<f64>)> = Vec::new();
    for e in elems {
        let key = ev.memo_hash(node, &e.labels, |l| group_hash(l, modifier));
        match index.get(&key) {
            Some(&i) => {
                let g = &mut groups[i];
                g.1 |= e.drop_name;
                g.2.push(e.v);
            }
            None => {
                index.insert(key, groups.len());
                let labels = ev.group_labels(node, key, || group_labels(&e.labels, modifier));
                groups.push((labels, e.drop_name, vec![e.v]));
            }
        }
    }
    groups
}

pub(crate) fn eval_aggregate(ev: &mut Evaluator, a: &AggregateExpr, t: i64) -> Result<Val> {
    let op = a.op.id();
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let num_param = match &param {
        Some(Val::Scalar(v)) => Some(*v),
        _ => None,
    };
    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK => {
            let k = num_param.unwrap_or(f64::NAN);
            if k.is_nan() {
                return Err(PromqlError::exec("Parameter value is NaN"));
            }
            if k > i64::MAX as f64 || k < i64::MIN as f64 {
                return Err(PromqlError::exec(format!(
                    "Scalar value {} overflows int64",
                    format_float(k)
                )));
            }
        }
        T_LIMIT_RATIO => {
            let r = num_param.unwrap_or(f64::NAN);
            if r.is_nan() {
                return Err(PromqlError::exec("Ratio value is NaN"));
            }
        }
        T_QUANTILE => {
            let q = num_param.unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&q) {
                ev.warn(format!(
                    "quantile value should be between 0 and 1, got {}",
                    format_float(q)
                ));
            }
        }
        _ => {}
    }
    let modifier = a.modifier.as_ref();
    let node = a as *const AggregateExpr as usize;
    if !matches!(
        op,
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO | T_COUNT_VALUES
    ) {
        // Only values and grouping labels matter here: when the grouping cannot see a name,
        // the input's names need not be dropped first (nor its output's, which has none).
        let names_ignored = !ev.opts.delayed_name_removal
            && match modifier {
                None => true,
                Some(LabelModifier::Include(names)) => !names
                    .labels
                    .iter()
                    .any(|n| crate::promql::engine::NAME_LIKE_LABELS.contains(&n.as_str())),
                Some(LabelModifier::Exclude(_)) => false,
            };
        let input = if names_ignored {
            ev.eval_vector_names_ignored(&a.expr, t)?
        } else {
            ev.eval_vector(&a.expr, t)?
        };
        let mut out = Vec::new();
        for (labels, drop_name, values) in group_values(ev, node, input, modifier) {
            let v = simple_agg(op, values, num_param.unwrap_or(f64::NAN))?;
            out.push(Elem {
                labels,
                v,
                drop_name: drop_name && !names_ignored,
            });
        }
        return Ok(Val::Vector(out));
    }
    let input = ev.eval_vector(&a.expr, t)?;
    let groups = group(ev, node, input, modifier);
    let mut out = Vec::new();
    match op {
        T_TOPK | T_BOTTOMK => {
            let k = num_param.unwrap_or(0.0) as i64;
            for (_, mut elems) in groups {
                if k < 1 {
                    continue;
                }
                let top = op == T_TOPK;
                elems.sort_by(|x, y| match (x.v.is_nan(), y.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => {
                        if top {
                            y.v.partial_cmp(&x.v).unwrap_or(std::cmp::Ordering::Equal)
                        } else {
                            x.v.partial_cmp(&y.v).unwrap_or(std::cmp::Ordering::Equal)
                        }
                    }
                });
                elems.truncate(k.min(elems.len() as i64) as usize);
                out.extend(elems);
            }
        }
        T_LIMITK => {
            let k = num_param.unwrap_or(0.0) as i64;
            for (_, mut elems) in groups {
                if k < 1 {
                    continue;
                }
                elems.truncate(k.min(elems.len() as i64) as usize);
                out.extend(elems);
            }
        }
        T_LIMIT_RATIO => {
            let mut r = num_param.unwrap_or(0.0);
            if !(-1.0..=1.0).contains(&r) {
                let capped = r.clamp(-1.0, 1.0);
                ev.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to {}",
                    format_float(r),
                    format_float(capped)
                ));
                r = capped;
            }
            for (_, elems) in groups {
                for e in elems {
                    let h = label_hash_ratio(&e.labels);
                    let keep = if r >= 0.0 { h < r } else { h >= 1.0 + r };
                    if keep {
                        out.push(e);
                    }
                }
            }
        }
        T_COUNT_VALUES => {
            let label = match &param {
                Some(Val::Str(s)) => s.clone(),
                _ => return Err(PromqlError::exec("count_values needs a string parameter")),
            };
            if !crate::promql::preprocess::valid_label_name(&label) {
                return Err(PromqlError::exec(format!(
                    "invalid label name {}",
                    crate::promql::preprocess::go_quote(&label)
                )));
            }
            let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
            let mut counts: Vec<(Labels, f64)> = Vec::new();
            for (g, elems) in groups {
                for e in elems {
                    let key = g.with(&label, &format_float(e.v));
                    match index.get(&key) {
                        Some(&i) => counts[i].1 += 1.0,
                        None => {
                            index.insert(key.clone(), counts.len());
                            counts.push((key, 1.0));
                        }
                    }
                }
            }
            out = counts
                .into_iter()
                .map(|(labels, v)| Elem {
                    labels: Arc::new(labels),
                    v,
                    drop_name: false,
                })
                .collect();
        }
        other => {
            return Err(PromqlError::exec(format!(
                "unknown aggregation operator {}",
                promql_parser::parser::token::TokenType::new(other)
            )))
        }
    }
    Ok(Val::Vector(out))
}

fn simple_agg(op: TokenId, mut values: Vec<f64>, param: f64) -> Result<f64> {
    Ok(match op {
        T_SUM => {
            let mut k = KahanSum::default();
            for v in &values {
                k.add(*v);
            }
            k.value()
        }
        T_AVG => mean(&values),
        T_COUNT => values.len() as f64,
        T_GROUP => 1.0,
        T_MIN => values.iter().fold(
            f64::NAN,
            |acc, &v| if acc.is_nan() || v < acc { v } else { acc },
        ),
        T_MAX => values.iter().fold(
            f64::NAN,
            |acc, &v| if acc.is_nan() || v > acc { v } else { acc },
        ),
        T_STDVAR => variance(&values),
        T_STDDEV => variance(&values).sqrt(),
        T_QUANTILE => quantile(param, &mut values),
        other => {
            return Err(PromqlError::exec(format!(
                "unknown aggregation operator {}",
                promql_parser::parser::token::TokenType::new(other)
            )))
        }
    })
}

/// A stable value in [0, 1) derived from a label set, used by `limit_ratio` to pick the
/// same series at every step.
fn label_hash_ratio(l: &Labels) -> f64 {
    let mut bytes = Vec::new();
    for lb in l.iter() {
        bytes.extend_from_slice(lb.name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(lb.value.as_bytes());
        bytes.push(0xff);
    }
    let h = xxhash_rust::xxh64::xxh64(&bytes, 0);
    h as f64 / u64::MAX as f64
}
