//! The state of one alerting rule over its evaluations, as Prometheus 2.42's
//! `rules/alerting.go` keeps it (`AlertingRule.Eval`, `needsSending`, `sendAlerts`) and
//! `rules/manager.go` restores it (`RestoreForState`). In: the evaluation timestamp and the
//! vector the rule's expression returned. Out: the alert instances (pending, firing, or
//! inactive = resolved and kept 15 minutes so Alertmanager hears the resolve), the `ALERTS`
//! and `ALERTS_FOR_STATE` samples to append, and which alerts are due to be sent.
//! Label and annotation templates are expanded by an [`Expander`], so the template engine
//! plugs in from outside. Times are nanoseconds since the epoch, because slotted evaluation
//! timestamps carry the group's nanosecond offset and `activeAt` shows it; samples are in
//! milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::recording::set_label;
use crate::promql::VectorSample;
use crate::storage::model::{is_stale_nan, Label, Labels, METRIC_NAME};

/// How long a resolved alert is kept (and re-sent as resolved): `resolvedRetention`.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertingError {
    /// Two result samples map to one alert label set; the rule's state is left untouched.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabelset,
    /// More pending and firing alerts than the group's `limit`; all state was cleared.
    #[error("exceeded limit of {limit} with {alerts} alerts")]
    LimitExceeded { limit: i64, alerts: usize },
}

pub type Result<T> = std::result::Result<T, AlertingError>;

/// Expands one label or annotation template of alerting rule `alert` for one result sample:
/// `labels` are the sample's labels as the query returned them (with `__name__` if kept),
/// `value` its value, `ts_ns` the evaluation time. A template error is part of the returned
/// text (Prometheus writes `<error expanding template: ...>`), never a failure of the rule.
pub trait Expander {
    fn expand(&self, alert: &str, text: &str, labels: &Labels, value: f64, ts_ns: i64) -> String;
}

/// Ordered as Prometheus orders them: firing > pending > inactive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance. `None` times are Go's zero `time.Time`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    /// Sample labels without `__name__`, the expanded rule labels, and `alertname`.
    pub labels: Labels,
    /// Expanded annotations (empty values kept, as Prometheus keeps them).
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
    pub active_at_ns: i64,
    pub fired_at_ns: Option<i64>,
    pub resolved_at_ns: Option<i64>,
    pub last_sent_at_ns: Option<i64>,
    pub valid_until_ns: Option<i64>,
    pub keep_firing_since_ns: Option<i64>,
}

impl Alert {
    /// `needsSending`: never while pending; at once when newly resolved; otherwise when the
    /// last send is strictly more than `resend_delay` before `ts_ns`.
    pub fn needs_sending(&self, ts_ns: i64, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let Some(last) = self.last_sent_at_ns else {
            // Never sent: a zero LastSentAt is before everything.
            return true;
        };
        if matches!(self.resolved_at_ns, Some(r) if r > last) {
            return true;
        }
        last.saturating_add(duration_ns(resend_delay)) < ts_ns
    }
}

/// The alert state of one alerting rule.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    name: String,
    hold_ns: i64,
    keep_firing_for_ns: i64,
    /// Label templates, as written.
    labels: BTreeMap<String, String>,
    /// Annotation templates, as written.
    annotations: BTreeMap<String, String>,
    /// Until restored, no ALERTS/ALERTS_FOR_STATE samples are produced.
    restored: bool,
    active: BTreeMap<Labels, Alert>,
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Go's `timestamp.FromTime`: milliseconds, rounded down.
fn ns_to_ms(ns: i64) -> i64 {
    ns.div_euclid(NS_PER_MS)
}

impl AlertingRule {
    /// A rule with no alerts. `restored` is false for the rules of the first load (they wait
    /// for `restore_for_state`) and true for rules from later reloads, as in 2.42.
    pub fn new(
        name: impl Into<String>,
        hold: Duration,
        keep_firing_for: Duration,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        restored: bool,
    ) -> Self {
        AlertingRule {
            name: name.into(),
            hold_ns: duration_ns(hold),
            keep_firing_for_ns: duration_ns(keep_firing_for),
            labels,
            annotations,
            restored,
            active: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn restored(&self) -> bool {
        self.restored
    }

    pub fn set_restored(&mut self, restored: bool) {
        self.restored = restored;
    }

    /// The highest state over the rule's alerts (`inactive` when there are none).
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Every alert instance, resolved ones included, in label order.
    pub fn current_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// The pending and firing alerts (`ActiveAlerts`: not resolved).
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.resolved_at_ns.is_none())
    }

