//! Runs one test file as promtool 2.42's `ruleUnitTest` and `testGroup.test` do: input series
//! into a [`MemStorage`], the rule files' groups evaluated at `0, ei, 2ei, …` up to the
//! largest eval time (every group each time, whatever its own interval; alerting rules start
//! restored so `ALERTS` exist from the first evaluation), alert checks against the
//! evaluation at the largest `ts ≤ eval_time`, then the PromQL checks as instant queries.
//!
//! Each rule runs as a one-rule [`Group`] whose output is appended before the next rule, so
//! a rule sees the outputs of the rules before it at the same timestamp, as Prometheus
//! commits each rule before the next. Input samples are loaded up to the largest eval time
//! (promtool's lazy loader never loads later ones).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;

use super::report::{alerts_string, indent_lines, samples_string, LabelsAndAnnotations, Pairs};
use super::spec::{self, opt_duration_ms, AlertTestCase, TestFile, TestGroup};
use super::{Result, UnitTestError};
use crate::gocompat::{format_duration, format_go_duration_ms};
use crate::promql::engine::{Engine, EngineOptions};
use crate::promql::testlang::MemStorage;
use crate::promql::testlang_parse::{parse_series_desc, parse_values, SeqValue};
use crate::promql::Value;
use crate::rules::alerting::{AlertState, Expander};
use crate::rules::file::{self, go_io_error, go_quote, RuleGroup};
use crate::rules::group::{Group, RuleQuerier};
use crate::rules::template::{
    expand_or_error_text, ExpandContext, QueryFunc, QuerySample, TemplateData,
};
use crate::storage::model::{Labels, Sample};

const NS_PER_MS: i64 = 1_000_000;
const DEFAULT_EVAL_INTERVAL_MS: u64 = 60_000;

/// What a test file gave: warnings (unmatched `rule_files` patterns) and failures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
}

/// Runs every test group of the file at `path`.
pub fn test_file(path: &Path) -> Outcome {
    let mut outcome = Outcome::default();
    match run_file(path, &mut outcome.warnings) {
        Ok(failures) => outcome.failures = failures,
        Err(e) => outcome.failures = vec![e.to_string()],
    }
    outcome
}

fn run_file(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UnitTestError::Read(go_io_error(&path.display().to_string(), &e)))?;
    let tf: TestFile = spec::parse(&text)?;
    let rule_files = resolve_rule_files(path, &tf.rule_files, warnings)?;
    let mut eval_interval = opt_duration_ms(&tf.evaluation_interval)?;
    if eval_interval == 0 {
        eval_interval = DEFAULT_EVAL_INTERVAL_MS;
    }
    let mut order = BTreeMap::new();
    for (i, g) in tf.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return Err(UnitTestError::RepeatedGroup(g.clone()));
        }
    }
    let mut failures = Vec::new();
    for tg in &tf.tests {
        match test_group(tg, eval_interval, &order, &rule_files) {
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Ok(failures)
}

/// An I/O error worded as Go's `os` package words the common ones.
/// `rule_files` relative to the test file's directory, expanded as globs in order.
fn resolve_rule_files(
    test: &Path,
    files: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>> {
    let base = test
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && *p != Path::new("."));
    let mut out = Vec::new();
    for rf in files {
        let pattern = match base {
            Some(b) if !rf.is_empty() && !Path::new(rf).is_absolute() => {
                b.join(rf).to_string_lossy().into_owned()
            }
            _ => rf.clone(),
        };
        let paths = glob::glob(&pattern).map_err(|e| UnitTestError::Glob(e.to_string()))?;
        let matched: Vec<PathBuf> = paths.filter_map(|p| p.ok()).collect();
        if matched.is_empty() {
            warnings.push(format!("  WARNING: no file match pattern {pattern}"));
        }
        out.extend(matched);
    }
    Ok(out)
}

/// The rule groups of a test group: per group name, one single-rule [`Group`] per rule.
type Groups = Vec<(String, Vec<Group>)>;

fn load_groups(
    rule_files: &[PathBuf],
    default_interval: Duration,
    order: &BTreeMap<String, usize>,
) -> std::result::Result<Groups, Vec<String>> {
    let templates = file::default_template_check();
    let mut groups: Groups = Vec::new();
    let mut errors = Vec::new();
    for path in rule_files {
        let name = path.to_string_lossy().into_owned();
        let parsed = match file::parse_file(path, &templates) {
            Ok(p) => p,
            Err(errs) => {
                errors.extend(errs.into_iter().map(|e| e.to_string()));
                continue;
            }
        };
        for g in &parsed.groups {
            let mut rules = Vec::new();
            for r in &g.rules {
                let single = RuleGroup {
                    name: g.name.clone(),
                    interval: g.interval,
                    limit: g.limit,
                    rules: vec![r.clone()],
                };
                match Group::new(&name, &single, default_interval, false) {
                    Ok(group) => rules.push(group),
                    Err(e) => errors.push(format!("{name}: group {:?}: {e}", g.name)),
                }
            }
            groups.push((g.name.clone(), rules));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Groups not in `group_eval_order` count as its first entry, as in promtool.
    groups.sort_by_key(|(name, _)| order.get(name).copied().unwrap_or(0));
    Ok(groups)
}

fn load_series(tg: &TestGroup, interval_ms: u64, max_t: i64) -> Result<MemStorage> {
    let mut st = MemStorage::new();
    let step = i64::try_from(interval_ms).unwrap_or(i64::MAX);
    for s in &tg.input_series {
        let bad = |message: String| UnitTestError::Series {
            series: s.series.clone(),
            message,
        };
        let (labels, rest) = parse_series_desc(0, &s.series).map_err(|e| bad(e.to_string()))?;
        if !rest.trim().is_empty() || labels.is_empty() {
            return Err(bad("not a series description".to_string()));
        }
        let text = s.values.as_ref().map(|v| v.text()).unwrap_or_default();
        let values = parse_values(0, &text).map_err(|e| bad(e.to_string()))?;
        let mut samples = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let t = step.saturating_mul(i64::try_from(i).unwrap_or(i64::MAX));
            match v {
                SeqValue::Missing => {}
                SeqValue::Float(f) if t <= max_t => samples.push(Sample { t, v: *f }),
                SeqValue::Float(_) => {}
                SeqValue::Histogram(_) => {
                    return Err(bad("native histograms are not supported".to_string()))
                }
            }
        }
        st.add(labels, &samples);
    }
    Ok(st)
}

/// Instant queries over the test storage.
struct Querier<'a> {
    engine: &'a Engine,
    storage: &'a MemStorage,
}

impl Querier<'_> {
    fn instant(&self, expr: &str, ts_ms: i64) -> std::result::Result<(Value, Vec<String>), String> {
        self.engine
            .instant(self.storage, expr, ts_ms)
            .map(|q| (q.value, q.warnings))
            .map_err(|e| e.to_string())
    }
}

