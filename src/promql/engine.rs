//! The public entry points: `Engine::instant` and `Engine::range`. They parse the query
//! (after the token-based pre-pass), fetch every selector's series once, evaluate the
//! expression at each step, apply delayed `__name__` removal and assemble the result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::fetch;
use crate::promql::preprocess;
use crate::promql::value::{Elem, QueryValue, RangeSeries, Val, Value, VectorSample};
use crate::storage::model::{Labels, Queryable, Sample};

/// Engine settings; the defaults are Prometheus's.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once (default 50,000,000).
    pub max_samples: usize,
    /// Wall-clock budget of one query (default 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), Prometheus's evaluation interval.
    pub default_subquery_step: Duration,
    /// Prometheus 3's delayed `__name__` removal (the test files assume it).
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: true,
        }
    }
}

/// Evaluates PromQL queries.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

/// Label names removed together with `__name__` (Prometheus 3 type-and-unit metadata).
pub(crate) const NAME_LIKE_LABELS: [&str; 3] = ["__name__", "__type__", "__unit__"];

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at `t_ms`.
    pub fn instant(&self, queryable: &dyn Queryable, query: &str, t_ms: i64) -> Result<QueryValue> {
        self.instant_with_cancel(queryable, query, t_ms, None)
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` (inclusive).
    pub fn range(
        &self,
        queryable: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryValue> {
        self.range_with_cancel(queryable, query, start_ms, end_ms, step_ms, None)
    }

    /// Like `instant`, stopping with `PromqlError::Canceled` once `cancel` becomes true.
    pub fn instant_with_cancel(
        &self,
        queryable: &dyn Queryable,
        query: &str,
        t_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryValue> {
        self.instant_inner(queryable, query, t_ms, cancel, None)
    }

    /// An instant query in which every selector and subquery outside subqueries that has no
    /// `@` behaves as if written with `@ pin_ms` (the upstream test harness's check that
    /// step-invariant queries give the same answer at any evaluation time).
    pub fn instant_pinned(
        &self,
        queryable: &dyn Queryable,
        query: &str,
        t_ms: i64,
        pin_ms: i64,
    ) -> Result<QueryValue> {
        self.instant_inner(queryable, query, t_ms, None, Some(pin_ms))
    }

    fn instant_inner(
        &self,
        queryable: &dyn Queryable,
        query: &str,
        t_ms: i64,
        cancel: Option<&AtomicBool>,
        pin: Option<i64>,
    ) -> Result<QueryValue> {
        let expr = parse_query(query, 0, 0)?;
        let mut ev = self.evaluator(queryable, &expr, t_ms, t_ms, 0, cancel, pin)?;
        let val = ev.eval_top(&expr, t_ms)?;
        let value = match val {
            Val::Scalar(v) => Value::Scalar { t: t_ms, v },
            Val::Str(s) => Value::String { t: t_ms, s },
            Val::Vector(elems) => Value::Vector(finish_vector(elems, t_ms)?),
            Val::Matrix(series) => Value::Matrix(finish_matrix(
                series
                    .into_iter()
                    .map(|s| (s.labels, s.drop_name, s.points))
                    .collect(),
            )?),
        };
        Ok(ev.into_result(value))
    }

    /// Like `range`, stopping with `PromqlError::Canceled` once `cancel` becomes true.
    pub fn range_with_cancel(
        &self,
        queryable: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryValue> {
        if step_ms <= 0 {
            return Err(PromqlError::Parse("zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
        }
        if end_ms < start_ms {
            return Err(PromqlError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = parse_query(query, step_ms, end_ms - start_ms)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(PromqlError::Parse(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                type_display(other)
            )))
            }
        }
        let mut ev = self.evaluator(queryable, &expr, start_ms, end_ms, step_ms, cancel, None)?;
        let mut series: BTreeMap<(Labels, bool), Vec<Sample>> = BTreeMap::new();
        let mut is_scalar = false;
        let mut total_points = 0usize;
        let mut t = start_ms;
        while t <= end_ms {
            ev.set_output_points(total_points);
            match ev.eval_top(&expr, t)? {
                Val::Scalar(v) => {
                    is_scalar = true;
                    series
                        .entry((Labels::empty(), false))
                        .or_default()
                        .push(Sample { t, v });
                    total_points += 1;
                }
                Val::Vector(elems) => {
                    check_step_duplicates(&elems)?;
                    total_points += elems.len();
                    for e in elems {
                        series
                            .entry((e.labels, e.drop_name))
                            .or_default()
                            .push(Sample { t, v: e.v });
                    }
                }
                other => {
                    return Err(PromqlError::exec(format!(
                        "unexpected {} result in range query",
                        other.type_name()
                    )))
                }
            }
            if total_points > self.opts.max_samples {
                return Err(PromqlError::exec(crate::promql::error::TOO_MANY_SAMPLES));
            }
            t += step_ms;
        }
        let _ = is_scalar;
        let value = Value::Matrix(finish_matrix(
            series.into_iter().map(|((l, d), p)| (l, d, p)).collect(),
        )?);
        Ok(ev.into_result(value))
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluator<'a>(
        &'a self,
        queryable: &'a dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        cancel: Option<&'a AtomicBool>,
        pin: Option<i64>,
    ) -> Result<Evaluator<'a>> {
        let deadline = Instant::now() + self.opts.timeout;
        let data = fetch::fetch_all(
            queryable, expr, start, end, &self.opts, deadline, cancel, pin,
        )?;
        let mut ev = Evaluator::new(&self.opts, data, start, end, step, deadline, cancel);
        ev.set_pin(pin);
        Ok(ev)
    }
}

/// Runs the pre-pass and the parser; errors are Prometheus `bad_data`.
pub fn parse_query(query: &str, step_ms: i64, range_ms: i64) -> Result<Expr> {
    let rewritten = preprocess::rewrite(query, step_ms, range_ms).map_err(PromqlError::Parse)?;
    preprocess::register_wrappers();
    let expr = parser::parse(&rewritten).map_err(PromqlError::Parse)?;
    preprocess::validate(&expr).map_err(PromqlError::Parse)?;
    Ok(expr)
}

fn type_display(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Prometheus rejects a step whose vector holds the same label set twice.
fn check_step_duplicates(elems: &[Elem]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for e in elems {
        if !seen.insert((&e.labels, e.drop_name)) {
            return Err(PromqlError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
    }
    Ok(())
}

pub(crate) fn drop_name_labels(l: &Labels) -> Labels {
    l.without(&NAME_LIKE_LABELS)
}

fn finish_vector(elems: Vec<Elem>, t: i64) -> Result<Vec<VectorSample>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(elems.len());
    for e in elems {
        let labels = if e.drop_name {
            drop_name_labels(&e.labels)
        } else {
            e.labels
        };
        if !seen.insert(labels.clone()) {
            return Err(PromqlError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
        out.push(VectorSample { labels, t, v: e.v });
    }
    Ok(out)
}

fn finish_matrix(series: Vec<(Labels, bool, Vec<Sample>)>) -> Result<Vec<RangeSeries>> {
    // Series whose names are dropped may collapse into one label set; that is fine as long
    // as they never have a point at the same timestamp (Prometheus merges them).
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut merged = false;
    for (labels, drop, points) in series {
        let labels = if drop {
            drop_name_labels(&labels)
        } else {
            labels
        };
        match out.get_mut(&labels) {
            Some(existing) => {
                existing.extend(points);
                merged = true;
            }
            None => {
                out.insert(labels, points);
            }
        }
    }
    if merged {
        for points in out.values_mut() {
            points.sort_by_key(|p| p.t);
            if points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(PromqlError::exec(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(labels, points)| RangeSeries { labels, points })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_escapes_reach_the_ast() {
        let e = parse_query(r#"label_replace(x, "\xff", "", "src", "(.*)")"#, 0, 0).unwrap();
        let Expr::Call(c) = e else {
            panic!("not a call")
        };
        let Expr::StringLiteral(s) = c.args.args[1].as_ref() else {
            panic!("not a string")
        };
        assert!(!crate::promql::preprocess::valid_label_name(&s.val));
        assert_eq!(crate::promql::preprocess::go_quote(&s.val), r#""\xff""#);
    }
}
