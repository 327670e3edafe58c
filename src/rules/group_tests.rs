#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Group evaluation over a scripted querier: recorded output and staleness, rule failures
//! kept on the rule, alert transitions and sends, restore from ALERTS_FOR_STATE.

use std::sync::Mutex;

use super::*;
use crate::promql::RangeSeries;
use crate::rules::alerting::AlertState;
use crate::storage::model::{is_stale_nan, Sample};

/// Answers by expression from a table the test changes between evaluations.
#[derive(Default)]
struct Scripted {
    answers: Mutex<BTreeMap<String, Result<Value, String>>>,
}

impl Scripted {
    fn set(&self, expr: &str, v: Result<Value, String>) {
        self.answers.lock().unwrap().insert(expr.to_string(), v);
    }
}

impl RuleQuerier for Scripted {
    fn query<'a>(
        &'a self,
        expr: &'a str,
        _ts_ms: i64,
    ) -> BoxFuture<'a, Result<(Value, Vec<String>), String>> {
        let v = self
            .answers
            .lock()
            .unwrap()
            .get(expr)
            .cloned()
            .unwrap_or_else(|| Ok(Value::Vector(Vec::new())));
        Box::pin(async move { v.map(|v| (v, vec!["partial".to_string()])) })
    }
}

/// Expands nothing: templates stay as written.
struct Verbatim;

impl Expander for Verbatim {
    fn expand(&self, _: &str, text: &str, _: &Labels, _: f64, _: i64) -> String {
        text.to_string()
    }
}

fn vector(pairs: &[(&[(&str, &str)], f64)]) -> Value {
    Value::Vector(
        pairs
            .iter()
            .map(|(ls, v)| VectorSample {
                labels: Labels::from_pairs(ls.iter().copied()),
                t: 0,
                v: *v,
            })
            .collect(),
    )
}

fn group(yaml: &str) -> Group {
    let groups = crate::rules::parse(
        "rules.yml",
        yaml,
        &crate::rules::file::default_template_check(),
    )
    .unwrap();
    Group::new(
        "rules.yml",
        &groups.groups[0],
        Duration::from_secs(15),
        false,
    )
    .unwrap()
}

const S: i64 = 1_000_000_000;

#[tokio::test]
async fn recording_output_and_staleness_markers_when_a_series_goes() {
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: a}\n",
    );
    let q = Scripted::default();
    q.set(
        "sum by (job) (up)",
        Ok(vector(&[(&[("job", "a")], 2.0), (&[("job", "b")], 1.0)])),
    );
    let out = g.eval(100 * S, &q, &Verbatim).await;
    assert_eq!(out.failures, 0);
    let names: Vec<String> = out.samples.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        names,
        vec![
            "{__name__=\"job:up:sum\", job=\"a\", team=\"a\"}",
            "{__name__=\"job:up:sum\", job=\"b\", team=\"a\"}"
        ]
    );
    assert!(out.samples.iter().all(|s| s.t == 100_000));
    assert_eq!(g.rules[0].health, Health::Ok);
    assert_eq!(g.rules[0].last_warnings, vec!["partial".to_string()]);

    // job b disappears: its series gets a staleness marker at the next evaluation.
    q.set("sum by (job) (up)", Ok(vector(&[(&[("job", "a")], 3.0)])));
    let out = g.eval(115 * S, &q, &Verbatim).await;
    let stale: Vec<&VectorSample> = out.samples.iter().filter(|s| is_stale_nan(s.v)).collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].labels.get("job"), Some("b"));
    assert_eq!(stale[0].t, 115_000);

    // A failing query marks the rule, writes nothing and marks nothing stale.
    q.set("sum by (job) (up)", Err("store unreachable".to_string()));
    let out = g.eval(130 * S, &q, &Verbatim).await;
    assert_eq!((out.failures, out.samples.len()), (1, 0));
    assert_eq!(g.rules[0].health, Health::Err);
    assert_eq!(g.rules[0].last_error.as_deref(), Some("store unreachable"));

    // Removing the group ends the series it wrote.
    let markers = g.stale_markers(140_000);
    assert_eq!(markers.len(), 1);
    assert!(is_stale_nan(markers[0].v));
}

