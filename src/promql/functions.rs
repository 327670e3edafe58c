//! Function calls: dispatch by name to the instant-vector math, time/date, label, sort,
//! `absent*`, `scalar`/`vector`, histogram and range-vector function implementations, with
//! Prometheus 3's rules for which functions drop `__name__`.

use std::collections::HashSet;
use std::sync::Arc;

use promql_parser::parser::{Call, Expr};

use crate::gocompat::format_float;
use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::fetch::{dur_ms, offset_ms};
use crate::promql::preprocess::{selector_mode, RangeMode};
use crate::promql::range_functions::{self as rf, Window};
use crate::promql::value::{Elem, Val};
use crate::promql::{histogram, labelfns, start_timestamps};
use crate::storage::model::{Label, Labels, Sample, METRIC_NAME};
use crate::time::is_leap_year;

// `actors/role.rs` still reaches the calendar through here; new code uses `crate::time`.
use crate::time::civil_from_days;

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| PromqlError::exec(format!("missing argument {} of {}", i + 1, c.func.name)))
}

/// The window a range-vector argument covers at evaluation time `t`.
fn window_of(ev: &Evaluator, e: &Expr, t: i64) -> Result<Window> {
    match unwrap_parens(e) {
        Expr::MatrixSelector(ms) => Ok(Window {
            end: ev.at_of(&ms.vs.at).unwrap_or(t) - offset_ms(&ms.vs.offset),
            range: dur_ms(ms.range),
        }),
        Expr::Subquery(sq) => Ok(Window {
            end: ev.at_of(&sq.at).unwrap_or(t) - offset_ms(&sq.offset),
            range: dur_ms(sq.range),
        }),
        _ => Err(PromqlError::exec(
            "expected a range vector selector or subquery",
        )),
    }
}

fn map_vector(v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(
        v.into_iter()
            .map(|mut e| {
                e.v = f(e.v);
                e.drop_name = true;
                e
            })
            .collect(),
    )
}

/// Labels `absent()`/`absent_over_time()` give: the selector's equality matchers.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut pairs: Vec<Label> = Vec::new();
    let mut has: HashSet<String> = HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME || m.name == crate::promql::preprocess::MODIFIER_LABEL {
            continue;
        }
        let equal = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if equal && !has.contains(&m.name) {
            pairs.retain(|l| l.name != m.name);
            pairs.push(Label::new(m.name.clone(), m.value.clone()));
            has.insert(m.name.clone());
        } else {
            pairs.retain(|l| l.name != m.name);
        }
    }
    Labels::new(pairs)
}

