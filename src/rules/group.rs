//! One rule group at run time, as Prometheus 2.42's `rules.Group` evaluates it: the rules in
//! file order, each through a [`RuleQuerier`] (in a node: the QueryPlanner's global,
//! deduplicated view) at the group's slotted timestamp. A recording rule yields its output
//! samples; an alerting rule runs its state machine (`rules::alerting`) and yields `ALERTS` and
//! `ALERTS_FOR_STATE` samples plus the alerts due for sending. A series a rule wrote at the
//! previous evaluation and not at this one gets a staleness marker, as Prometheus writes one,
//! so recorded series end when their input ends. A rule's failure (query error, duplicate label
//! sets, limit) is recorded on the rule (`health: err`, `lastError`) and does not stop the
//! group; a failed rule writes nothing and marks nothing stale that evaluation. Query warnings
//! (e.g. a partial response because a StoreShard was down) are kept on the rule and shown by
//! `/api/v1/rules`, so an under-counting result is visible rather than silent.
//!
//! Pure apart from the querier: the caller appends the samples and hands the alerts to the
//! notifier.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::BoxFuture;

use super::alerting::{Alert, AlertingRule, Expander};
use super::file::{Rule, RuleGroup, RuleKind};
use super::recording::{record, RuleQueryResult};
use super::schedule::Schedule;
use crate::promql::{Value, VectorSample};
use crate::storage::model::{stale_nan, Labels};

/// Prometheus's `--rules.alert.resend-delay` default.
pub const RESEND_DELAY: Duration = Duration::from_secs(60);
/// Prometheus's `--rules.alert.for-outage-tolerance` default: how far back `ALERTS_FOR_STATE`
/// is looked for when restoring.
pub const OUTAGE_TOLERANCE: Duration = Duration::from_secs(3600);
const NS_PER_MS: i64 = 1_000_000;

/// Runs a rule's expression at a time; the answer and its warnings, or an error text.
pub trait RuleQuerier: Send + Sync {
    fn query<'a>(
        &'a self,
        expr: &'a str,
        ts_ms: i64,
    ) -> BoxFuture<'a, Result<(Value, Vec<String>), String>>;
}

/// `ok`, `err` or `unknown` (not evaluated yet), as `/api/v1/rules` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule with what its evaluations left behind.
#[derive(Debug, Clone)]
pub struct RuleRuntime {
    pub rule: Rule,
    /// The expression as PromQL prints it back (`up==1` → `up == 1`): what Prometheus shows
    /// as a rule's `query` and puts in an alert's `generatorURL`. Printed once, at load.
    pub printed_expr: String,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_warnings: Vec<String>,
    /// When the last evaluation started (ns) and how long it took.
    pub last_eval_ns: Option<i64>,
    pub last_duration: Duration,
    /// The alert state of an alerting rule.
    pub alerting: Option<AlertingRule>,
    /// The label sets this rule wrote at its last successful evaluation.
    written: BTreeSet<Labels>,
}

impl RuleRuntime {
    fn new(rule: Rule, restored: bool) -> Self {
        let alerting = match &rule.kind {
            RuleKind::Alert(name) => Some(AlertingRule::new(
                name.clone(),
                rule.for_,
                rule.keep_firing_for,
                rule.labels.clone(),
                rule.annotations.clone(),
                restored,
            )),
            RuleKind::Record(_) => None,
        };
        let printed_expr = rule
            .parsed_expr()
            .map(|e| e.to_string())
            .unwrap_or_else(|_| rule.expr.clone());
        RuleRuntime {
            rule,
            printed_expr,
            health: Health::Unknown,
            last_error: None,
            last_warnings: Vec::new(),
            last_eval_ns: None,
            last_duration: Duration::ZERO,
            alerting,
            written: BTreeSet::new(),
        }
    }
}

/// An alert due for sending, with the expression it came from as PromQL prints it (for
/// `generatorURL`).
#[derive(Debug, Clone)]
pub struct OutgoingAlert {
    pub alert: Alert,
    pub expr: String,
}

