//! Runner for Prometheus's PromQL test files: an in-memory `Queryable` (series stored as
//! XOR chunks, plus the start timestamps `metric@st` lines give) and the execution/checking of `load`/`clear`/`eval` commands with the upstream
//! harness's comparison rules, including its two extra checks for instant evals (the same
//! query as a range query over t±1m must agree at t; with every selector pinned to `@ t` the
//! query must give the same answer at -10t, 0, t/5, t and 10t).
//!
//! "Float-only" classification (documented contract of `EvalOutcome::float_only`): an eval is
//! float-only unless (a) its own block contains a native histogram literal `{{...}}`, or
//! (b) its query uses a native-histogram-only feature (`histogram_count`, `histogram_sum`,
//! `histogram_avg`, `histogram_stddev`, `histogram_stdvar`, the trim
//! operators `</` / `>/`), or (c) since the last `clear` native histogram data was loaded
//! (a `{{...}}` sample, or any series created by `load_with_nhcb`) and the query either names
//! one of those metrics (for `load_with_nhcb`, the base name the converted series gets:
//! `foo` for `foo_bucket`) or has a selector without a metric name.

use std::collections::{BTreeMap, HashSet};

use crate::promql::engine::{Engine, EngineOptions};
use crate::promql::histogram::almost_equal;
use crate::promql::testlang_parse::{
    parse_test_file, Command, EvalCmd, Expected, MsgMatch, SeqValue, SeriesLine, TestParseError,
};
use crate::promql::value::{QueryValue, Value};
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::{
    is_stale_nan, matches_all, Labels, Matcher, QueryResult, Queryable, Sample, SelectHints,
    Series, SeriesStartTimestamps,
};

/// Samples per encoded chunk, as in Prometheus's head.
const CHUNK_SAMPLES: usize = 120;

/// Series held in memory and served as XOR chunks.
#[derive(Debug, Default)]
pub struct MemStorage {
    series: BTreeMap<Labels, Vec<Sample>>,
    /// Start timestamps by series and sample time, for the samples that have one.
    starts: BTreeMap<Labels, BTreeMap<i64, i64>>,
}

impl MemStorage {
    pub fn new() -> Self {
        MemStorage::default()
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.starts.clear();
    }

    /// Adds samples to a series (replacing samples at equal timestamps, start time included).
    pub fn add(&mut self, labels: Labels, samples: &[Sample]) {
        if let Some(st) = self.starts.get_mut(&labels) {
            for p in samples {
                st.remove(&p.t);
            }
        }
        let s = self.series.entry(labels).or_default();
        for p in samples {
            match s.binary_search_by_key(&p.t, |x| x.t) {
                Ok(i) => s[i] = *p,
                Err(i) => s.insert(i, *p),
            }
        }
    }

    /// Records start timestamps as `(sample time, start time)` pairs; a start time of 0
    /// means none (as in Prometheus) and is not stored.
    pub fn add_start_timestamps(&mut self, labels: &Labels, points: &[(i64, i64)]) {
        let mut kept = points.iter().copied().filter(|&(_, st)| st != 0).peekable();
        if kept.peek().is_none() {
            return;
        }
        let st = self.starts.entry(labels.clone()).or_default();
        st.extend(kept);
    }
}

impl Queryable for MemStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        _hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matches_all(matchers, labels) {
                continue;
            }
            let window: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.t >= mint && s.t <= maxt)
                .collect();
            if window.is_empty() {
                continue;
            }
            let mut chunks = Vec::new();
            for part in window.chunks(CHUNK_SAMPLES) {
                let mut app = XorAppender::new();
                for s in part {
                    app.append(s.t, s.v);
                }
                if let Some(c) = app.to_encoded() {
                    chunks.push(c);
                }
            }
            out.push(Series {
                labels: labels.clone(),
                chunks,
            });
        }
        Ok(out)
    }

    fn select_start_timestamps(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<SeriesStartTimestamps>> {
        let mut out = Vec::new();
        for (labels, starts) in &self.starts {
            if !matches_all(matchers, labels) {
                continue;
            }
            let points: Vec<(i64, i64)> =
                starts.range(mint..=maxt).map(|(&t, &st)| (t, st)).collect();
            if !points.is_empty() {
                out.push(SeriesStartTimestamps {
                    labels: labels.clone(),
                    points,
                });
            }
        }
        Ok(out)
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> QueryResult<Vec<String>> {
        let mut names: Vec<String> = self
            .series
            .keys()
            .filter(|l| matches_all(matchers, l))
            .flat_map(|l| l.iter().map(|x| x.name.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> QueryResult<Vec<String>> {
        let mut vals: Vec<String> = self
            .series
            .keys()
            .filter(|l| matches_all(matchers, l))
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }
}

/// The verdict on one `eval`.
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    pub line: usize,
    pub expr: String,
    pub passed: bool,
    pub float_only: bool,
    /// Why it failed; for a passing `expect fail` eval, the error the engine gave.
    pub message: String,
}

/// The engine settings the upstream test files assume.
pub fn test_engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 10_000,
        delayed_name_removal: true,
        ..EngineOptions::default()
    })
}