fn date_part(name: &str, secs: f64) -> f64 {
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    match name {
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let mut doy = d as i64;
            for (i, md) in month_days.iter().enumerate().take(m as usize - 1) {
                doy += md + i64::from(i == 1 && is_leap_year(y));
            }
            doy as f64
        }
        "days_in_month" => {
            (month_days[m as usize - 1] + i64::from(m == 2 && is_leap_year(y))) as f64
        }
        "hour" => (sod / 3600) as f64,
        "minute" => (sod % 3600 / 60) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn simple_math(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        "sgn" => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

pub(crate) fn eval_call(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let name = c.func.name;
    if let Some(f) = simple_math(name) {
        let v = ev.eval_vector(arg(c, 0)?, t)?;
        return Ok(map_vector(v, f));
    }
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "start" => Ok(Val::Scalar(ev.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ev.end as f64 / 1000.0)),
        "range" => Ok(Val::Scalar((ev.end - ev.start) as f64 / 1000.0)),
        "step" => Ok(Val::Scalar(ev.step as f64 / 1000.0)),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(arg(c, 0)?, t)?;
            let b = ev.eval_scalar(arg(c, 1)?, t)?;
            Ok(Val::Scalar(if name == "min_of" {
                go_min(a, b)
            } else {
                go_max(a, b)
            }))
        }
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            let v = ev.eval_scalar(arg(c, 0)?, t)?;
            Ok(Val::Vector(vec![Elem {
                labels: Arc::new(Labels::empty()),
                v,
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "round" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            let to = match c.args.args.get(1) {
                Some(a) => ev.eval_scalar(a, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to;
            Ok(map_vector(v, move |x| (x * inv + 0.5).floor() / inv))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            let a = ev.eval_scalar(arg(c, 1)?, t)?;
            let (lo, hi) = match name {
                "clamp" => (a, ev.eval_scalar(arg(c, 2)?, t)?),
                "clamp_min" => (a, f64::NAN),
                _ => (f64::NAN, a),
            };
            if name == "clamp" && hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(map_vector(v, move |x| match name {
                "clamp" => go_max(lo, go_min(hi, x)),
                "clamp_min" => go_max(x, lo),
                _ => go_min(x, hi),
            }))
        }
        "timestamp" => {
            let a = unwrap_parens(arg(c, 0)?);
            if let Expr::VectorSelector(vs) = a {
                let v = ev.vector_selector(vs, t)?;
                return Ok(Val::Vector(
                    v.into_iter()
                        .map(|(mut e, ts)| {
                            e.v = ts as f64 / 1000.0;
                            e.drop_name = true;
                            e
                        })
                        .collect(),
                ));
            }
            let v = ev.eval_vector(a, t)?;
            Ok(map_vector(v, move |_| t as f64 / 1000.0))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => match c.args.args.first() {
            None => Ok(Val::Vector(vec![Elem {
                labels: Arc::new(Labels::empty()),
                v: date_part(name, t as f64 / 1000.0),
                drop_name: false,
            }])),
            Some(a) => {
                let v = ev.eval_vector(a, t)?;
                Ok(map_vector(v, move |x| {
                    if x.is_finite() {
                        date_part(name, x)
                    } else {
                        f64::NAN
                    }
                }))
            }
        },
        "absent" => {
            let a = arg(c, 0)?;
            let v = ev.eval_vector(a, t)?;
            if v.is_empty() {
                Ok(Val::Vector(vec![Elem {
                    labels: Arc::new(absent_labels(a)),
                    v: 1.0,
                    drop_name: false,
                }]))
            } else {
                Ok(Val::Vector(Vec::new()))
            }
        }
        "absent_over_time" => {
            let a = arg(c, 0)?;
            let m = ev.eval_matrix(a, t)?;
            if m.is_empty() {
                Ok(Val::Vector(vec![Elem {
                    labels: Arc::new(absent_labels(a)),
                    v: 1.0,
                    drop_name: false,
                }]))
            } else {
                Ok(Val::Vector(Vec::new()))
            }
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(c, 0)?, t)?;
            if ev.start != ev.end {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels".into());
            }
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            labelfns::sort_by_label(ev, c, t, name == "sort_by_label_desc")
        }
        "label_replace" => labelfns::label_replace(ev, c, t),
        "label_join" => labelfns::label_join(ev, c, t),
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(c, 0)?, t)?;
            let v = ev.eval_vector(arg(c, 1)?, t)?;
            histogram::histogram_quantile(ev, q, v)
        }
        "histogram_quantiles" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            let label = match ev.eval(arg(c, 1)?, t)? {
                Val::Str(s) => s,
                other => {
                    return Err(PromqlError::exec(format!(
                        "expected string label name, got {}",
                        other.type_name()
                    )))
                }
            };
            let mut qs = Vec::new();
            for a in c.args.args.iter().skip(2) {
                qs.push(ev.eval_scalar(a, t)?);
            }
            histogram::histogram_quantiles(ev, v, &label, &qs)
        }
        "histogram_fraction" => {
            let lower = ev.eval_scalar(arg(c, 0)?, t)?;
            let upper = ev.eval_scalar(arg(c, 1)?, t)?;
            let v = ev.eval_vector(arg(c, 2)?, t)?;
            histogram::histogram_fraction(ev, lower, upper, v)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // These only read native histogram samples; float series contribute nothing.
            for a in &c.args.args {
                ev.eval(a, t)?;
            }
            Ok(Val::Vector(Vec::new()))
        }
        "info" => crate::promql::info::eval_info(ev, c, t),
        "start_timestamp" => start_timestamps::start_timestamp(ev, c, t),
        _ => eval_range_function(ev, c, t),
    }
}

fn eval_range_function(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let mut name = c.func.name;
    let (marg, extra) = match name {
        "quantile_over_time" => (arg(c, 1)?, Some(ev.eval_scalar(arg(c, 0)?, t)?)),
        "predict_linear" => (arg(c, 0)?, Some(ev.eval_scalar(arg(c, 1)?, t)?)),
        _ => (arg(c, 0)?, None),
    };
    if name == "count_over_time" {
        if let Expr::MatrixSelector(ms) = marg {
            // Downsampled data was read as per-window raw sample counts: their sum is the
            // raw sample count (`promql::downsampled`).
            if ev.fetched().counts_samples(&ms.vs) {
                name = "sum_over_time";
            }
        }
    }
    let (sf, tf) = if name == "double_exponential_smoothing" {
        (
            ev.eval_scalar(arg(c, 1)?, t)?,
            ev.eval_scalar(arg(c, 2)?, t)?,
        )
    } else {
        (0.0, 0.0)
    };
    if name == "quantile_over_time" {
        let q = extra.unwrap_or(f64::NAN);
        if !(0.0..=1.0).contains(&q) {
            ev.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_float(q)
            ));
        }
    }
    if let Expr::MatrixSelector(ms) = unwrap_parens(marg) {
        let mode = selector_mode(&ms.vs);
        if mode != RangeMode::Plain {
            return eval_extended(ev, name, ms, t, mode);
        }
    }
    if let Expr::MatrixSelector(ms) = marg {
        // Queries over sources without start timestamps never take this path.
        if ev.fetched().has_start_timestamps()
            && start_timestamps::uses_start_timestamps(name, marg)
        {
            return start_timestamps::eval_range_function(ev, name, ms, t);
        }
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    if let (Expr::MatrixSelector(ms), Some(f)) = (unwrap_parens(marg), window_fn(name)) {
        let node = c as *const Call as usize;
        if let Some(out) = ev.batched_range_function(node, ms, t, f.as_ref(), keep_name)? {
            return Ok(Val::Vector(out));
        }
    }
    let w = window_of(ev, marg, t)?;
    let m = ev.eval_matrix(marg, t)?;
    let mut out = Vec::with_capacity(m.len());
    for s in m {
        let v = match name {
            "rate" => rf::extrapolated_rate(&s.points, w, true, true),
            "increase" => rf::extrapolated_rate(&s.points, w, true, false),
            "delta" => rf::extrapolated_rate(&s.points, w, false, false),
            "irate" => rf::instant_value(&s.points, true),
            "idelta" => rf::instant_value(&s.points, false),
            "deriv" => {
                (s.points.len() >= 2).then(|| rf::linear_regression(&s.points, s.points[0].t).0)
            }
            "predict_linear" => (s.points.len() >= 2).then(|| {
                let (slope, icpt) = rf::linear_regression(&s.points, t);
                slope * extra.unwrap_or(f64::NAN) + icpt
            }),
            "quantile_over_time" => {
                let mut vals: Vec<f64> = s.points.iter().map(|p| p.v).collect();
                Some(crate::promql::aggregate::quantile(
                    extra.unwrap_or(f64::NAN),
                    &mut vals,
                ))
            }
            "double_exponential_smoothing" => rf::double_exponential_smoothing(&s.points, sf, tf)?,
            other => match rf::over_time(other, &s.points) {
                Some(v) => Some(v),
                None => {
                    return Err(PromqlError::exec(format!(
                        "function {other} is not supported"
                    )))
                }
            },
        };
        if let Some(v) = v {
            out.push(Elem {
                labels: s.labels,
                v,
                drop_name: if keep_name { s.drop_name } else { true },
            });
        }
    }
    Ok(Val::Vector(out))
}

/// A range function's value on one window, for the functions that need nothing else (no
/// scalar argument, no error case), so a range query can evaluate them series by series.
type WindowFn = Box<dyn Fn(&[Sample], Window) -> Option<f64>>;

fn window_fn(name: &'static str) -> Option<WindowFn> {
    Some(match name {
        "rate" => Box::new(|p: &[Sample], w| rf::extrapolated_rate(p, w, true, true)),
        "increase" => Box::new(|p: &[Sample], w| rf::extrapolated_rate(p, w, true, false)),
        "delta" => Box::new(|p: &[Sample], w| rf::extrapolated_rate(p, w, false, false)),
        "irate" => Box::new(|p: &[Sample], _| rf::instant_value(p, true)),
        "idelta" => Box::new(|p: &[Sample], _| rf::instant_value(p, false)),
        "avg_over_time" | "sum_over_time" | "count_over_time" | "min_over_time"
        | "max_over_time" | "stddev_over_time" | "stdvar_over_time" | "last_over_time"
        | "present_over_time" | "changes" | "resets" => {
            Box::new(move |p: &[Sample], _| rf::over_time(name, p))
        }
        _ => return None,
    })
}

/// `rate`/`increase`/`delta`/`changes`/`resets` over an `anchored` or `smoothed` range: the
/// points already carry the window's boundary values, so there is no extrapolation.
fn eval_extended(
    ev: &mut Evaluator,
    name: &str,
    ms: &promql_parser::parser::MatrixSelector,
    t: i64,
    mode: RangeMode,
) -> Result<Val> {
    let counter = matches!(name, "rate" | "increase");
    let series = ev.extended_range(ms, t, mode, counter)?;
    let range_s = dur_ms(ms.range) as f64 / 1000.0;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let (Some(first), Some(last)) = (s.points.first(), s.points.last()) else {
            continue;
        };
        let v = match name {
            "increase" | "rate" => {
                let mut inc = last.v - first.v;
                for w in s.points.windows(2) {
                    if w[1].v < w[0].v {
                        inc += w[0].v;
                    }
                }
                if name == "rate" {
                    inc / range_s
                } else {
                    inc
                }
            }
            "delta" => last.v - first.v,
            "changes" => rf::changes(&s.points),
            "resets" => rf::resets(&s.points),
            other => {
                return Err(PromqlError::exec(format!(
                    "function {other} does not support extended range selectors"
                )))
            }
        };
        out.push(Elem {
            labels: s.labels,
            v,
            drop_name: true,
        });
    }
    Ok(Val::Vector(out))
}
