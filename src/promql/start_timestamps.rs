//! Start timestamps (Prometheus 3): a sample may say when the count it reports began (a
//! cumulative counter's creation, or the start of the interval a delta sample covers).
//! Storage hands them out beside the chunks (`Queryable::select_start_timestamps`); the fetch
//! stage asks only for selectors read directly by a function that uses them and aligns them
//! with the decoded samples (`SeriesData::start_ts`). `rate`, `increase`, `irate` and
//! `resets` then detect resets from them and `start_timestamp()` returns them. Anything that
//! is not a plain selector (a subquery, an expression) carries none, as upstream: the
//! propagation stops there.

use promql_parser::parser::{Call, Expr, MatrixSelector};

use crate::promql::error::Result;
use crate::promql::eval::{seek_after, Evaluator};
use crate::promql::fetch::{dur_ms, offset_ms};
use crate::promql::preprocess::{go_quote, selector_mode, RangeMode};
use crate::promql::range_functions::{self as rf, Window};
use crate::promql::value::{Elem, Val};
use crate::storage::model::{is_stale_nan, Labels, Sample, SeriesStartTimestamps, METRIC_NAME};

/// The range functions whose result depends on start timestamps.
const RANGE_FUNCTIONS: [&str; 4] = ["rate", "increase", "irate", "resets"];

/// How many series are handled between deadline/cancellation checks.
const DEADLINE_CHECK_EVERY: usize = 1024;

/// Whether `func` reads the start timestamps of its argument `arg`: only a range selector
/// without `anchored`/`smoothed` passed straight to one of `RANGE_FUNCTIONS`, or an instant
/// selector passed straight to `start_timestamp`.
pub(crate) fn uses_start_timestamps(func: &str, arg: &Expr) -> bool {
    match arg {
        Expr::MatrixSelector(ms) => {
            RANGE_FUNCTIONS.contains(&func) && selector_mode(&ms.vs) == RangeMode::Plain
        }
        Expr::VectorSelector(_) => func == "start_timestamp",
        _ => false,
    }
}

/// The start times a source gave for one selection, to be matched with its series.
pub(crate) struct StartTimes(Vec<SeriesStartTimestamps>);