impl RuleQuerier for Querier<'_> {
    fn query<'b>(
        &'b self,
        expr: &'b str,
        ts_ms: i64,
    ) -> BoxFuture<'b, std::result::Result<(Value, Vec<String>), String>> {
        let r = self.instant(expr, ts_ms);
        Box::pin(std::future::ready(r))
    }
}

/// Alert templates as promtool expands them: external labels and URL as data, a nil URL for
/// the `externalURL`/`pathPrefix` functions, `query` over the test storage.
struct TestExpander<'a> {
    querier: &'a Querier<'a>,
    external_labels: &'a BTreeMap<String, String>,
    external_url: &'a str,
}

impl QueryFunc for TestExpander<'_> {
    fn query(&self, expr: &str, ts_ms: i64) -> std::result::Result<Vec<QuerySample>, String> {
        crate::rules::template::query_samples(self.querier.instant(expr, ts_ms)?.0)
    }
}

impl Expander for TestExpander<'_> {
    fn expand(&self, alert: &str, text: &str, labels: &Labels, value: f64, ts_ns: i64) -> String {
        let data = TemplateData::for_alert(labels, value, self.external_labels, self.external_url);
        let ctx = ExpandContext {
            data: &data,
            eval_time_ms: ts_ns.div_euclid(NS_PER_MS),
            query: self,
            external_url: None,
        };
        expand_or_error_text(alert, text, &ctx)
    }
}

fn labels_to_pairs(l: &Labels) -> Pairs {
    Pairs(
        l.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
    )
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// One test group; `Err` stops it before any check (its text is the one failure).
fn test_group(
    tg: &TestGroup,
    eval_interval: u64,
    order: &BTreeMap<String, usize>,
    rule_files: &[PathBuf],
) -> Result<Vec<String>> {
    let mut interval = opt_duration_ms(&tg.interval)?;
    if interval == 0 {
        interval = eval_interval;
    }
    let mut groups = match load_groups(rule_files, Duration::from_millis(interval), order) {
        Ok(g) => g,
        Err(errs) => return Ok(errs),
    };
    // Alert checks by eval time, in file order within a time.
    let mut alert_tests: BTreeMap<u64, Vec<&AlertTestCase>> = BTreeMap::new();
    for a in &tg.alert_rule_test {
        let t = opt_duration_ms(&a.eval_time)?;
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return Err(UnitTestError::MissingAlertname {
                eval_time: format_duration(t),
                in_group,
            });
        }
        alert_tests.entry(t).or_default().push(a);
    }
    let mut max_t = alert_tests.keys().next_back().copied().unwrap_or(0);
    for p in &tg.promql_expr_test {
        max_t = max_t.max(opt_duration_ms(&p.eval_time)?);
    }
    let mut storage = load_series(tg, interval, to_i64(max_t))?;
    let engine = Engine::new(EngineOptions::default());
    let times: Vec<u64> = alert_tests.keys().copied().collect();
    let mut curr = 0;
    let mut errs = Vec::new();
    let mut ts = 0u64;
    while ts <= max_t {
        let ts_ms = to_i64(ts);
        let mut eval_errs = Vec::new();
        for (_, rules) in groups.iter_mut() {
            for g in rules.iter_mut() {
                let out = {
                    let querier = Querier {
                        engine: &engine,
                        storage: &storage,
                    };
                    let expander = TestExpander {
                        querier: &querier,
                        external_labels: &tg.external_labels,
                        external_url: &tg.external_url,
                    };
                    futures::executor::block_on(g.eval(
                        ts_ms.saturating_mul(NS_PER_MS),
                        &querier,
                        &expander,
                    ))
                };
                for s in out.samples {
                    storage.add(s.labels, &[Sample { t: s.t, v: s.v }]);
                }
            }
            for g in rules.iter() {
                for r in &g.rules {
                    if let Some(e) = &r.last_error {
                        eval_errs.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            r.rule.name(),
                            format_go_duration_ms(ts_ms)
                        ));
                    }
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return Ok(errs);
        }
        while curr < times.len() && ts <= times[curr] && times[curr] < ts + eval_interval {
            let t = times[curr];
            let cases = alert_tests.get(&t).map(Vec::as_slice).unwrap_or_default();
            check_alerts(tg, &groups, t, cases, &mut errs);
            curr += 1;
        }
        ts += eval_interval;
    }
    check_exprs(tg, &engine, &storage, &mut errs)?;
    Ok(errs)
}

