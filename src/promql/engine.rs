//! The public entry points: `Engine::instant` and `Engine::range`. They parse the query
//! (after the token-based pre-pass), fetch every selector's series once, evaluate the
//! expression at each step, apply delayed `__name__` removal and assemble the result.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};
use rustc_hash::FxHashMap;

use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::fetch;
use crate::promql::freer::Freer;
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
    /// Most samples a query may decode from storage in total (default 500,000,000, about
    /// 8 GB); the engine decodes each selector's window up front, so this bounds its memory.
    pub max_loaded_samples: usize,
    /// Wall-clock budget of one query (default 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), Prometheus's evaluation interval.
    pub default_subquery_step: Duration,
    /// Prometheus 3's delayed `__name__` removal (feature flag `promql-delayed-name-removal`,
    /// off in a stock server, so off by default; the upstream test files assume it on).
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_loaded_samples: 500_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: false,
        }
    }
}

/// Evaluates PromQL queries.
#[derive(Clone, Default)]
pub struct Engine {
    pub opts: EngineOptions,
    /// Where each query's data is dropped once its answer is built (inline by default).
    freer: Freer,
    /// Told every query's parsed expression before it is evaluated (metric usage).
    observer: Option<Observer>,
}

/// What `Engine::observe` calls with each parsed query.
pub type Observer = std::sync::Arc<dyn Fn(&Expr) + Send + Sync>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("opts", &self.opts)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

/// Most points per series a range query may have: Prometheus refuses more than this, so a
/// query of exactly 11,000 steps is allowed.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Deeper nesting than this is refused before parsing, so no recursive pass can exhaust the
/// stack of a query worker (a stack overflow aborts the process; a panic would not).
pub const MAX_NESTING: usize = 256;