const HISTOGRAM_ONLY: [&str; 7] = [
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    "</",
    ">/",
];

/// Identifiers of the query outside string literals, and whether a selector lacks a name.
fn query_identifiers(q: &str) -> (Vec<String>, bool) {
    let mut idents = Vec::new();
    let mut nameless = false;
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut last_sig: Option<char> = None;
    let mut brace_depth = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let q0 = c;
            i += 1;
            while i < chars.len() && chars[i] != q0 {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            last_sig = Some('"');
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            if brace_depth == 0 {
                idents.push(chars[start..i].iter().collect());
            }
            last_sig = Some('a');
            continue;
        }
        if c == '{' {
            if last_sig != Some('a') && brace_depth == 0 {
                nameless = true;
            }
            brace_depth += 1;
        } else if c == '}' {
            brace_depth -= 1;
        }
        if !c.is_whitespace() {
            last_sig = Some(c);
        }
        i += 1;
    }
    (idents, nameless)
}

/// Per-`clear` state of what native histogram data is loaded.
#[derive(Default)]
struct HistState {
    names: HashSet<String>,
    any: bool,
}

fn is_float_only(cmd: &EvalCmd, hs: &HistState) -> bool {
    if cmd.has_histogram_literal || HISTOGRAM_ONLY.iter().any(|f| cmd.expr.contains(f)) {
        return false;
    }
    if !hs.any {
        return true;
    }
    let (idents, nameless) = query_identifiers(&cmd.expr);
    !(nameless || idents.iter().any(|i| hs.names.contains(i)))
}

fn nhcb_base(name: &str) -> &str {
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(b) = name.strip_suffix(suffix) {
            return b;
        }
    }
    name
}

fn load(st: &mut MemStorage, hs: &mut HistState, step: i64, nhcb: bool, series: &[SeriesLine]) {
    for s in series {
        let mut samples = Vec::new();
        let mut starts = Vec::new();
        let mut hist = false;
        for (i, v) in s.values.iter().enumerate() {
            let t = i as i64 * step;
            match v {
                SeqValue::Float(f) => samples.push(Sample { t, v: *f }),
                SeqValue::Histogram(_) => hist = true,
                SeqValue::Missing => continue,
            }
            let offset = s
                .start_offsets
                .as_ref()
                .and_then(|o| o.get(i).copied().flatten());
            if let (Some(off), SeqValue::Float(_)) = (offset, v) {
                starts.push((t, t + off));
            }
        }
        let name = s.labels.metric_name().unwrap_or("").to_string();
        if hist {
            hs.any = true;
            hs.names.insert(name.clone());
        }
        if nhcb && (name.ends_with("_bucket") || name.ends_with("_count") || name.ends_with("_sum"))
        {
            hs.any = true;
            hs.names.insert(nhcb_base(&name).to_string());
        }
        st.add(s.labels.clone(), &samples);
        st.add_start_timestamps(&s.labels, &starts);
    }
}

fn msg_matches(m: &MsgMatch, text: &str) -> bool {
    match m {
        MsgMatch::Any => true,
        MsgMatch::Exact(e) => e == text,
        MsgMatch::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(text)),
    }
}

fn check_annotations(
    kind: &str,
    expects: &[MsgMatch],
    none: bool,
    got: &[String],
) -> Result<(), String> {
    if none && !got.is_empty() {
        return Err(format!("expected no {kind} annotations, got {got:?}"));
    }
    if expects.is_empty() {
        return Ok(());
    }
    if got.is_empty() {
        return Err(format!("expected {kind} annotations {expects:?}, got none"));
    }
    for g in got {
        if !expects.iter().any(|e| msg_matches(e, g)) {
            return Err(format!(
                "unexpected {kind} annotation {g:?} (expected {expects:?})"
            ));
        }
    }
    for e in expects {
        if !got.iter().any(|g| msg_matches(e, g)) {
            return Err(format!(
                "expected {kind} annotation {e:?} not returned (got {got:?})"
            ));
        }
    }
    Ok(())
}

fn float_eq(exp: f64, got: f64) -> bool {
    if is_stale_nan(exp) || is_stale_nan(got) {
        return is_stale_nan(exp) && is_stale_nan(got);
    }
    exp == got || almost_equal(exp, got, 1e-6)
}

fn expect_float(v: &SeqValue) -> Result<Option<f64>, String> {
    match v {
        SeqValue::Float(f) => Ok(Some(*f)),
        SeqValue::Missing => Ok(None),
        SeqValue::Histogram(h) => Err(format!(
            "expected native histogram {h}: {}",
            crate::promql::histogram::NATIVE_HISTOGRAMS_UNSUPPORTED
        )),
    }
}