fn check_alerts(
    tg: &TestGroup,
    groups: &Groups,
    t: u64,
    cases: &[&AlertTestCase],
    errs: &mut Vec<String>,
) {
    let present: BTreeSet<&str> = cases.iter().map(|c| c.alertname.as_str()).collect();
    let mut got: BTreeMap<&str, Vec<LabelsAndAnnotations>> = BTreeMap::new();
    for (_, rules) in groups {
        for g in rules {
            for r in &g.rules {
                let Some(ar) = &r.alerting else { continue };
                if !present.contains(ar.name()) {
                    continue;
                }
                let firing = ar
                    .active_alerts()
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| (labels_to_pairs(&a.labels), Pairs::from_map(&a.annotations)));
                got.entry(ar.name()).or_default().extend(firing);
            }
        }
    }
    for case in cases {
        let mut got_alerts = got
            .get(case.alertname.as_str())
            .cloned()
            .unwrap_or_default();
        let mut exp_alerts: Vec<LabelsAndAnnotations> = case
            .exp_alerts
            .iter()
            .map(|a| {
                let mut l = a.exp_labels.clone();
                l.insert("alertname".to_string(), case.alertname.clone());
                (Pairs::from_map(&l), Pairs::from_map(&a.exp_annotations))
            })
            .collect();
        got_alerts.sort();
        exp_alerts.sort();
        if got_alerts != exp_alerts {
            let name = if tg.name.is_empty() {
                String::new()
            } else {
                format!("    name: {},\n", tg.name)
            };
            errs.push(format!(
                "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                case.alertname,
                format_duration(t),
                indent_lines(&alerts_string(&exp_alerts), "            "),
                indent_lines(&alerts_string(&got_alerts), "            "),
            ));
        }
    }
}

/// Go's `parser.ParseMetric`: `name{l="v", …}` or `{…}`.
fn parse_metric(s: &str) -> std::result::Result<Pairs, String> {
    let (labels, rest) = parse_series_desc(0, s).map_err(|e| e.to_string())?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {:?} after the label set", rest.trim()));
    }
    if labels.is_empty() && !s.trim().starts_with('{') {
        return Err("no metric name or labels".to_string());
    }
    Ok(labels_to_pairs(&labels))
}

fn check_exprs(
    tg: &TestGroup,
    engine: &Engine,
    storage: &MemStorage,
    errs: &mut Vec<String>,
) -> Result<()> {
    'outer: for case in &tg.promql_expr_test {
        let t = opt_duration_ms(&case.eval_time)?;
        let quoted = go_quote(&case.expr);
        let time = format_duration(t);
        let value = engine
            .instant(storage, &case.expr, to_i64(t))
            .map_err(|e| e.to_string())
            .and_then(|q| match q.value {
                Value::Vector(v) => Ok(v
                    .into_iter()
                    .map(|s| (labels_to_pairs(&s.labels), s.v))
                    .collect::<Vec<_>>()),
                Value::Scalar { v, .. } => Ok(vec![(Pairs::default(), v)]),
                _ => Err("rule result is not a vector or scalar".to_string()),
            });
        let mut got = match value {
            Ok(g) => g,
            Err(e) => {
                errs.push(format!("    expr: {quoted}, time: {time}, err: {e}"));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &case.exp_samples {
            match parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {quoted}, time: {time}, err: labels {}: {e}",
                        go_quote(&s.labels)
                    ));
                    continue 'outer;
                }
            }
        }
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        // Go's reflect.DeepEqual: float ==, so NaN never matches.
        let same =
            exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && e.1 == g.1);
        if !same {
            errs.push(format!(
                "    expr: {quoted}, time: {time},\n        exp: {}\n        got: {}",
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    Ok(())
}