/// What one evaluation produced.
#[derive(Debug, Default)]
pub struct EvalOutput {
    /// Samples to append: recorded series, ALERTS, ALERTS_FOR_STATE and staleness markers.
    pub samples: Vec<VectorSample>,
    pub alerts: Vec<OutgoingAlert>,
    /// Rules that failed this evaluation.
    pub failures: usize,
}

/// A loaded group and its state.
#[derive(Debug, Clone)]
pub struct Group {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub limit: i64,
    pub schedule: Schedule,
    pub rules: Vec<RuleRuntime>,
    pub last_eval_ns: Option<i64>,
    pub last_duration: Duration,
    /// Restore of `for` state still to do (after the first evaluation of a fresh load).
    pub needs_restore: bool,
    /// A firing alert is sent again once this long has passed since its last send.
    pub resend_delay: Duration,
    /// How far back `ALERTS_FOR_STATE` is looked for when restoring.
    pub outage_tolerance: Duration,
}

impl Group {
    /// A group of `file` with `default_interval` when it sets none. `restore` is true for the
    /// groups of a node's first load (their alert state is restored after the first
    /// evaluation); rules of later reloads start restored, as in Prometheus.
    pub fn new(
        file: &str,
        g: &RuleGroup,
        default_interval: Duration,
        restore: bool,
    ) -> Result<Group, String> {
        let interval = g.interval.unwrap_or(default_interval);
        let schedule = Schedule::new(file, &g.name, interval).map_err(|e| e.to_string())?;
        Ok(Group {
            file: file.to_string(),
            name: g.name.clone(),
            interval,
            limit: g.limit,
            schedule,
            rules: g
                .rules
                .iter()
                .map(|r| RuleRuntime::new(r.clone(), !restore))
                .collect(),
            last_eval_ns: None,
            last_duration: Duration::ZERO,
            needs_restore: restore,
            resend_delay: RESEND_DELAY,
            outage_tolerance: OUTAGE_TOLERANCE,
        })
    }

    /// The key Prometheus uses for a group: `file;name`.
    pub fn key(&self) -> String {
        group_key(&self.file, &self.name)
    }

    /// Takes over the alert state of `old` for rules that are the same (same name, query,
    /// labels, annotations, `for`), as Prometheus's `CopyState` does on reload, and the
    /// written series so that removed series still get staleness markers.
    pub fn copy_state(&mut self, old: &Group) {
        self.last_eval_ns = old.last_eval_ns;
        self.needs_restore = old.needs_restore;
        for r in &mut self.rules {
            if let Some(o) = old.rules.iter().find(|o| o.rule == r.rule) {
                r.alerting = o.alerting.clone();
                r.written = o.written.clone();
                r.health = o.health;
                r.last_error = o.last_error.clone();
                r.last_eval_ns = o.last_eval_ns;
            }
        }
    }

    /// Staleness markers for every series this group wrote last (the group is going away).
    pub fn stale_markers(&self, ts_ms: i64) -> Vec<VectorSample> {
        let mut out = Vec::new();
        for r in &self.rules {
            for ls in &r.written {
                out.push(VectorSample {
                    labels: ls.clone(),
                    t: ts_ms,
                    v: stale_nan(),
                });
            }
        }
        out
    }

    /// One evaluation at `ts_ns`.
    pub async fn eval(
        &mut self,
        ts_ns: i64,
        querier: &dyn RuleQuerier,
        expander: &(dyn Expander + Sync),
    ) -> EvalOutput {
        let started = std::time::Instant::now();
        let ts_ms = ts_ns.div_euclid(NS_PER_MS);
        let mut out = EvalOutput::default();
        let limit = self.limit;
        let timing = (self.interval, self.resend_delay);
        for r in &mut self.rules {
            let rule_started = std::time::Instant::now();
            r.last_eval_ns = Some(ts_ns);
            let result = eval_rule(r, ts_ns, limit, timing, querier, expander).await;
            r.last_duration = rule_started.elapsed();
            match result {
                Ok((samples, alerts, warnings)) => {
                    let now: BTreeSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
                    for gone in r.written.difference(&now) {
                        out.samples.push(VectorSample {
                            labels: gone.clone(),
                            t: ts_ms,
                            v: stale_nan(),
                        });
                    }
                    r.written = now;
                    out.samples.extend(samples);
                    out.alerts
                        .extend(alerts.into_iter().map(|alert| OutgoingAlert {
                            alert,
                            expr: r.printed_expr.clone(),
                        }));
                    r.health = Health::Ok;
                    r.last_error = None;
                    r.last_warnings = warnings;
                }
                Err(e) => {
                    r.health = Health::Err;
                    r.last_error = Some(e);
                    r.last_warnings = Vec::new();
                    out.failures += 1;
                }
            }
        }
        self.last_eval_ns = Some(ts_ns);
        self.last_duration = started.elapsed();
        out
    }

