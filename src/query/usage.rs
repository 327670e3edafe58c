//! Metric usage as the engine sees it (the "too many metrics" complaint): every query the
//! QueryPlanner evaluates — the HTTP API, rule evaluations, federation — is reduced, after
//! parsing (so Grafana's variables are already substituted), to the metric names its selectors
//! read. Per name this keeps the requests by source class, the last time, the label names its
//! matchers use and the labels the enclosing aggregations (`by`/`without`) and vector matchings
//! (`on`/`ignoring`, `group_left/right`) group by — the "used through a few labels only"
//! signal. Rules implemented here:
//! - A selector's metric is its name, or its `__name__="..."` matcher; a selector naming no
//!   metric exactly (`{__name__=~"..."}`, `{job="x"}`) is counted under `""` with its matchers,
//!   so the answer can say that some queries read an open set of metrics.
//! - A query counts once per metric it reads, however many times the metric appears in it.
//! - Source classes: `rule` (with the group), `dashboard` (Grafana's `X-Dashboard-Uid`, also
//!   with `X-Panel-Id`), `alert` (Grafana's `X-Rule-Uid`), `adhoc` otherwise.
//! - `collected_since_ms` is when counting began (the oldest persisted start), so a caller can
//!   tell "never queried" from "not watched long enough".
//!
//! Snapshots are plain data (`UsageSnapshot`) so they can be persisted and merged across nodes:
//! requests add up (each node counts the queries it evaluated), last times and label sets take
//! the maximum and the union, `collected_since_ms` the latest start (the shortest watch).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use promql_parser::label::{MatchOp as PMatchOp, METRIC_NAME};
use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality, VectorSelector};
use serde::{Deserialize, Serialize};

/// At most this many dashboard uids and rule groups are kept per metric (the counts go on).
const MAX_NAMED: usize = 32;

/// Where a query came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Rule {
        group: String,
    },
    Dashboard {
        uid: String,
    },
    Alert {
        uid: String,
    },
    AdHoc,
    /// Strata's own bookkeeping queries (the usage API's series counts): not recorded.
    Internal,
}

impl Source {
    pub fn class(&self) -> &'static str {
        match self {
            Source::Rule { .. } => "rule",
            Source::Dashboard { .. } => "dashboard",
            Source::Alert { .. } => "alert",
            Source::AdHoc => "adhoc",
            Source::Internal => "internal",
        }
    }

    /// The class of an HTTP request from its headers (Grafana sets them on every query).
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> Source {
        if let Some(uid) = get("X-Rule-Uid").filter(|u| !u.is_empty()) {
            return Source::Alert { uid };
        }
        if let Some(uid) = get("X-Dashboard-Uid").filter(|u| !u.is_empty()) {
            return Source::Dashboard { uid };
        }
        Source::AdHoc
    }
}

/// How one query used one metric.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectorUse {
    pub metric: String,
    /// Label names in the selector's matchers (`__name__` left out).
    pub matcher_labels: BTreeSet<String>,
    /// Labels the enclosing aggregations and vector matchings name.
    pub grouping_labels: BTreeSet<String>,
    /// Whether some selector of the metric reaches the result with all its labels (no
    /// enclosing `sum`/`avg`/... `by`, or a `without`): then every label is in use.
    pub all_labels: bool,
}

/// What is known about one metric name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricUsage {
    pub requests: u64,
    pub by_source: BTreeMap<String, u64>,
    pub last_ms: i64,
    pub matcher_labels: BTreeSet<String>,
    pub grouping_labels: BTreeSet<String>,
    pub rule_groups: BTreeSet<String>,
    pub dashboards: BTreeSet<String>,
    /// Requests that used the metric with all its labels (see [`SelectorUse::all_labels`]);
    /// when zero, only `matcher_labels` and `grouping_labels` were ever used.
    #[serde(default)]
    pub all_labels_requests: u64,
}

impl MetricUsage {
    fn merge(&mut self, other: &MetricUsage) {
        self.requests += other.requests;
        self.all_labels_requests += other.all_labels_requests;
        for (k, v) in &other.by_source {
            *self.by_source.entry(k.clone()).or_default() += v;
        }
        self.last_ms = self.last_ms.max(other.last_ms);
        self.matcher_labels
            .extend(other.matcher_labels.iter().cloned());
        self.grouping_labels
            .extend(other.grouping_labels.iter().cloned());
        add_capped(&mut self.rule_groups, other.rule_groups.iter().cloned());
        add_capped(&mut self.dashboards, other.dashboards.iter().cloned());
    }
}