fn compare_vector(cmd: &EvalCmd, got: &[(Labels, f64)]) -> Result<(), String> {
    let Expected::Series(exp) = &cmd.expected else {
        return Err(format!(
            "expected {:?}, got a vector of {} series",
            cmd.expected,
            got.len()
        ));
    };
    if exp.len() != got.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            exp.len(),
            got.len(),
            show_vec(got)
        ));
    }
    for (i, e) in exp.iter().enumerate() {
        let want = e.values.first().map(expect_float).transpose()?.flatten();
        let Some(pos) = got.iter().position(|(l, _)| *l == e.labels) else {
            return Err(format!(
                "series {} missing; got {}",
                e.labels,
                show_vec(got)
            ));
        };
        if cmd.ordered && pos != i {
            return Err(format!(
                "series {} at position {pos}, expected {i}",
                e.labels
            ));
        }
        match want {
            Some(w) if float_eq(w, got[pos].1) => {}
            _ => {
                return Err(format!(
                    "series {}: expected {:?}, got {}",
                    e.labels, want, got[pos].1
                ))
            }
        }
    }
    Ok(())
}

fn show_vec(v: &[(Labels, f64)]) -> String {
    v.iter()
        .map(|(l, f)| format!("{l} {f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_matrix(
    exp: &[SeriesLine],
    got: &[(Labels, Vec<Sample>)],
    start: i64,
    step: i64,
) -> Result<(), String> {
    let mut want_count = 0;
    for e in exp {
        let mut points = Vec::new();
        for (i, v) in e.values.iter().enumerate() {
            if let Some(f) = expect_float(v)? {
                points.push(Sample {
                    t: start + i as i64 * step,
                    v: f,
                });
            }
        }
        if points.is_empty() {
            continue;
        }
        want_count += 1;
        let Some((_, gp)) = got.iter().find(|(l, _)| *l == e.labels) else {
            return Err(format!(
                "series {} missing; got {:?}",
                e.labels,
                got.iter().map(|g| g.0.to_string()).collect::<Vec<_>>()
            ));
        };
        let ok = gp.len() == points.len()
            && gp
                .iter()
                .zip(points.iter())
                .all(|(g, w)| g.t == w.t && float_eq(w.v, g.v));
        if !ok {
            return Err(format!(
                "series {}: expected {:?}, got {:?}",
                e.labels, points, gp
            ));
        }
    }
    if want_count != got.len() {
        return Err(format!(
            "expected {want_count} series, got {}: {:?}",
            got.len(),
            got.iter().map(|g| g.0.to_string()).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

fn check_result(cmd: &EvalCmd, res: &QueryValue) -> Result<(), String> {
    check_annotations("warn", &cmd.warn, cmd.no_warn, &res.warnings)?;
    check_annotations("info", &cmd.info, cmd.no_info, &res.infos)?;
    match (&res.value, &cmd.expected) {
        (Value::Scalar { v, .. }, Expected::Scalar(w)) if cmd.range.is_none() => {
            if float_eq(*w, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {w}, got {v}"))
            }
        }
        (Value::String { s, .. }, Expected::String(w)) => {
            if s == w {
                Ok(())
            } else {
                Err(format!("expected string {w:?}, got {s:?}"))
            }
        }
        (Value::Vector(v), _) if cmd.range.is_none() => {
            let got: Vec<(Labels, f64)> = v.iter().map(|s| (s.labels.clone(), s.v)).collect();
            compare_vector(cmd, &got)
        }
        (Value::Matrix(m), Expected::Series(exp)) => {
            let got: Vec<(Labels, Vec<Sample>)> = m
                .iter()
                .map(|s| (s.labels.clone(), s.points.clone()))
                .collect();
            let (start, step) = match (cmd.range, cmd.range_vector) {
                (Some((s, _, st)), _) => (s, st),
                (None, Some((s, _, st))) => (s, st),
                (None, None) => {
                    return Err("got a range vector without `expect range vector`".into())
                }
            };
            compare_matrix(exp, &got, start, step)
        }
        (v, e) => Err(format!("expected {e:?}, got a {}", v.type_name())),
    }
}

/// The upstream harness also runs an instant eval as a range query over t±1m and requires
/// the middle step to agree with the instant result.
fn check_as_range(
    engine: &Engine,
    st: &MemStorage,
    cmd: &EvalCmd,
    res: &QueryValue,
) -> Result<(), String> {
    let e = &cmd.expr;
    if cmd.ordered || cmd.range_vector.is_some() || matches!(cmd.expected, Expected::String(_)) {
        return Ok(());
    }
    if ["start()", "end()", "range()", "step()"]
        .iter()
        .any(|f| e.contains(f))
    {
        return Ok(());
    }
    let want: Vec<(Labels, f64)> = match &res.value {
        Value::Vector(v) => v.iter().map(|s| (s.labels.clone(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![(Labels::empty(), *v)],
        _ => return Ok(()),
    };
    let r = engine
        .range(st, e, cmd.at - 60_000, cmd.at + 60_000, 60_000)
        .map_err(|err| format!("as range query: {err}"))?;
    let Value::Matrix(m) = r.value else {
        return Err("range query did not return a matrix".into());
    };
    let got: Vec<(Labels, f64)> = m
        .iter()
        .filter_map(|s| {
            s.points
                .iter()
                .find(|p| p.t == cmd.at)
                .map(|p| (s.labels.clone(), p.v))
        })
        .collect();
    if got.len() != want.len() {
        return Err(format!(
            "as range query at t: expected {} series, got {}",
            want.len(),
            got.len()
        ));
    }
    for (l, v) in &want {
        match got.iter().find(|(gl, _)| gl == l) {
            Some((_, g)) if float_eq(*v, *g) || (v.is_nan() && g.is_nan()) => {}
            other => {
                return Err(format!(
                    "as range query at t: series {l} expected {v}, got {other:?}"
                ))
            }
        }
    }
    Ok(())
}

/// Functions whose result depends on the evaluation time even with step-invariant inputs.
const AT_UNSAFE: [&str; 15] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    "start",
    "end",
    "range",
    "step",
];

/// The upstream harness pins every selector to `@ t` and expects the same answer when the
/// query runs at -10t, 0, t/5, t and 10t.
fn check_pinned(engine: &Engine, st: &MemStorage, cmd: &EvalCmd) -> Result<(), String> {
    let (idents, _) = query_identifiers(&cmd.expr);
    if idents.iter().any(|i| AT_UNSAFE.contains(&i.as_str())) {
        return Ok(());
    }
    let t = cmd.at;
    let times = if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    };
    for et in times {
        let r = engine
            .instant_pinned(st, &cmd.expr, et, t)
            .map_err(|e| format!("with @ {t} at {et}: {e}"))?;
        let mut c = cmd.clone();
        c.warn.clear();
        c.info.clear();
        c.no_warn = false;
        c.no_info = false;
        check_result(&c, &r).map_err(|e| format!("with @ {t} at {et}: {e}"))?;
    }
    Ok(())
}

/// Runs one eval; on success returns the error text when a failure was expected.
fn run_eval(engine: &Engine, st: &MemStorage, cmd: &EvalCmd) -> Result<String, String> {
    let res = match cmd.range {
        Some((s, e, step)) => engine.range(st, &cmd.expr, s, e, step),
        None => engine.instant(st, &cmd.expr, cmd.at),
    };
    match (&cmd.fail, res) {
        (Some(m), Err(e)) => {
            if msg_matches(m, &e.to_string()) {
                Ok(e.to_string())
            } else {
                Err(format!("error {:?} does not match {m:?}", e.to_string()))
            }
        }
        (Some(_), Ok(r)) => Err(format!("expected failure, got {:?}", r.value.type_name())),
        (None, Err(e)) => Err(format!("unexpected error: {e}")),
        (None, Ok(r)) => {
            check_result(cmd, &r)?;
            if cmd.range.is_none() {
                check_as_range(engine, st, cmd, &r)?;
                check_pinned(engine, st, cmd)?;
            }
            Ok(String::new())
        }
    }
}

/// Runs every command of a test file and reports each eval.
pub fn run_test_file(text: &str) -> Result<Vec<EvalOutcome>, TestParseError> {
    let cmds = parse_test_file(text)?;
    let engine = test_engine();
    let mut st = MemStorage::new();
    let mut hs = HistState::default();
    let mut out = Vec::new();
    for c in cmds {
        match c {
            Command::Clear => {
                st.clear();
                hs = HistState::default();
            }
            Command::Load {
                step,
                nhcb,
                series,
                has_histograms,
                ..
            } => {
                if has_histograms {
                    hs.any = true;
                }
                load(&mut st, &mut hs, step, nhcb, &series);
            }
            Command::Eval(cmd) => {
                let float_only = is_float_only(&cmd, &hs);
                let r = run_eval(&engine, &st, &cmd);
                out.push(EvalOutcome {
                    line: cmd.line,
                    expr: cmd.expr.clone(),
                    passed: r.is_ok(),
                    float_only,
                    message: match r {
                        Ok(text) | Err(text) => text,
                    },
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_small_file() {
        let text = "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 5\n\neval instant at 5m m\n  m{a=\"1\"} 6\n";
        let out = run_test_file(text).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].passed, "{}", out[0].message);
        assert!(!out[1].passed);
    }
}
