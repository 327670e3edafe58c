#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

/// `{{ $labels.<l> }}` and `{{ $value }}` only; any other text is literal.
struct Simple;

impl Expander for Simple {
    fn expand(&self, _alert: &str, text: &str, labels: &Labels, value: f64, _ts: i64) -> String {
        let mut out = text.replace("{{ $value }}", &value.to_string());
        while let Some(i) = out.find("{{ $labels.") {
            let Some(j) = out[i..].find(" }}") else { break };
            let name = out[i + 11..i + j].to_string();
            out = format!(
                "{}{}{}",
                &out[..i],
                labels.get(&name).unwrap_or(""),
                &out[i + j + 3..]
            );
        }
        out
    }
}

const S: i64 = 1_000_000_000;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample(pairs: &[(&str, &str)], v: f64) -> VectorSample {
    VectorSample {
        labels: Labels::from_pairs(pairs.iter().copied()),
        t: 0,
        v,
    }
}

fn rule(hold_s: u64, keep_s: u64) -> AlertingRule {
    AlertingRule::new(
        "A",
        Duration::from_secs(hold_s),
        Duration::from_secs(keep_s),
        map(&[("severity", "page"), ("team", "{{ $labels.team }}")]),
        map(&[("summary", "{{ $labels.instance }} is {{ $value }}")]),
        true,
    )
}

fn only(r: &AlertingRule) -> Alert {
    let all: Vec<&Alert> = r.current_alerts().collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

#[test]
fn labels_and_annotations() {
    let mut r = rule(0, 0);
    let input = [sample(
        &[("__name__", "up"), ("instance", "i1"), ("job", "j")],
        0.5,
    )];
    let out = r.eval(10 * S, &input, 0, &Simple).unwrap();
    let a = only(&r);
    // __name__ dropped; `team` expands to "" so it is deleted; alertname added.
    assert_eq!(
        a.labels,
        Labels::from_pairs([
            ("alertname", "A"),
            ("instance", "i1"),
            ("job", "j"),
            ("severity", "page")
        ])
    );
    assert_eq!(a.annotations["summary"], "i1 is 0.5");
    // for: 0 fires in the same evaluation.
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.fired_at_ns, Some(10 * S));
    // ALERTS keeps the raw template of the label that expanded to "" (2.42's quirk).
    assert_eq!(
        out[0].labels,
        Labels::from_pairs([
            ("__name__", "ALERTS"),
            ("alertname", "A"),
            ("alertstate", "firing"),
            ("instance", "i1"),
            ("job", "j"),
            ("severity", "page"),
            ("team", "{{ $labels.team }}"),
        ])
    );
    assert_eq!((out[0].t, out[0].v), (10_000, 1.0));
    assert_eq!(out[1].labels.get("__name__"), Some("ALERTS_FOR_STATE"));
    assert_eq!(out[1].labels.get("alertstate"), None);
    assert_eq!(out[1].v, 10.0);
}

#[test]
fn pending_then_firing_then_resolved_then_deleted() {
    let mut r = rule(60, 0);
    let input = [sample(&[("instance", "i")], 1.0)];
    r.eval(0, &input, 0, &Simple).unwrap();
    assert_eq!(only(&r).state, AlertState::Pending);
    r.eval(59 * S, &input, 0, &Simple).unwrap();
    assert_eq!(only(&r).state, AlertState::Pending);
    let out = r.eval(60 * S, &input, 0, &Simple).unwrap();
    let a = only(&r);
    assert_eq!(
        (a.state, a.active_at_ns, a.fired_at_ns),
        (AlertState::Firing, 0, Some(60 * S))
    );
    assert_eq!(out[0].labels.get("alertstate"), Some("firing"));

    // Absent: resolved and kept, with no series.
    let out = r.eval(70 * S, &[], 0, &Simple).unwrap();
    assert!(out.is_empty());
    let a = only(&r);
    assert_eq!(
        (a.state, a.resolved_at_ns),
        (AlertState::Inactive, Some(70 * S))
    );
    assert_eq!(r.active_alerts().count(), 0);
    assert_eq!(r.state(), AlertState::Inactive);
    // Kept while ts - resolvedAt <= 15m, deleted after.
    r.eval(70 * S + 15 * 60 * S, &[], 0, &Simple).unwrap();
    assert_eq!(r.current_alerts().count(), 1);
    r.eval(71 * S + 15 * 60 * S, &[], 0, &Simple).unwrap();
    assert_eq!(r.current_alerts().count(), 0);
}