fn add_capped(set: &mut BTreeSet<String>, items: impl Iterator<Item = String>) {
    for i in items {
        if set.len() >= MAX_NAMED {
            break;
        }
        set.insert(i);
    }
}

/// A node's usage as data: what is persisted and what peers exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    pub collected_since_ms: i64,
    pub metrics: BTreeMap<String, MetricUsage>,
}

impl UsageSnapshot {
    /// Folds another node's snapshot in (see the module doc).
    pub fn merge(&mut self, other: &UsageSnapshot) {
        self.collected_since_ms = self.collected_since_ms.max(other.collected_since_ms);
        for (name, u) in &other.metrics {
            self.metrics.entry(name.clone()).or_default().merge(u);
        }
    }
}

/// The live recorder a node keeps.
pub struct Usage {
    inner: Mutex<UsageSnapshot>,
}

impl Usage {
    /// Starts counting at `now_ms`, or continues a persisted snapshot.
    pub fn new(now_ms: i64, restored: Option<UsageSnapshot>) -> Self {
        let snap = restored.unwrap_or(UsageSnapshot {
            collected_since_ms: now_ms,
            metrics: BTreeMap::new(),
        });
        Usage {
            inner: Mutex::new(snap),
        }
    }

    /// Records one evaluated query.
    pub fn record(&self, expr: &Expr, source: &Source, now_ms: i64) {
        if *source == Source::Internal {
            return;
        }
        let uses = selector_uses(expr);
        if uses.is_empty() {
            return;
        }
        let mut snap = self.inner.lock();
        for u in uses {
            let m = snap.metrics.entry(u.metric).or_default();
            m.requests += 1;
            if u.all_labels {
                m.all_labels_requests += 1;
            }
            *m.by_source.entry(source.class().to_string()).or_default() += 1;
            m.last_ms = m.last_ms.max(now_ms);
            m.matcher_labels.extend(u.matcher_labels);
            m.grouping_labels.extend(u.grouping_labels);
            match source {
                Source::Rule { group } => {
                    add_capped(&mut m.rule_groups, std::iter::once(group.clone()))
                }
                Source::Dashboard { uid } => {
                    add_capped(&mut m.dashboards, std::iter::once(uid.clone()))
                }
                Source::Alert { .. } | Source::AdHoc | Source::Internal => {}
            }
        }
    }

    pub fn snapshot(&self) -> UsageSnapshot {
        self.inner.lock().clone()
    }

    /// Writes the snapshot to `path` (through a temporary file, so a crash leaves the last
    /// complete one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let body = serde_json::to_vec(&self.snapshot()).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, path)
    }

    /// Saves to `path` every `every` until `stop`, and once more then.
    pub fn spawn_saver(
        self: &Arc<Self>,
        path: PathBuf,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let usage = self.clone();
        tokio::spawn(async move {
            loop {
                let stopped = tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = tokio::time::sleep(every) => false,
                };
                if let Err(e) = usage.save(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot save metric usage");
                }
                if stopped {
                    return;
                }
            }
        });
    }
}

/// The snapshot saved at `path`; `None` when there is none or it cannot be read (logged: a
/// node then starts counting afresh, and says so through `collected_since_ms`).
pub fn load(path: &Path) -> Option<UsageSnapshot> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read metric usage");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "metric usage file is not valid; starting afresh");
            None
        }
    }
}

/// The metrics a query reads, one entry per metric (labels of its several selectors joined).
pub fn selector_uses(expr: &Expr) -> Vec<SelectorUse> {
    let mut out: BTreeMap<String, SelectorUse> = BTreeMap::new();
    walk(expr, &mut Vec::new(), false, &mut out);
    out.into_values().collect()
}

/// Aggregations whose result carries only the `by` labels (none without `by`); `topk`,
/// `bottomk`, `count_values` and `limitk` keep or add labels, so they narrow nothing.
const NARROWING_AGGREGATIONS: &[&str] = &[
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group", "quantile",
];