impl StartTimes {
    /// Wraps a source's answer (sorted by labels, as `select_start_timestamps` promises).
    pub(crate) fn new(mut list: Vec<SeriesStartTimestamps>) -> Self {
        if !list.windows(2).all(|w| w[0].labels < w[1].labels) {
            list.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        StartTimes(list)
    }

    /// The start time of every sample of the series `labels` (0 where there is none), or
    /// `None` when none of them has one.
    pub(crate) fn aligned(&self, labels: &Labels, samples: &[Sample]) -> Option<Vec<i64>> {
        let i = self.0.binary_search_by(|s| s.labels.cmp(labels)).ok()?;
        let mut points = self.0[i].points.iter().peekable();
        let mut out = Vec::with_capacity(samples.len());
        let mut any = false;
        for s in samples {
            while points.next_if(|p| p.0 < s.t).is_some() {}
            let st = points.next_if(|p| p.0 == s.t).map_or(0, |p| p.1);
            any |= st != 0;
            out.push(st);
        }
        any.then_some(out)
    }
}

/// `rate`, `increase`, `irate` or `resets` at `t` over a plain range selector, reading the
/// start times of its series (series without any give the usual result).
pub(crate) fn eval_range_function(
    ev: &mut Evaluator,
    name: &str,
    ms: &MatrixSelector,
    t: i64,
) -> Result<Val> {
    let vs = &ms.vs;
    let end = ev.at_of(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
    let w = Window {
        end,
        range: dur_ms(ms.range),
    };
    let mut out = Vec::new();
    let mut overlapping: Vec<String> = Vec::new();
    let mut held = 0;
    if let Some(list) = ev.fetched().series(vs) {
        let (mut points, mut sts) = (Vec::new(), Vec::new());
        for (i, s) in list.iter().enumerate() {
            if i % DEADLINE_CHECK_EVERY == DEADLINE_CHECK_EVERY - 1 {
                ev.check_deadline_now()?;
            }
            let lo = seek_after(&s.samples, 0, end - w.range);
            let hi = seek_after(&s.samples, lo, end);
            points.clear();
            sts.clear();
            for j in lo..hi {
                let p = s.samples[j];
                // Stale markers are not part of a range; their start times go with them.
                if !is_stale_nan(p.v) {
                    points.push(p);
                    sts.push(s.start_ts.as_ref().map_or(0, |st| st[j]));
                }
            }
            if points.is_empty() {
                continue;
            }
            held += points.len();
            let v = match name {
                "rate" | "increase" => {
                    let (v, overlap) = rf::rate_with_start_ts(&points, &sts, w, name == "rate");
                    if overlap {
                        overlapping.push(s.labels.get(METRIC_NAME).unwrap_or("").to_string());
                    }
                    v
                }
                "irate" => rf::irate_with_start_ts(&points, &sts),
                _ => Some(rf::resets_with_start_ts(&points, &sts)),
            };
            if let Some(v) = v {
                out.push(Elem {
                    labels: s.labels.clone(),
                    v,
                    drop_name: true,
                });
            }
        }
    }
    ev.add_samples(held)?;
    for name in overlapping {
        ev.warn(format!(
            "sample has start time that overlaps with previous sample timestamp for metric {}",
            go_quote(&name)
        ));
    }
    Ok(Val::Vector(out))
}

/// `start_timestamp(v)`: for an instant selector, the start time (in seconds, 0 when unknown)
/// of each series' selected sample; any other argument carries no start times, so the result
/// is empty.
pub(crate) fn start_timestamp(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let Some(arg) = c.args.args.first() else {
        return Err(crate::promql::error::PromqlError::exec(
            "missing argument 1 of start_timestamp",
        ));
    };
    let Expr::VectorSelector(vs) = arg.as_ref() else {
        ev.eval_vector(arg, t)?;
        return Ok(Val::Vector(Vec::new()));
    };
    let selected = ev.vector_selector(vs, t)?;
    let Some(list) = ev.fetched().series(vs) else {
        return Ok(Val::Vector(Vec::new()));
    };
    // The selector keeps the fetched order and shares its label sets, so one forward walk
    // finds each selected sample's series.
    let mut series = list.iter();
    let mut out = Vec::with_capacity(selected.len());
    for (mut e, ts) in selected {
        let Some(s) = series.find(|s| std::sync::Arc::ptr_eq(&s.labels, &e.labels)) else {
            break;
        };
        let idx = s.samples.partition_point(|p| p.t < ts);
        let st = s
            .start_ts
            .as_ref()
            .filter(|_| s.samples.get(idx).is_some_and(|p| p.t == ts))
            .and_then(|st| st.get(idx).copied())
            .unwrap_or(0);
        e.v = st as f64 / 1000.0;
        e.drop_name = true;
        out.push(e);
    }
    Ok(Val::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(ts: &[i64]) -> Vec<Sample> {
        ts.iter().map(|&t| Sample { t, v: 1.0 }).collect()
    }

    #[test]
    fn aligns_start_times_with_samples() {
        let l = Labels::from_pairs([("__name__", "m")]);
        let st = StartTimes::new(vec![SeriesStartTimestamps {
            labels: l.clone(),
            points: vec![(5, 1), (20, 15), (40, 33)],
        }]);
        assert_eq!(
            st.aligned(&l, &pts(&[10, 20, 30, 40])),
            Some(vec![0, 15, 0, 33])
        );
        assert_eq!(st.aligned(&l, &pts(&[10, 30])), None);
        assert_eq!(st.aligned(&Labels::empty(), &pts(&[20])), None);
    }
}