#[test]
fn vanished_pending_alert_is_deleted_and_resolved_alert_restarts_pending() {
    let mut r = rule(60, 0);
    let input = [sample(&[("instance", "i")], 1.0)];
    r.eval(0, &input, 0, &Simple).unwrap();
    r.eval(10 * S, &[], 0, &Simple).unwrap();
    assert_eq!(r.current_alerts().count(), 0);

    r.eval(20 * S, &input, 0, &Simple).unwrap();
    r.eval(80 * S, &input, 0, &Simple).unwrap();
    r.eval(90 * S, &[], 0, &Simple).unwrap();
    assert_eq!(only(&r).state, AlertState::Inactive);
    r.eval(100 * S, &input, 0, &Simple).unwrap();
    let a = only(&r);
    assert_eq!(
        (a.state, a.active_at_ns, a.resolved_at_ns),
        (AlertState::Pending, 100 * S, None)
    );
}

#[test]
fn ongoing_alert_updates_value_and_annotations_only() {
    let mut r = rule(0, 0);
    r.eval(0, &[sample(&[("instance", "i")], 1.0)], 0, &Simple)
        .unwrap();
    r.eval(10 * S, &[sample(&[("instance", "i")], 2.0)], 0, &Simple)
        .unwrap();
    let a = only(&r);
    assert_eq!((a.value, a.active_at_ns, a.fired_at_ns), (2.0, 0, Some(0)));
    assert_eq!(a.annotations["summary"], "i is 2");
}

#[test]
fn keep_firing_for() {
    let mut r = rule(0, 30);
    let input = [sample(&[("instance", "i")], 1.0)];
    r.eval(0, &input, 0, &Simple).unwrap();
    let out = r.eval(10 * S, &[], 0, &Simple).unwrap();
    let a = only(&r);
    assert_eq!(
        (a.state, a.keep_firing_since_ns),
        (AlertState::Firing, Some(10 * S))
    );
    assert_eq!(out.len(), 2, "a kept alert still writes ALERTS");
    r.eval(39 * S, &[], 0, &Simple).unwrap();
    assert_eq!(only(&r).state, AlertState::Firing);
    r.eval(40 * S, &[], 0, &Simple).unwrap();
    let a = only(&r);
    assert_eq!(
        (a.state, a.resolved_at_ns),
        (AlertState::Inactive, Some(40 * S))
    );

    // Reappearing resets keepFiringSince.
    let mut r = rule(0, 30);
    r.eval(0, &input, 0, &Simple).unwrap();
    r.eval(10 * S, &[], 0, &Simple).unwrap();
    r.eval(20 * S, &input, 0, &Simple).unwrap();
    assert_eq!(only(&r).keep_firing_since_ns, None);
}

#[test]
fn duplicate_labelset_leaves_state_untouched() {
    let mut r = AlertingRule::new(
        "A",
        Duration::ZERO,
        Duration::ZERO,
        BTreeMap::new(),
        BTreeMap::new(),
        true,
    );
    r.eval(
        0,
        &[sample(&[("__name__", "x"), ("i", "1")], 1.0)],
        0,
        &Simple,
    )
    .unwrap();
    let before = only(&r);
    let err = r
        .eval(
            S,
            &[
                sample(&[("__name__", "a"), ("i", "1")], 1.0),
                sample(&[("__name__", "b"), ("i", "1")], 1.0),
            ],
            0,
            &Simple,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
    assert_eq!(only(&r), before);
}

#[test]
fn limit_clears_state() {
    let mut r = rule(0, 0);
    let input = [
        sample(&[("instance", "1")], 1.0),
        sample(&[("instance", "2")], 1.0),
    ];
    assert!(r.eval(0, &input, 2, &Simple).is_ok());
    let err = r.eval(S, &input, 1, &Simple).unwrap_err();
    assert_eq!(err.to_string(), "exceeded limit of 1 with 2 alerts");
    assert_eq!(r.current_alerts().count(), 0);
}

#[test]
fn no_series_until_restored() {
    let mut r = rule(0, 0);
    r.set_restored(false);
    let out = r
        .eval(0, &[sample(&[("instance", "i")], 1.0)], 0, &Simple)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(only(&r).state, AlertState::Firing);
}

#[test]
fn sending_and_resend_delay() {
    let mut r = rule(60, 0);
    let input = [sample(&[("instance", "i")], 1.0)];
    let minute = Duration::from_secs(60);
    let interval = Duration::from_secs(5);
    r.eval(0, &input, 0, &Simple).unwrap();
    assert!(
        r.alerts_to_send(0, minute, interval).is_empty(),
        "pending is never sent"
    );
    r.eval(60 * S, &input, 0, &Simple).unwrap();
    let sent = r.alerts_to_send(60 * S, minute, interval);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].valid_until_ns, Some(60 * S + 240 * S));
    // Exactly resend_delay later is not "before": the next send is one interval later.
    assert!(r.alerts_to_send(120 * S, minute, interval).is_empty());
    assert_eq!(r.alerts_to_send(125 * S, minute, interval).len(), 1);
    // A resolve is sent at once.
    r.eval(130 * S, &[], 0, &Simple).unwrap();
    let sent = r.alerts_to_send(130 * S, minute, interval);
    assert_eq!((sent.len(), sent[0].resolved_at_ns), (1, Some(130 * S)));
    assert!(r.alerts_to_send(135 * S, minute, interval).is_empty());
}