/// `narrowed`: an enclosing aggregation already keeps only the labels in `grouping`.
fn walk(
    expr: &Expr,
    grouping: &mut Vec<String>,
    narrowed: bool,
    out: &mut BTreeMap<String, SelectorUse>,
) {
    match expr {
        Expr::VectorSelector(vs) => note(vs, grouping, narrowed, out),
        Expr::MatrixSelector(ms) => note(&ms.vs, grouping, narrowed, out),
        Expr::Subquery(sq) => walk(&sq.expr, grouping, narrowed, out),
        Expr::Paren(p) => walk(&p.expr, grouping, narrowed, out),
        Expr::Unary(u) => walk(&u.expr, grouping, narrowed, out),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, grouping, narrowed, out);
            }
            let op = a.op.to_string().to_lowercase();
            let inner_narrowed = match &a.modifier {
                Some(LabelModifier::Exclude(_)) => narrowed,
                _ if NARROWING_AGGREGATIONS.contains(&op.as_str()) => true,
                _ => narrowed,
            };
            let n = push_modifier(grouping, a.modifier.as_ref());
            walk(&a.expr, grouping, inner_narrowed, out);
            grouping.truncate(grouping.len() - n);
        }
        Expr::Binary(b) => {
            let mut n = 0;
            // `group_left (x)` copies `x` from the right-hand ("one") side, `group_right`
            // from the left: those labels are used on that side only.
            // The result carries the labels of the "many" side (the left one unless
            // `group_right`); with `on (...)` the other side is used through the `on` and
            // `group_*` labels only.
            let (mut left_extra, mut right_extra): (&[String], &[String]) = (&[], &[]);
            let (mut left_narrowed, mut right_narrowed) = (narrowed, narrowed);
            if let Some(m) = &b.modifier {
                n += push_modifier(grouping, m.matching.as_ref());
                let on = matches!(m.matching, Some(LabelModifier::Include(_)));
                match &m.card {
                    VectorMatchCardinality::ManyToOne(l) => right_extra = &l.labels,
                    VectorMatchCardinality::OneToMany(l) => left_extra = &l.labels,
                    _ => {}
                }
                if on {
                    match &m.card {
                        VectorMatchCardinality::OneToMany(_) => left_narrowed = true,
                        _ => right_narrowed = true,
                    }
                }
            }
            for (side, extra, side_narrowed) in [
                (&b.lhs, left_extra, left_narrowed),
                (&b.rhs, right_extra, right_narrowed),
            ] {
                grouping.extend(extra.iter().cloned());
                walk(side, grouping, side_narrowed, out);
                grouping.truncate(grouping.len() - extra.len());
            }
            grouping.truncate(grouping.len() - n);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, grouping, narrowed, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Pushes the labels a `by`/`without`/`on`/`ignoring` names; returns how many.
fn push_modifier(grouping: &mut Vec<String>, m: Option<&LabelModifier>) -> usize {
    let Some(m) = m else { return 0 };
    let labels = &m.labels().labels;
    grouping.extend(labels.iter().cloned());
    labels.len()
}

fn note(
    vs: &VectorSelector,
    grouping: &[String],
    narrowed: bool,
    out: &mut BTreeMap<String, SelectorUse>,
) {
    let mut metric = vs.name.clone();
    let mut labels = BTreeSet::new();
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all {
        if m.name == METRIC_NAME {
            if metric.is_none() && matches!(m.op, PMatchOp::Equal) {
                metric = Some(m.value.clone());
            }
        } else {
            labels.insert(m.name.clone());
        }
    }
    let key = metric.unwrap_or_default();
    let entry = out.entry(key.clone()).or_insert_with(|| SelectorUse {
        metric: key,
        ..Default::default()
    });
    entry.matcher_labels.extend(labels);
    entry.grouping_labels.extend(grouping.iter().cloned());
    entry.all_labels |= !narrowed;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(q: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
        let expr = promql_parser::parser::parse(q).unwrap();
        selector_uses(&expr)
            .into_iter()
            .map(|u| {
                (
                    u.metric,
                    u.matcher_labels.into_iter().collect(),
                    u.grouping_labels.into_iter().collect(),
                )
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn selectors_give_their_metrics_matchers_and_grouping() {
        assert_eq!(
            uses(
                r#"sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / on (job) group_left (team) up"#
            ),
            vec![
                ("http_requests_total".into(), s(&["code"]), s(&["job"])),
                ("up".into(), s(&[]), s(&["job", "team"])),
            ]
        );
        assert_eq!(
            uses(r#"{__name__="node_load1", instance="a"} + node_load1"#),
            vec![("node_load1".into(), s(&["instance"]), s(&[]))]
        );
        // No exact metric name: counted under "".
        assert_eq!(
            uses(r#"count({__name__=~"node_.*", job="n"})"#),
            vec![(String::new(), s(&["job"]), s(&[]))]
        );
        assert_eq!(
            uses("max_over_time(deriv(x[5m])[1h:1m]) > bool 3"),
            vec![("x".into(), s(&[]), s(&[]))]
        );
        assert!(uses("vector(1) + time()").is_empty());
    }

    #[test]
    fn all_labels_is_set_unless_an_aggregation_or_on_narrows_the_selector() {
        let all = |q: &str| -> Vec<(String, bool)> {
            let expr = promql_parser::parser::parse(q).unwrap();
            selector_uses(&expr)
                .into_iter()
                .map(|u| (u.metric, u.all_labels))
                .collect()
        };
        assert_eq!(all("x"), vec![("x".into(), true)]);
        assert_eq!(all("rate(x[5m])"), vec![("x".into(), true)]);
        assert_eq!(all("sum by (job) (rate(x[5m]))"), vec![("x".into(), false)]);
        assert_eq!(all("sum(x)"), vec![("x".into(), false)]);
        assert_eq!(all("sum without (cpu) (x)"), vec![("x".into(), true)]);
        assert_eq!(all("topk(3, x)"), vec![("x".into(), true)]);
        assert_eq!(all("topk(3, sum by (a) (x))"), vec![("x".into(), false)]);
        assert_eq!(
            all("x / on (job) group_left (team) y"),
            vec![("x".into(), true), ("y".into(), false)]
        );
        assert_eq!(
            all("x / on (job) group_right y"),
            vec![("x".into(), false), ("y".into(), true)]
        );
        assert_eq!(all("x + y"), vec![("x".into(), true), ("y".into(), true)]);
        // One narrowed and one full use of the same metric: all labels.
        assert_eq!(all("sum(x) + x"), vec![("x".into(), true)]);
    }

    #[test]
    fn records_count_once_per_query_and_merge_across_nodes() {
        let a = Usage::new(1_000, None);
        let q = promql_parser::parser::parse("x + x + y").unwrap();
        a.record(&q, &Source::Dashboard { uid: "d1".into() }, 2_000);
        a.record(&q, &Source::Rule { group: "g".into() }, 3_000);
        let snap = a.snapshot();
        assert_eq!(snap.collected_since_ms, 1_000);
        let x = &snap.metrics["x"];
        assert_eq!(x.requests, 2);
        assert_eq!(x.by_source["dashboard"], 1);
        assert_eq!(x.by_source["rule"], 1);
        assert_eq!(x.last_ms, 3_000);
        assert_eq!(x.dashboards, BTreeSet::from(["d1".to_string()]));
        assert_eq!(x.rule_groups, BTreeSet::from(["g".to_string()]));

        let b = Usage::new(5_000, None);
        b.record(&q, &Source::AdHoc, 6_000);
        let mut merged = snap.clone();
        merged.merge(&b.snapshot());
        assert_eq!(merged.metrics["x"].requests, 3);
        assert_eq!(merged.metrics["x"].last_ms, 6_000);
        assert_eq!(merged.metrics["y"].by_source["adhoc"], 1);
        // The shortest watch decides what may be called unused.
        assert_eq!(merged.collected_since_ms, 5_000);

        // A restored snapshot keeps its start and counts on.
        let c = Usage::new(9_000, Some(merged.clone()));
        c.record(&q, &Source::AdHoc, 9_500);
        assert_eq!(c.snapshot().collected_since_ms, 5_000);
        assert_eq!(c.snapshot().metrics["x"].requests, 4);
    }

    #[test]
    fn usage_survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.json");
        assert_eq!(load(&path), None);
        let u = Usage::new(1_000, None);
        u.record(
            &promql_parser::parser::parse("up").unwrap(),
            &Source::AdHoc,
            2_000,
        );
        u.save(&path).unwrap();
        assert_eq!(load(&path), Some(u.snapshot()));
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load(&path), None);
    }

    #[test]
    fn grafana_headers_give_the_source_class() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Source::from_headers(h(&[("X-Dashboard-Uid", "abc"), ("X-Panel-Id", "3")])),
            Source::Dashboard { uid: "abc".into() }
        );
        assert_eq!(
            Source::from_headers(h(&[("X-Rule-Uid", "r1"), ("X-Dashboard-Uid", "abc")])),
            Source::Alert { uid: "r1".into() }
        );
        assert_eq!(Source::from_headers(h(&[])), Source::AdHoc);
    }
}