    /// One evaluation at `ts_ns` over the expression's result. Returns the ALERTS and
    /// ALERTS_FOR_STATE samples (empty until restored), or an error: a label-set collision
    /// leaves the state untouched, an exceeded `limit` (> 0) clears it.
    pub fn eval(
        &mut self,
        ts_ns: i64,
        result: &[VectorSample],
        limit: i64,
        expander: &dyn Expander,
    ) -> Result<Vec<VectorSample>> {
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for s in result {
            let mut pairs: Vec<Label> = s
                .labels
                .iter()
                .filter(|l| l.name != METRIC_NAME)
                .cloned()
                .collect();
            for (k, text) in &self.labels {
                let v = expander.expand(&self.name, text, &s.labels, s.v, ts_ns);
                set_label(&mut pairs, k, &v);
            }
            set_label(&mut pairs, "alertname", &self.name);
            let mut annotations = BTreeMap::new();
            for (k, text) in &self.annotations {
                let v = expander.expand(&self.name, text, &s.labels, s.v, ts_ns);
                annotations.insert(k.clone(), v);
            }
            let labels = Labels::new(pairs);
            if fresh.contains_key(&labels) {
                return Err(AlertingError::DuplicateLabelset);
            }
            fresh.insert(
                labels.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value: s.v,
                    active_at_ns: ts_ns,
                    fired_at_ns: None,
                    resolved_at_ns: None,
                    last_sent_at_ns: None,
                    valid_until_ns: None,
                    keep_firing_since_ns: None,
                },
            );
        }
        let in_result: BTreeSet<Labels> = fresh.keys().cloned().collect();
        for (k, a) in fresh {
            match self.active.get_mut(&k) {
                // An ongoing alert keeps its times; only its value and annotations change.
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                // New, or resolved and back: a new pending alert.
                _ => {
                    self.active.insert(k, a);
                }
            }
        }

        let retention = duration_ns(RESOLVED_RETENTION);
        let mut out = Vec::new();
        let mut remove = Vec::new();
        let mut pending_or_firing = 0usize;
        for (k, a) in self.active.iter_mut() {
            if in_result.contains(k) {
                a.keep_firing_since_ns = None;
            } else {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ns > 0 {
                    let since = *a.keep_firing_since_ns.get_or_insert(ts_ns);
                    keep_firing = ts_ns.saturating_sub(since) < self.keep_firing_for_ns;
                }
                // A pending alert that vanished never fired: nothing to resolve.
                let expired =
                    matches!(a.resolved_at_ns, Some(r) if ts_ns.saturating_sub(r) > retention);
                if a.state == AlertState::Pending || expired {
                    remove.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ns = Some(ts_ns);
                }
                if !keep_firing {
                    continue;
                }
            }
            pending_or_firing += 1;
            if a.state == AlertState::Pending
                && ts_ns.saturating_sub(a.active_at_ns) >= self.hold_ns
            {
                a.state = AlertState::Firing;
                a.fired_at_ns = Some(ts_ns);
            }
            if self.restored {
                out.push(VectorSample {
                    labels: alerts_labels(&self.labels, &self.name, a),
                    t: ns_to_ms(ts_ns),
                    v: 1.0,
                });
                out.push(VectorSample {
                    labels: for_state_labels_of(&self.labels, &self.name, a),
                    t: ns_to_ms(ts_ns),
                    v: a.active_at_ns.div_euclid(NS_PER_S) as f64,
                });
            }
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && pending_or_firing as u64 > limit as u64 {
            self.active.clear();
            return Err(AlertingError::LimitExceeded {
                limit,
                alerts: pending_or_firing,
            });
        }
        Ok(out)
    }