fn restore_case(hold_s: u64, down_at_s: i64, active_at_s: f64, now_s: i64) -> i64 {
    let mut r = rule(hold_s, 0);
    r.set_restored(false);
    r.eval(now_s * S, &[sample(&[("instance", "i")], 1.0)], 0, &Simple)
        .unwrap();
    let key = r.for_state_labels(&only(&r));
    let mut asked = None;
    r.restore_for_state(now_s * S, Duration::from_secs(600), |l| {
        asked = Some(l.clone());
        Some((down_at_s * 1000 + 999, active_at_s))
    });
    assert!(r.restored());
    if let Some(l) = asked {
        assert_eq!(l, key);
        assert_eq!(l.get("__name__"), Some("ALERTS_FOR_STATE"));
    }
    only(&r).active_at_ns
}

#[test]
fn restore_for_state() {
    // Firing when it went down: ActiveAt = the stored value.
    assert_eq!(restore_case(3600, 5000, 1000.0, 6000), 1000 * S);
    // Remaining 20m >= grace: shifted by the downtime (6000 - 5000).
    assert_eq!(restore_case(3600, 5000, 2600.0, 6000), 3600 * S);
    // Remaining 5m < grace 10m: fires one grace period after now.
    assert_eq!(
        restore_case(3600, 5000, 1700.0, 6000),
        (6000 + 600 - 3600) * S
    );
    // `for` below the grace period: not restored, keeps the fresh ActiveAt.
    assert_eq!(restore_case(300, 5000, 1000.0, 6000), 6000 * S);
}

#[test]
fn restore_skips_stale_and_missing() {
    let mut r = rule(3600, 0);
    r.eval(100 * S, &[sample(&[("instance", "i")], 1.0)], 0, &Simple)
        .unwrap();
    r.restore_for_state(200 * S, Duration::from_secs(600), |_| {
        Some((150_000, crate::storage::model::stale_nan()))
    });
    assert_eq!(only(&r).active_at_ns, 100 * S);
    r.restore_for_state(200 * S, Duration::from_secs(600), |_| None);
    assert_eq!(only(&r).active_at_ns, 100 * S);
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over any sequence of results: the state fields agree with each other, present
        /// series are pending or firing, vanished pending alerts are gone, and two series
        /// are written per pending or firing alert.
        #[test]
        fn state_machine_invariants(
            hold_s in prop::sample::select(vec![0u64, 30, 60]),
            keep_s in prop::sample::select(vec![0u64, 30]),
            steps in proptest::collection::vec(
                (1i64..400, proptest::collection::btree_set(0u8..4, 0..4)),
                1..40,
            ),
        ) {
            let mut r = AlertingRule::new(
                "A",
                Duration::from_secs(hold_s),
                Duration::from_secs(keep_s),
                BTreeMap::new(),
                BTreeMap::new(),
                true,
            );
            let mut ts = 0;
            for (dt, present) in steps {
                ts += dt * S;
                let input: Vec<VectorSample> = present
                    .iter()
                    .map(|i| sample(&[("i", &i.to_string())], 1.0))
                    .collect();
                let out = r.eval(ts, &input, 0, &Simple).unwrap();
                let mut live = 0;
                for a in r.current_alerts() {
                    let i = a.labels.get("i").unwrap().parse::<u8>().unwrap();
                    match a.state {
                        AlertState::Pending => {
                            prop_assert!(present.contains(&i));
                            prop_assert!(a.fired_at_ns.is_none() && a.resolved_at_ns.is_none());
                            prop_assert!(ts - a.active_at_ns < hold_s as i64 * S);
                            live += 1;
                        }
                        AlertState::Firing => {
                            let fired = a.fired_at_ns.unwrap();
                            prop_assert!(fired - a.active_at_ns >= hold_s as i64 * S);
                            prop_assert!(a.resolved_at_ns.is_none());
                            live += 1;
                        }
                        AlertState::Inactive => {
                            prop_assert!(!present.contains(&i));
                            let resolved = a.resolved_at_ns.unwrap();
                            prop_assert!(ts - resolved <= 15 * 60 * S);
                        }
                    }
                    if present.contains(&i) {
                        prop_assert!(a.state != AlertState::Inactive);
                        prop_assert!(a.keep_firing_since_ns.is_none());
                    }
                }
                prop_assert_eq!(out.len(), 2 * live);
            }
        }
    }
}