    /// Restores the `for` state of the alerting rules from `ALERTS_FOR_STATE` as the querier
    /// sees it at `now_ns` (the newest sample within the outage tolerance). Unlike
    /// Prometheus, every `for` length is restored (no grace period), so a restart or a
    /// failover never sends a firing alert back to pending. `ignore` lists labels the
    /// querier's answers carry that the rule's own series do not (external labels).
    pub async fn restore(&mut self, now_ns: i64, querier: &dyn RuleQuerier, ignore: &[String]) {
        let now_ms = now_ns.div_euclid(NS_PER_MS);
        let ignore: Vec<&str> = ignore.iter().map(String::as_str).collect();
        let window = format!("{}s", self.outage_tolerance.as_secs().max(1));
        for r in &mut self.rules {
            let Some(rule) = r.alerting.as_mut() else {
                continue;
            };
            if rule.active_alerts().next().is_none() {
                rule.set_restored(true);
                continue;
            }
            let expr = format!(
                "ALERTS_FOR_STATE{{alertname={}}}[{window}]",
                super::file::go_quote(rule.name())
            );
            let mut last: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
            match querier.query(&expr, now_ms).await {
                Ok((Value::Matrix(series), _)) => {
                    for s in series {
                        let labels = s.labels.without(&ignore);
                        if let Some(p) = s.points.last() {
                            last.insert(labels, (p.t, p.v));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(rule = %rule.name(), error = %e,
                        "cannot restore alert state; the rule's alerts start over");
                }
            }
            rule.restore_for_state(now_ns, Duration::ZERO, |ls| {
                last.get(&ls.without(&ignore)).copied()
            });
        }
        self.needs_restore = false;
    }
}

/// `file;name`.
pub fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

type RuleOutcome = (Vec<VectorSample>, Vec<Alert>, Vec<String>);

/// One rule at `ts_ns`; `(interval, resend_delay)` time the alert notifications.
async fn eval_rule(
    r: &mut RuleRuntime,
    ts_ns: i64,
    limit: i64,
    (interval, resend_delay): (Duration, Duration),
    querier: &dyn RuleQuerier,
    expander: &(dyn Expander + Sync),
) -> Result<RuleOutcome, String> {
    let ts_ms = ts_ns.div_euclid(NS_PER_MS);
    let (value, warnings) = querier.query(&r.rule.expr, ts_ms).await?;
    match (&r.rule.kind, r.alerting.as_mut()) {
        (RuleKind::Alert(_), Some(rule)) => {
            let vector: &[VectorSample] = match &value {
                Value::Vector(v) => v,
                // An alerting expression that is not a vector: Prometheus treats a scalar as
                // an error of the rule.
                _ => return Err("rule result is not a vector".to_string()),
            };
            let samples = rule
                .eval(ts_ns, vector, limit, expander)
                .map_err(|e| e.to_string())?;
            let alerts = rule.alerts_to_send(ts_ns, resend_delay, interval);
            Ok((samples, alerts, warnings))
        }
        (RuleKind::Record(name), _) => {
            let result = match &value {
                Value::Vector(v) => RuleQueryResult::Vector(v),
                Value::Scalar { v, .. } => RuleQueryResult::Scalar(*v),
                _ => RuleQueryResult::Other,
            };
            let mut samples =
                record(name, &r.rule.labels, result, ts_ms, limit).map_err(|e| e.to_string())?;
            // Written at the evaluation time whatever timestamps the answer carried.
            for s in &mut samples {
                s.t = ts_ms;
            }
            Ok((samples, Vec::new(), warnings))
        }
        (RuleKind::Alert(_), None) => Err("alerting rule without state".to_string()),
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