    /// `sendAlerts`: the alerts due at `ts_ns` (see [`Alert::needs_sending`]), stamped with
    /// `last_sent_at = ts` and `valid_until = ts + 4*max(resend_delay, interval)`, which the
    /// notifier turns into `endsAt` for unresolved alerts.
    pub fn alerts_to_send(
        &mut self,
        ts_ns: i64,
        resend_delay: Duration,
        interval: Duration,
    ) -> Vec<Alert> {
        let delta = duration_ns(resend_delay.max(interval));
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts_ns, resend_delay) {
                a.last_sent_at_ns = Some(ts_ns);
                a.valid_until_ns = Some(ts_ns.saturating_add(delta.saturating_mul(4)));
                out.push(a.clone());
            }
        }
        out
    }

    /// The ALERTS_FOR_STATE label set of `alert`: what `restore_for_state` looks up.
    pub fn for_state_labels(&self, alert: &Alert) -> Labels {
        for_state_labels_of(&self.labels, &self.name, alert)
    }

    /// `RestoreForState` for this rule at `now_ns`. `lookup` gets an alert's
    /// ALERTS_FOR_STATE label set and returns the last float sample `(t_ms, value)` of the
    /// series with exactly those labels in `[now - outage tolerance, now]`. Rules whose `for`
    /// is below `grace` are not restored (they wait their full `for`). Marks the rule
    /// restored either way.
    pub fn restore_for_state(
        &mut self,
        now_ns: i64,
        grace: Duration,
        mut lookup: impl FnMut(&Labels) -> Option<(i64, f64)>,
    ) {
        let grace_ns = duration_ns(grace);
        if self.hold_ns < grace_ns {
            self.restored = true;
            return;
        }
        for a in self.active.values_mut() {
            let key = for_state_labels_of(&self.labels, &self.name, a);
            let Some((t_ms, v)) = lookup(&key) else {
                continue;
            };
            if is_stale_nan(v) {
                continue;
            }
            // Go: time.Unix(t/1000, 0) and time.Unix(int64(v), 0), both truncating.
            let down_at = (t_ms / 1000).saturating_mul(NS_PER_S);
            let mut active_at = (v as i64).saturating_mul(NS_PER_S);
            let remaining = self
                .hold_ns
                .saturating_sub(down_at.saturating_sub(active_at));
            if remaining <= 0 {
                // It was firing when the old instance went down: it fires at the next eval.
            } else if remaining < grace_ns {
                // Fire no sooner than one grace period from now.
                active_at = now_ns.saturating_add(grace_ns).saturating_sub(self.hold_ns);
            } else {
                // Shift by the downtime: the alert still waits out the rest of its `for`.
                active_at = active_at.saturating_add(now_ns.saturating_sub(down_at));
            }
            a.active_at_ns = active_at;
        }
        self.restored = true;
    }
}

/// The raw rule labels (template text), overlaid by the alert's labels, then `name` and
/// `alertname`: the base of both ALERTS series.
fn series_base(
    rule_labels: &BTreeMap<String, String>,
    name: &str,
    metric: &str,
    a: &Alert,
) -> Vec<Label> {
    let mut pairs: Vec<Label> = Vec::new();
    for (k, v) in rule_labels {
        set_label(&mut pairs, k, v);
    }
    for l in a.labels.iter() {
        set_label(&mut pairs, &l.name, &l.value);
    }
    set_label(&mut pairs, METRIC_NAME, metric);
    set_label(&mut pairs, "alertname", name);
    pairs
}

fn alerts_labels(rule_labels: &BTreeMap<String, String>, name: &str, a: &Alert) -> Labels {
    let mut pairs = series_base(rule_labels, name, "ALERTS", a);
    set_label(&mut pairs, "alertstate", a.state.as_str());
    Labels::new(pairs)
}

fn for_state_labels_of(rule_labels: &BTreeMap<String, String>, name: &str, a: &Alert) -> Labels {
    Labels::new(series_base(rule_labels, name, "ALERTS_FOR_STATE", a))
}

#[cfg(test)]
#[path = "alerting_tests.rs"]
mod tests;