#[tokio::test]
async fn an_alert_pends_fires_is_sent_and_resolves() {
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30s\n    labels: {severity: page}\n    annotations: {summary: down}\n",
    );
    let q = Scripted::default();
    q.set(
        "up == 0",
        Ok(vector(&[(&[("__name__", "up"), ("job", "a")], 0.0)])),
    );
    let out = g.eval(100 * S, &q, &Verbatim).await;
    let alerting = g.rules[0].alerting.as_ref().unwrap();
    assert_eq!(alerting.state(), AlertState::Pending);
    assert!(out.alerts.is_empty(), "pending alerts are not sent");
    assert!(out
        .samples
        .iter()
        .any(|s| s.labels.get("__name__") == Some("ALERTS")
            && s.labels.get("alertstate") == Some("pending")));

    let out = g.eval(130 * S, &q, &Verbatim).await;
    assert_eq!(
        g.rules[0].alerting.as_ref().unwrap().state(),
        AlertState::Firing
    );
    assert_eq!(out.alerts.len(), 1);
    let a = &out.alerts[0];
    assert_eq!(a.expr, "up == 0");
    assert_eq!(a.alert.labels.get("alertname"), Some("Down"));
    assert_eq!(a.alert.labels.get("severity"), Some("page"));
    assert_eq!(a.alert.labels.get("__name__"), None);

    // Not resent before the resend delay; resolved at once when the condition clears.
    let out = g.eval(145 * S, &q, &Verbatim).await;
    assert!(out.alerts.is_empty());
    q.set("up == 0", Ok(vector(&[])));
    let out = g.eval(160 * S, &q, &Verbatim).await;
    assert_eq!(out.alerts.len(), 1);
    assert!(out.alerts[0].alert.resolved_at_ns.is_some());
    // ALERTS for the resolved alert is marked stale.
    assert!(out
        .samples
        .iter()
        .any(|s| s.labels.get("__name__") == Some("ALERTS") && is_stale_nan(s.v)));
}

#[tokio::test]
async fn restore_keeps_a_firing_alert_firing_after_a_restart() {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30s\n";
    let groups = crate::rules::parse(
        "rules.yml",
        yaml,
        &crate::rules::file::default_template_check(),
    )
    .unwrap();
    // A fresh load after a restart: the rule waits for its restore.
    let mut g = Group::new(
        "rules.yml",
        &groups.groups[0],
        Duration::from_secs(15),
        true,
    )
    .unwrap();
    let q = Scripted::default();
    q.set("up == 0", Ok(vector(&[(&[("job", "a")], 0.0)])));
    // The previous instance recorded the alert active since t=10s, last written at 95s; it
    // carries the node's external label, which the rule's own series do not.
    q.set(
        "ALERTS_FOR_STATE{alertname=\"Down\"}[3600s]",
        Ok(Value::Matrix(vec![RangeSeries {
            labels: Labels::from_pairs([
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "Down"),
                ("cluster", "eu1"),
                ("job", "a"),
            ]),
            points: vec![Sample { t: 95_000, v: 10.0 }],
        }])),
    );
    let out = g.eval(100 * S, &q, &Verbatim).await;
    assert!(out.alerts.is_empty());
    assert!(g.needs_restore);
    g.restore(100 * S, &q, &["cluster".to_string()]).await;
    assert!(!g.needs_restore);
    // Active since 10 s plus the 5 s of downtime: past its 30 s `for` at the next evaluation.
    let out = g.eval(115 * S, &q, &Verbatim).await;
    assert_eq!(
        g.rules[0].alerting.as_ref().unwrap().state(),
        AlertState::Firing
    );
    assert_eq!(out.alerts.len(), 1);
}
