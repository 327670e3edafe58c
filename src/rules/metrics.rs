//! The RuleEvaluator's metrics (`strata_rule_*`), Prometheus's `prometheus_rule_*` set under
//! Strata's prefix, per group key `file;name` (label `rule_group`, as Prometheus names it),
//! plus whether the last reload of the rule files succeeded. prometheus-client types
//! registered into the registry the caller passes in; counters get `_total` from the encoder.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub rule_group: String,
}

/// One evaluation of a group: its slot time, how long it took, its interval, how many rules
/// it has and how many failed, and how many slots were skipped before it.
#[derive(Clone, Copy, Debug)]
pub struct GroupEvaluation {
    pub eval_ns: i64,
    pub seconds: f64,
    pub interval_seconds: f64,
    pub rules: usize,
    pub failures: usize,
    pub missed: u64,
}

/// Handles to the rule metrics; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RuleMetrics {
    pub evaluations: Family<GroupLabels, Counter>,
    pub evaluation_failures: Family<GroupLabels, Counter>,
    pub iterations: Family<GroupLabels, Counter>,
    pub iterations_missed: Family<GroupLabels, Counter>,
    pub last_duration_seconds: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    pub last_evaluation_timestamp_seconds: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    pub interval_seconds: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    pub rules: Family<GroupLabels, Gauge>,
    pub last_reload_successful: Gauge,
}

impl RuleMetrics {
    /// Creates the metrics and registers them as `strata_rule_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = RuleMetrics::default();
        let sub = registry.sub_registry_with_prefix("strata_rule");
        sub.register(
            "evaluations",
            "Rule evaluations, per group",
            m.evaluations.clone(),
        );
        sub.register(
            "evaluation_failures",
            "Rule evaluations that failed (query error, duplicate label sets, limit), per group",
            m.evaluation_failures.clone(),
        );
        sub.register(
            "group_iterations",
            "Scheduled group evaluations, missed ones included",
            m.iterations.clone(),
        );
        sub.register(
            "group_iterations_missed",
            "Group evaluations missed because the previous one ran too long",
            m.iterations_missed.clone(),
        );
        sub.register(
            "group_last_duration_seconds",
            "How long the group's last evaluation took",
            m.last_duration_seconds.clone(),
        );
        sub.register(
            "group_last_evaluation_timestamp_seconds",
            "When the group was last evaluated (its slot time)",
            m.last_evaluation_timestamp_seconds.clone(),
        );
        sub.register(
            "group_interval_seconds",
            "The group's evaluation interval",
            m.interval_seconds.clone(),
        );
        sub.register("group_rules", "Rules in the group", m.rules.clone());
        sub.register(
            "files_last_reload_successful",
            "Whether the last load of the rule files succeeded (1) or kept the previous rules (0)",
            m.last_reload_successful.clone(),
        );
        m
    }

    /// Records one evaluation of `group`.
    pub fn observe_group(&self, group: &str, e: &GroupEvaluation) {
        let l = GroupLabels {
            rule_group: group.to_string(),
        };
        self.evaluations.get_or_create(&l).inc_by(e.rules as u64);
        self.evaluation_failures
            .get_or_create(&l)
            .inc_by(e.failures as u64);
        self.iterations.get_or_create(&l).inc_by(1 + e.missed);
        self.iterations_missed.get_or_create(&l).inc_by(e.missed);
        self.last_duration_seconds.get_or_create(&l).set(e.seconds);
        self.last_evaluation_timestamp_seconds
            .get_or_create(&l)
            .set(e.eval_ns as f64 / 1e9);
        self.interval_seconds
            .get_or_create(&l)
            .set(e.interval_seconds);
        self.rules.get_or_create(&l).set(e.rules as i64);
    }

    /// Drops a group's series (the group moved away or was removed).
    pub fn forget_group(&self, group: &str) {
        let l = GroupLabels {
            rule_group: group.to_string(),
        };
        self.evaluations.remove(&l);
        self.evaluation_failures.remove(&l);
        self.iterations.remove(&l);
        self.iterations_missed.remove(&l);
        self.last_duration_seconds.remove(&l);
        self.last_evaluation_timestamp_seconds.remove(&l);
        self.interval_seconds.remove(&l);
        self.rules.remove(&l);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_group_evaluation_shows_in_the_exposition() {
        let mut reg = Registry::default();
        let m = RuleMetrics::register(&mut reg);
        let e = GroupEvaluation {
            eval_ns: 2_000_000_000,
            seconds: 0.5,
            interval_seconds: 15.0,
            rules: 3,
            failures: 1,
            missed: 2,
        };
        m.observe_group("r.yml;g", &e);
        m.last_reload_successful.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        for line in [
            "strata_rule_evaluations_total{rule_group=\"r.yml;g\"} 3",
            "strata_rule_evaluation_failures_total{rule_group=\"r.yml;g\"} 1",
            "strata_rule_group_iterations_total{rule_group=\"r.yml;g\"} 3",
            "strata_rule_group_iterations_missed_total{rule_group=\"r.yml;g\"} 2",
            "strata_rule_group_last_evaluation_timestamp_seconds{rule_group=\"r.yml;g\"} 2.0",
            "strata_rule_files_last_reload_successful 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        m.forget_group("r.yml;g");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(!text.contains("rule_group=\"r.yml;g\""), "{text}");
    }
}
