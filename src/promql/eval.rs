//! The evaluator: evaluates an expression tree at one timestamp against the series fetched
//! for the query, dispatching to the binary, aggregation and function modules. It also owns
//! the per-query bookkeeping: annotations, the sample budget and the deadline.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use promql_parser::parser::{AtModifier, Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use rustc_hash::FxHashMap;

use crate::promql::engine::EngineOptions;
use crate::promql::error::{PromqlError, Result, TOO_MANY_SAMPLES};
use crate::promql::fetch::{at_ms, check_deadline, dur_ms, offset_ms, Fetched};
use crate::promql::preprocess::{selector_mode, RangeMode};
use crate::promql::value::{Elem, MSeries, QueryValue, Val, Value};
use crate::promql::{aggregate, binary, functions};

mod batch;
use super::freer::Freer;
use crate::storage::model::{is_stale_nan, Labels, Sample};
use batch::Batch;

/// How many series a selector walks between deadline/cancellation checks.
const DEADLINE_CHECK_EVERY: usize = 1024;

pub(crate) struct Evaluator<'a> {
    pub opts: &'a EngineOptions,
    data: Fetched,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    deadline: Instant,
    cancel: Option<&'a AtomicBool>,
    warnings: BTreeSet<String>,
    infos: BTreeSet<String>,
    step_samples: usize,
    output_points: usize,
    sub_cache: FxHashMap<(usize, i64), Arc<Vec<Elem>>>,
    /// Per selector node (address in the query's AST, plus which edge), each series' sample
    /// position at the previous evaluation: steps move forward, so the next lookup starts
    /// there instead of binary-searching every series again (see `seek_after`).
    cursors: FxHashMap<(usize, u8), Vec<usize>>,
    /// Label sets seen at earlier steps (by address): the set without `__name__` and the
    /// hash used for the duplicate check, so a range query builds them once per series.
    name_cache: FxHashMap<(usize, bool), NameCacheEntry>,
    /// Range functions of a range query evaluated for every step at once (by call node).
    batches: FxHashMap<usize, Batch>,
    /// Grouping and matching hashes by (label set address, aggregation or operator node):
    /// the series entering an operator are mostly the same label sets at every step.
    hash_memo: FxHashMap<(usize, usize), (Arc<Labels>, u64)>,
    /// Output label sets of aggregations by (aggregation node, group hash), shared by all
    /// steps (see `group_labels`).
    group_labels: FxHashMap<(usize, u64), Arc<Labels>>,
    /// An `@` applied to every selector and subquery outside subqueries that has none (the
    /// test harness's step-invariance check).
    pin: Option<i64>,
    sub_depth: usize,
    /// Where the query's data goes once the answer is built.
    freer: Freer,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        opts: &'a EngineOptions,
        data: Fetched,
        start: i64,
        end: i64,
        step: i64,
        deadline: Instant,
        cancel: Option<&'a AtomicBool>,
    ) -> Self {
        // Approximations over downsampled data are the answer's warnings.
        let warnings: BTreeSet<String> = data.notes().iter().cloned().collect();
        Evaluator {
            opts,
            data,
            start,
            end,
            step,
            deadline,
            cancel,
            warnings,
            infos: BTreeSet::new(),
            step_samples: 0,
            output_points: 0,
            sub_cache: FxHashMap::default(),
            cursors: FxHashMap::default(),
            name_cache: FxHashMap::default(),
            batches: FxHashMap::default(),
            hash_memo: FxHashMap::default(),
            group_labels: FxHashMap::default(),
            pin: None,
            sub_depth: 0,
            freer: Freer::default(),
        }
    }

    pub fn set_freer(&mut self, freer: Freer) {
        self.freer = freer;
    }

    pub fn set_pin(&mut self, pin: Option<i64>) {
        self.pin = pin;
    }

    /// The fixed evaluation time of a node: its own `@`, else the pin outside subqueries.
    pub fn at_of(&self, at: &Option<AtModifier>) -> Option<i64> {
        at_ms(at, self.start, self.end).or(if self.sub_depth == 0 { self.pin } else { None })
    }

    pub fn set_output_points(&mut self, n: usize) {
        self.output_points = n;
    }

    /// The series fetched for the query (read directly by `start_timestamps`).
    pub(crate) fn fetched(&self) -> &Fetched {
        &self.data
    }

    pub(crate) fn check_deadline_now(&self) -> Result<()> {
        check_deadline(self.deadline, self.cancel, "query execution")
    }

    /// Evaluates the whole expression at `t` (one step of a query).
    pub fn eval_top(&mut self, expr: &Expr, t: i64) -> Result<Val> {
        check_deadline(self.deadline, self.cancel, "query execution")?;
        self.step_samples = 0;
        self.eval(expr, t)
    }

    pub fn warn(&mut self, msg: String) {
        self.warnings.insert(format!("PromQL warning: {msg}"));
    }

    pub fn info(&mut self, msg: String) {
        self.infos.insert(format!("PromQL info: {msg}"));
    }

    pub fn into_result(mut self, value: Value) -> QueryValue {
        // The fetched series and the per-query caches are freed off the answer's path:
        // dropping every label string and sample vector of a query takes a sizeable share
        // of a short one, and nothing needs to wait for it.
        self.freer.free(Box::new((
            std::mem::take(&mut self.data),
            std::mem::take(&mut self.sub_cache),
            std::mem::take(&mut self.cursors),
            std::mem::take(&mut self.name_cache),
            std::mem::take(&mut self.batches),
            std::mem::take(&mut self.hash_memo),
            std::mem::take(&mut self.group_labels),
        )));
        QueryValue {
            value,
            warnings: self.warnings.into_iter().collect(),
            infos: self.infos.into_iter().collect(),
        }
    }

    /// Counts samples held for the current step against `max_samples`.
    pub fn add_samples(&mut self, n: usize) -> Result<()> {
        self.step_samples += n;
        if self.step_samples + self.output_points > self.opts.max_samples {
            return Err(PromqlError::exec(TOO_MANY_SAMPLES));
        }
        Ok(())
    }

    pub fn eval(&mut self, expr: &Expr, t: i64) -> Result<Val> {
        let val = self.eval_node(expr, t)?;
        if self.opts.delayed_name_removal {
            return Ok(val);
        }
        match val {
            Val::Vector(elems) if elems.iter().any(|e| e.drop_name) => {
                Ok(Val::Vector(self.drop_names_now(elems)?))
            }
            other => Ok(other),
        }
    }

    fn eval_node(&mut self, expr: &Expr, t: i64) -> Result<Val> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(mut elems) => {
                    for e in &mut elems {
                        e.v = -e.v;
                        e.drop_name = true;
                    }
                    Ok(Val::Vector(elems))
                }
                other => Err(PromqlError::exec(format!(
                    "unary negation of {} is not supported",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => {
                let v: Vec<Elem> = self
                    .vector_selector(vs, t)?
                    .into_iter()
                    .map(|(e, _)| e)
                    .collect();
                Ok(Val::Vector(v))
            }
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.matrix_selector(ms, t)?)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, t)?)),
            Expr::Binary(b) => binary::eval_binary(self, b, t),
            Expr::Aggregate(a) => aggregate::eval_aggregate(self, a, t),
            Expr::Call(c) => functions::eval_call(self, c, t),
            Expr::Extension(_) => Err(PromqlError::exec("extension expressions are not supported")),
        }
    }

    /// Evaluates an expression that must give an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr, t: i64) -> Result<Vec<Elem>> {
        match self.eval(expr, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// `eval_vector` for an aggregation whose grouping cannot see name-like labels (`by`
    /// without any of them): names due to be dropped stay in place, as the grouping ignores
    /// them, and only the duplicate check of `drop_names_now` is made, on the same hashes it
    /// uses, computed without building the label sets it would build.
    pub fn eval_vector_names_ignored(&mut self, expr: &Expr, t: i64) -> Result<Vec<Elem>> {
        if self.opts.delayed_name_removal {
            return self.eval_vector(expr, t);
        }
        let elems = match self.eval_node(expr, t)? {
            Val::Vector(v) => v,
            other => {
                return Err(PromqlError::exec(format!(
                    "expected instant vector, got {}",
                    other.type_name()
                )))
            }
        };
        if !elems.iter().any(|e| e.drop_name) {
            return Ok(elems);
        }
        let node = expr as *const Expr as usize;
        let mut seen: FxHashMap<u64, ()> = FxHashMap::default();
        seen.reserve(elems.len());
        for e in &elems {
            let names = crate::promql::engine::NAME_LIKE_LABELS;
            let hash = if e.drop_name {
                // Node + 1 keeps this memo apart from the full-label one (nodes are larger
                // than one byte, so it names no other node).
                self.memo_hash(node + 1, &e.labels, |l| {
                    crate::promql::value::hash_labels_where(l, |n| !names.contains(&n))
                })
            } else {
                self.memo_hash(node, &e.labels, |l| {
                    crate::promql::value::hash_labels_where(l, |_| true)
                })
            };
            if seen.insert(hash, ()).is_some() {
                return Err(PromqlError::exec(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
        Ok(elems)
    }

    /// Evaluates an expression that must give a scalar.
    pub fn eval_scalar(&mut self, expr: &Expr, t: i64) -> Result<f64> {
        match self.eval(expr, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression that must give a range vector (selector or subquery).
    pub fn eval_matrix(&mut self, expr: &Expr, t: i64) -> Result<Vec<MSeries>> {
        match self.eval(expr, t)? {
            Val::Matrix(m) => Ok(m),
            other => Err(PromqlError::exec(format!(
                "expected range vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// The instant selector at `t`: each series' latest sample within the lookback window
    /// (left-open), unless it is a staleness marker. Also returns the sample timestamps.
    pub fn vector_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<(Elem, i64)>> {
        let base = self.at_of(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let lookback = dur_ms(self.opts.lookback_delta);
        let smoothed = selector_mode(vs) == RangeMode::Smoothed;
        let mut out = Vec::new();
        if let Some(list) = self.data.series(vs) {
            let cursor = self
                .cursors
                .entry((vs as *const VectorSelector as usize, 0))
                .or_default();
            cursor.resize(list.len(), 0);
            for (i, (s, pos)) in list.iter().zip(cursor.iter_mut()).enumerate() {
                if i % DEADLINE_CHECK_EVERY == DEADLINE_CHECK_EVERY - 1 {
                    check_deadline(self.deadline, self.cancel, "query execution")?;
                }
                let idx = seek_after(&s.samples, *pos, base);
                *pos = idx;
                if idx == 0 {
                    continue;
                }
                let p = s.samples[idx - 1];
                // Downsampled data is looked back at one window of its own resolution.
                let lookback = if s.coarse.is_empty() {
                    lookback
                } else {
                    let res = crate::promql::downsampled::resolution_at(&s.coarse, p.t);
                    dur_ms(crate::promql::lookback_for(self.opts.lookback_delta, res))
                };
                if p.t <= base - lookback || is_stale_nan(p.v) {
                    continue;
                }
                let v = if smoothed {
                    interpolate(&s.samples, base, lookback, false).unwrap_or(p.v)
                } else {
                    p.v
                };
                out.push((
                    Elem {
                        labels: s.labels.clone(),
                        v,
                        drop_name: false,
                    },
                    p.t,
                ));
            }
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    /// The range selector at `t`: samples in `(base - range, base]`, stale markers removed.
    pub fn matrix_selector(&mut self, ms: &MatrixSelector, t: i64) -> Result<Vec<MSeries>> {
        let vs = &ms.vs;
        let base = self.at_of(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let range = dur_ms(ms.range);
        let mut out = Vec::new();
        let mut n = 0;
        if let Some(list) = self.data.series(vs) {
            let cursor = self
                .cursors
                .entry((vs as *const VectorSelector as usize, 1))
                .or_default();
            cursor.resize(2 * list.len(), 0);
            for (i, (s, pos)) in list.iter().zip(cursor.chunks_exact_mut(2)).enumerate() {
                if i % DEADLINE_CHECK_EVERY == DEADLINE_CHECK_EVERY - 1 {
                    check_deadline(self.deadline, self.cancel, "query execution")?;
                }
                let lo = seek_after(&s.samples, pos[0], base - range);
                let hi = seek_after(&s.samples, pos[1].max(lo), base);
                pos[0] = lo;
                pos[1] = hi;
                if lo >= hi {
                    continue;
                }
                let points: Vec<Sample> = s.samples[lo..hi]
                    .iter()
                    .filter(|p| !is_stale_nan(p.v))
                    .copied()
                    .collect();
                if points.is_empty() {
                    continue;
                }
                n += points.len();
                out.push(MSeries {
                    labels: s.labels.clone(),
                    points,
                    drop_name: false,
                });
            }
        }
        self.add_samples(n)?;
        Ok(out)
    }

    /// A subquery at `t`: the inner expression at every multiple of the step in
    /// `(base - range, base]`.
    pub fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<MSeries>> {
        let base = self.at_of(&sq.at).unwrap_or(t) - offset_ms(&sq.offset);
        let step = dur_ms(sq.step.unwrap_or(self.opts.default_subquery_step));
        if step <= 0 {
            return Err(PromqlError::exec("subquery step must be positive"));
        }
        let mint = base - dur_ms(sq.range);
        let mut ts = mint.div_euclid(step) * step;
        if ts <= mint {
            ts += step;
        }
        let mut index: FxHashMap<Arc<Labels>, usize> = FxHashMap::default();
        let mut acc: Vec<MSeries> = Vec::new();
        let key_ptr = &*sq.expr as *const Expr as usize;
        let mut n = 0;
        while ts <= base {
            check_deadline(self.deadline, self.cancel, "subquery evaluation")?;
            let elems = match self.sub_cache.get(&(key_ptr, ts)) {
                Some(v) => Arc::clone(v),
                None => {
                    let saved = self.step_samples;
                    self.sub_depth += 1;
                    let inner = self.eval(&sq.expr, ts);
                    self.sub_depth -= 1;
                    let v = match inner? {
                        Val::Vector(v) => v,
                        Val::Scalar(v) => vec![Elem {
                            labels: Arc::new(Labels::empty()),
                            v,
                            drop_name: false,
                        }],
                        other => {
                            return Err(PromqlError::exec(format!(
                                "subquery over {} is not supported",
                                other.type_name()
                            )))
                        }
                    };
                    self.step_samples = saved;
                    let v = Arc::new(v);
                    self.sub_cache.insert((key_ptr, ts), Arc::clone(&v));
                    v
                }
            };
            n += elems.len();
            for e in elems.iter() {
                let i = match index.get(&e.labels) {
                    Some(&i) => i,
                    None => {
                        index.insert(Arc::clone(&e.labels), acc.len());
                        acc.push(MSeries {
                            labels: Arc::clone(&e.labels),
                            points: Vec::new(),
                            drop_name: false,
                        });
                        acc.len() - 1
                    }
                };
                acc[i].drop_name |= e.drop_name;
                acc[i].points.push(Sample { t: ts, v: e.v });
            }
            ts += step;
        }
        self.add_samples(n)?;
        Ok(acc)
    }
}

/// `samples.partition_point(|p| p.t <= x)` (samples sorted by time), searched from `hint`,
/// the answer for an earlier `x`. Consecutive steps of a range query move forward by a few
/// samples, so galloping from the last position touches a cache line or two instead of
/// binary-searching the whole series, which is memory-bound with thousands of series per
/// step. Any hint gives the exact answer; a stale one only costs a binary search.
pub(crate) fn seek_after(samples: &[Sample], hint: usize, x: i64) -> usize {
    let hint = hint.min(samples.len());
    if hint > 0 && samples[hint - 1].t > x {
        return samples[..hint].partition_point(|p| p.t <= x);
    }
    // Every sample before `lo` is at or before `x`; double the stride until one is after it.
    let mut lo = hint;
    let mut stride = 1;
    while lo + stride <= samples.len() && samples[lo + stride - 1].t <= x {
        lo += stride;
        stride *= 2;
    }
    let hi = (lo + stride).min(samples.len());
    lo + samples[lo..hi].partition_point(|p| p.t <= x)
}

/// The value at `x` interpolated linearly between the samples around it (within `lookback`
/// on either side); for counters a drop between them counts as a reset to zero.
fn interpolate(samples: &[Sample], x: i64, lookback: i64, counter: bool) -> Option<f64> {
    let idx = samples.partition_point(|p| p.t <= x);
    let prev = idx
        .checked_sub(1)
        .and_then(|i| samples.get(i))
        .filter(|p| p.t > x - lookback && !is_stale_nan(p.v));
    let next = samples
        .get(idx)
        .filter(|p| p.t <= x + lookback && !is_stale_nan(p.v));
    match (prev, next) {
        (Some(p), _) if p.t == x => Some(p.v),
        (Some(p), Some(n)) => {
            let frac = (x - p.t) as f64 / (n.t - p.t) as f64;
            if counter && n.v < p.v {
                Some(n.v * frac)
            } else {
                Some(p.v + (n.v - p.v) * frac)
            }
        }
        (Some(p), None) => Some(p.v),
        (None, Some(n)) => Some(n.v),
        (None, None) => None,
    }
}

impl Evaluator<'_> {
    /// The points of an `anchored` or `smoothed` range selector at `t`, including synthetic
    /// points at both window edges.
    pub fn extended_range(
        &mut self,
        ms: &MatrixSelector,
        t: i64,
        mode: RangeMode,
        counter: bool,
    ) -> Result<Vec<MSeries>> {
        let vs = &ms.vs;
        let base = self.at_of(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let range = dur_ms(ms.range);
        let start = base - range;
        let lookback = dur_ms(self.opts.lookback_delta);
        let mut out = Vec::new();
        let mut n = 0;
        if let Some(list) = self.data.series(vs) {
            for (i, s) in list.iter().enumerate() {
                if i % DEADLINE_CHECK_EVERY == DEADLINE_CHECK_EVERY - 1 {
                    check_deadline(self.deadline, self.cancel, "query execution")?;
                }
                let pts: Vec<Sample> = s
                    .samples
                    .iter()
                    .filter(|p| !is_stale_nan(p.v))
                    .copied()
                    .collect();
                let lo = pts.partition_point(|p| p.t <= start);
                let hi = pts.partition_point(|p| p.t <= base);
                let inside = &pts[lo..hi];
                let mut points = Vec::with_capacity(inside.len() + 2);
                match mode {
                    RangeMode::Anchored => {
                        let Some(first) = inside.first() else {
                            continue;
                        };
                        let before = lo
                            .checked_sub(1)
                            .and_then(|i| pts.get(i))
                            .filter(|p| p.t > start - lookback);
                        points.push(Sample {
                            t: start,
                            v: before.map_or(first.v, |p| p.v),
                        });
                        points.extend_from_slice(inside);
                        let last = inside[inside.len() - 1];
                        points.push(Sample { t: base, v: last.v });
                    }
                    _ => {
                        let has_before_end = hi > 0 && pts[hi - 1].t > start - lookback;
                        let has_after_start = pts.get(lo).is_some_and(|p| p.t <= base + lookback);
                        if !has_before_end || !has_after_start {
                            continue;
                        }
                        let (Some(vs0), Some(vs1)) = (
                            interpolate(&pts, start, lookback, counter),
                            interpolate(&pts, base, lookback, counter),
                        ) else {
                            continue;
                        };
                        points.push(Sample { t: start, v: vs0 });
                        points.extend(inside.iter().filter(|p| p.t < base));
                        points.push(Sample { t: base, v: vs1 });
                    }
                }
                n += points.len();
                out.push(MSeries {
                    labels: s.labels.clone(),
                    points,
                    drop_name: false,
                });
            }
        }
        self.add_samples(n)?;
        Ok(out)
    }
}

/// A label set as the duplicate check of `drop_names_now` needs it (see `name_cache`).
struct NameCacheEntry {
    /// Keeps the source alive, so its address cannot be reused while cached.
    _source: Arc<Labels>,
    labels: Arc<Labels>,
    hash: u64,
}

/// Beyond this many cached label sets the cache starts over: operators create fresh label
/// sets at every step, and those would otherwise accumulate for the whole query.
const NAME_CACHE_LIMIT: usize = 1 << 18;

impl Evaluator<'_> {
    /// Without delayed name removal (a stock Prometheus server), functions and operators drop
    /// `__name__` right away, and a step whose vector then holds a label set twice fails.
    fn drop_names_now(&mut self, elems: Vec<Elem>) -> Result<Vec<Elem>> {
        if self.name_cache.len() > NAME_CACHE_LIMIT {
            self.name_cache.clear();
        }
        let mut out = Vec::with_capacity(elems.len());
        let mut seen: FxHashMap<u64, ()> = FxHashMap::default();
        seen.reserve(elems.len());
        let single_step = self.single_step();
        for mut e in elems {
            if single_step || Arc::strong_count(&e.labels) == 1 {
                // Made for this step: never seen again, so not worth caching (see `memo_hash`).
                if e.drop_name {
                    e.labels = Arc::new(crate::promql::engine::drop_name_labels(&e.labels));
                    e.drop_name = false;
                }
                let hash = crate::promql::value::hash_labels_where(&e.labels, |_| true);
                if seen.insert(hash, ()).is_some() {
                    return Err(PromqlError::exec(
                        "vector cannot contain metrics with the same labelset",
                    ));
                }
                out.push(e);
                continue;
            }
            let key = (Arc::as_ptr(&e.labels) as usize, e.drop_name);
            let entry = self.name_cache.entry(key).or_insert_with(|| {
                let labels = if e.drop_name {
                    Arc::new(crate::promql::engine::drop_name_labels(&e.labels))
                } else {
                    Arc::clone(&e.labels)
                };
                let hash = crate::promql::value::hash_labels_where(&labels, |_| true);
                NameCacheEntry {
                    _source: Arc::clone(&e.labels),
                    labels,
                    hash,
                }
            });
            if seen.insert(entry.hash, ()).is_some() {
                return Err(PromqlError::exec(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
            e.labels = Arc::clone(&entry.labels);
            e.drop_name = false;
            out.push(e);
        }
        Ok(out)
    }
}

impl Evaluator<'_> {
    /// The output labels of group `hash` of aggregation `node`, built by `make` the first
    /// time: every step then yields the same label set, which spares its allocation and lets
    /// the operators above find their memoised hashes for it.
    pub(crate) fn group_labels(
        &mut self,
        node: usize,
        hash: u64,
        make: impl FnOnce() -> Labels,
    ) -> Arc<Labels> {
        if self.group_labels.len() > NAME_CACHE_LIMIT {
            self.group_labels.clear();
        }
        Arc::clone(
            self.group_labels
                .entry((node, hash))
                .or_insert_with(|| Arc::new(make())),
        )
    }

    /// An instant query outside subqueries evaluates every node once: remembering anything
    /// per label set would only cost.
    fn single_step(&self) -> bool {
        self.step == 0 && self.sub_depth == 0
    }

    /// `f(labels)`, remembered for this query by the label set's address and `node` (the
    /// memo holds the label set, so the address cannot be reused while remembered).
    pub(crate) fn memo_hash(
        &mut self,
        node: usize,
        labels: &Arc<Labels>,
        f: impl FnOnce(&Labels) -> u64,
    ) -> u64 {
        // A label set nothing else holds was made for this step (by an operator below):
        // it cannot come back at a later step, so remembering it would only cost.
        if Arc::strong_count(labels) == 1 || self.single_step() {
            return f(labels);
        }
        let key = (Arc::as_ptr(labels) as usize, node);
        if let Some((_, h)) = self.hash_memo.get(&key) {
            return *h;
        }
        if self.hash_memo.len() > NAME_CACHE_LIMIT {
            self.hash_memo.clear();
        }
        let h = f(labels);
        self.hash_memo.insert(key, (Arc::clone(labels), h));
        h
    }
}

#[cfg(test)]
mod seek_tests {
    use super::*;

    #[test]
    fn seek_after_matches_partition_point_from_any_hint() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                t: i * 10 + (i % 3),
                v: 0.0,
            })
            .collect();
        for hint in [0, 1, 5, 57, 199, 200, 500] {
            for x in -5..2100 {
                let want = samples.partition_point(|p| p.t <= x);
                assert_eq!(seek_after(&samples, hint, x), want, "hint {hint} x {x}");
            }
        }
        assert_eq!(seek_after(&[], 3, 10), 0);
    }
}