/// The checks on a range query's parameters, in Prometheus's order and words; the one place
/// they are made (the engine runs them, and the HTTP API calls them before it reads further
/// parameters, as Prometheus does).
pub fn check_range_params(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<()> {
    if end_ms < start_ms {
        return Err(PromqlError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    if step_ms <= 0 {
        return Err(PromqlError::BadData("zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
    }
    let (start, end) = (fetch::clamp_time(start_ms), fetch::clamp_time(end_ms));
    let step = step_ms.min(fetch::TIME_BOUND);
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(PromqlError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    Ok(())
}

/// Refuses queries nested deeper than `MAX_NESTING` brackets (outside string literals).
pub fn check_nesting(q: &str) -> Result<()> {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_NESTING {
        return Err(PromqlError::Parse(format!(
            "query nests {max} levels of brackets, more than the {MAX_NESTING} allowed"
        )));
    }
    Ok(())
}

/// Label names removed together with `__name__` (Prometheus 3 type-and-unit metadata).
pub(crate) const NAME_LIKE_LABELS: [&str; 3] = ["__name__", "__type__", "__unit__"];

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine {
            opts,
            freer: Freer::default(),
            observer: None,
        }
    }

    /// The same engine, telling `observer` each parsed query before evaluating it.
    pub fn observe(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    fn parsed(&self, expr: &Expr) {
        if let Some(o) = &self.observer {
            o(expr);
        }
    }

    /// The same engine, dropping each query's data through `freer`.
    pub fn with_freer(mut self, freer: Freer) -> Self {
        self.freer = freer;
        self
    }

    /// Drops a finished answer through the engine's freer.
    pub fn free(&self, garbage: Box<dyn Send>) {
        self.freer.free(garbage);
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
        let t_ms = fetch::clamp_time(t_ms);
        let expr = parse_query(query, 0, 0)?;
        self.parsed(&expr);
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
        // Prometheus's API limits, applied here so every caller gets them.
        check_range_params(start_ms, end_ms, step_ms)?;
        let (start_ms, end_ms) = (fetch::clamp_time(start_ms), fetch::clamp_time(end_ms));
        let step_ms = step_ms.min(fetch::TIME_BOUND);
        let expr = parse_query(query, step_ms, end_ms - start_ms)?;
        self.parsed(&expr);
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(PromqlError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                type_display(other)
            )))
            }
        }
        let mut ev = self.evaluator(queryable, &expr, start_ms, end_ms, step_ms, cancel, None)?;
        // Output series in first-seen order, found by label set; a series that already has a
        // point at this step means the step's vector held the same label set twice.
        let mut index: FxHashMap<(Arc<Labels>, bool), usize> = FxHashMap::default();
        // Most steps return the label sets of earlier steps (shared `Arc`s): found by address
        // first, they need no hashing of their contents.
        let mut by_ptr: FxHashMap<(usize, bool), usize> = FxHashMap::default();
        let mut series: Vec<(Arc<Labels>, bool, Vec<Sample>)> = Vec::new();
        let mut total_points = 0usize;
        let mut t = start_ms;
        while t <= end_ms {
            ev.set_output_points(total_points);
            let elems = match ev.eval_top(&expr, t)? {
                Val::Scalar(v) => vec![Elem {
                    labels: Arc::new(Labels::empty()),
                    v,
                    drop_name: false,
                }],
                Val::Vector(elems) => elems,
                other => {
                    return Err(PromqlError::exec(format!(
                        "unexpected {} result in range query",
                        other.type_name()
                    )))
                }
            };
            total_points += elems.len();
            for e in elems {
                let ptr = (Arc::as_ptr(&e.labels) as usize, e.drop_name);
                let i = match by_ptr.get(&ptr) {
                    Some(&i) => i,
                    None => {
                        let key = (e.labels, e.drop_name);
                        match index.get(&key) {
                            Some(&i) => i,
                            None => {
                                // Only the label set kept in `series` is known by address:
                                // it lives to the end, so its address cannot be reused.
                                by_ptr.insert(ptr, series.len());
                                index.insert(key.clone(), series.len());
                                series.push((key.0, key.1, Vec::new()));
                                series.len() - 1
                            }
                        }
                    }
                };
                let points = &mut series[i].2;
                if points.last().is_some_and(|p| p.t == t) {
                    return Err(PromqlError::exec(
                        "vector cannot contain metrics with the same labelset",
                    ));
                }
                points.push(Sample { t, v: e.v });
            }
            if total_points > self.opts.max_samples {
                return Err(PromqlError::exec(crate::promql::error::TOO_MANY_SAMPLES));
            }
            t += step_ms;
        }
        let value = Value::Matrix(finish_matrix(series)?);
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
        ev.set_freer(self.freer.clone());
        Ok(ev)
    }
}

/// Runs the pre-pass and the parser; errors are Prometheus `bad_data`.
pub fn parse_query(query: &str, step_ms: i64, range_ms: i64) -> Result<Expr> {
    check_nesting(query)?;
    // The pre-pass meets some errors (an unclosed string) before the parser does; they are
    // worded and located the same way.
    let rewritten = preprocess::rewrite(query, step_ms, range_ms)
        .map_err(|e| PromqlError::from_parser(query, &e))?;
    let expr = parser::parse(&rewritten).map_err(|e| PromqlError::from_parser(query, &e))?;
    preprocess::validate(&expr).map_err(PromqlError::Execution)?;
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

pub(crate) fn drop_name_labels(l: &Labels) -> Labels {
    l.without(&NAME_LIKE_LABELS)
}

fn finish_vector(elems: Vec<Elem>, t: i64) -> Result<Vec<VectorSample>> {
    let mut out = Vec::with_capacity(elems.len());
    for e in elems {
        let labels = if e.drop_name {
            drop_name_labels(&e.labels)
        } else {
            Arc::unwrap_or_clone(e.labels)
        };
        out.push(VectorSample { labels, t, v: e.v });
    }
    // Checked on references once all are built, so no label set is copied for it.
    let mut seen: rustc_hash::FxHashSet<&Labels> = Default::default();
    seen.reserve(out.len());
    if !out.iter().all(|s| seen.insert(&s.labels)) {
        return Err(PromqlError::exec(
            "vector cannot contain metrics with the same labelset",
        ));
    }
    Ok(out)
}

fn finish_matrix(series: Vec<(Arc<Labels>, bool, Vec<Sample>)>) -> Result<Vec<RangeSeries>> {
    // Series whose names are dropped may collapse into one label set; that is fine as long
    // as they never have a point at the same timestamp (Prometheus merges them).
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut merged = false;
    for (labels, drop, points) in series {
        let labels = if drop {
            drop_name_labels(&labels)
        } else {
            Arc::unwrap_or_clone(labels)
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
    use crate::storage::model::{Matcher, QueryResult, SelectHints, Series};

    /// A source with no series.
    struct Empty;
    impl Queryable for Empty {
        fn select(
            &self,
            _: &[Matcher],
            _: i64,
            _: i64,
            _: &SelectHints,
        ) -> QueryResult<Vec<Series>> {
            Ok(Vec::new())
        }
        fn label_names(&self, _: &[Matcher], _: i64, _: i64) -> QueryResult<Vec<String>> {
            Ok(Vec::new())
        }
        fn label_values(&self, _: &str, _: &[Matcher], _: i64, _: i64) -> QueryResult<Vec<String>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn exactly_eleven_thousand_points_are_allowed_and_one_more_is_not() {
        let engine = Engine::default();
        let step = 15_000;
        let end = MAX_POINTS_PER_SERIES * step;
        let v = engine
            .range(&Empty, "1", 0, end, step)
            .expect("11,000 steps (11,001 points with both ends) are Prometheus's limit, allowed");
        let Value::Matrix(m) = v.value else {
            panic!("a range query answers a matrix")
        };
        assert_eq!(m[0].points.len() as i64, MAX_POINTS_PER_SERIES + 1);
        let err = engine.range(&Empty, "1", 0, end + step, step).unwrap_err();
        assert_eq!(err.kind(), crate::promql::ErrorKind::BadData);
        assert!(err
            .to_string()
            .starts_with("exceeded maximum resolution of 11,000 points"));
        assert!(check_range_params(0, end, step).is_ok());
        assert!(check_range_params(0, end + step, step).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_but_strings_do_not_count() {
        let deep = format!("{}1{}", "(".repeat(300), ")".repeat(300));
        assert_eq!(
            check_nesting(&deep).unwrap_err().kind(),
            crate::promql::ErrorKind::Parse
        );
        assert!(parse_query(&deep, 0, 0).is_err(), "every parse is guarded");
        assert!(check_nesting(&format!("{}1{}", "(".repeat(20), ")".repeat(20))).is_ok());
        assert!(check_nesting(&format!(
            "label_replace(up, \"a\", \"{}\", \"b\", \"c\")",
            "(".repeat(400)
        ))
        .is_ok());
    }

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
