#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::rules::alerting::AlertState;
use crate::rules::notifier::test_support::{relabel, relabel_configs};

fn ms(s: &str) -> i64 {
    crate::time::parse_rfc3339_millis(s).unwrap()
}

fn rule_alert(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
    // 02:10:59.151810036Z, as a slotted evaluation time carries nanoseconds.
    let fired = ms("2026-12-07T02:10:59.151Z") * 1_000_000 + 810_036;
    Alert {
        state: AlertState::Firing,
        labels: Labels::from_pairs(labels.iter().copied()),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value: 1.0,
        active_at_ns: fired,
        fired_at_ns: Some(fired),
        resolved_at_ns: None,
        last_sent_at_ns: Some(fired),
        valid_until_ns: Some(fired + 240 * 1_000_000_000),
        keep_firing_since_ns: None,
    }
}

#[test]
fn generator_url_uses_go_query_escape() {
    assert_eq!(
        generator_url("http://vm:19090", "up == 1"),
        "http://vm:19090/graph?g0.expr=up+%3D%3D+1&g0.tab=1"
    );
    assert_eq!(
        go_query_escape(r#"rate(x{a="b/c"}[5m]) > 0.5~ é"#),
        "rate%28x%7Ba%3D%22b%2Fc%22%7D%5B5m%5D%29+%3E+0.5~+%C3%A9"
    );
    assert_eq!(generator_url("", "up"), "/graph?g0.expr=up&g0.tab=1");
}

/// The body Prometheus 2.42 was observed to send (rules-alerting.md §4), byte for byte.
#[test]
fn golden_body_matches_prometheus() {
    let a = rule_alert(
        &[
            ("alertname", "AlwaysFiring"),
            ("instance", "vm:19090"),
            ("job", "self"),
        ],
        &[("summary", "vm:19090 <up> & running")],
    );
    let out = from_rule_alert(&a, &generator_url("http://vm:19090", "up == 1"));
    let pipeline = Pipeline::new(
        Labels::from_pairs([("cluster", "c1"), ("replica", "r1")]),
        "replica",
        relabel,
    );
    let sent = pipeline.apply(vec![out]);
    let body = String::from_utf8(encode_body(&sent).unwrap()).unwrap();
    let golden = concat!(
        r#"[{"annotations":{"summary":"vm:19090 \u003cup\u003e \u0026 running"},"#,
        r#""endsAt":"2026-12-07T02:14:59.151Z","startsAt":"2026-12-07T02:10:59.151Z","#,
        r#""generatorURL":"http://vm:19090/graph?g0.expr=up+%3D%3D+1\u0026g0.tab=1","#,
        r#""labels":{"alertname":"AlwaysFiring","cluster":"c1","instance":"vm:19090","job":"self"}}]"#
    );
    assert_eq!(body, golden);
}

#[test]
fn resolved_alerts_end_at_resolution_and_empty_annotations_are_an_object() {
    let mut a = rule_alert(&[("alertname", "A")], &[]);
    a.state = AlertState::Inactive;
    a.resolved_at_ns = Some(ms("2026-12-07T02:12:00.999Z") * 1_000_000 + 999_999);
    let out = from_rule_alert(&a, "/graph?g0.expr=up&g0.tab=1");
    assert_eq!(out.ends_at_ms, Some(ms("2026-12-07T02:12:00.999Z")));
    let body = String::from_utf8(encode_body(&[out]).unwrap()).unwrap();
    assert!(
        body.starts_with(r#"[{"annotations":{},"endsAt":"2026-12-07T02:12:00.999Z""#),
        "{body}"
    );
    let mut never = from_rule_alert(&a, "");
    never.starts_at_ms = None;
    let body = String::from_utf8(encode_body(&[never]).unwrap()).unwrap();
    assert!(
        body.contains(r#""startsAt":"0001-01-01T00:00:00.000Z""#),
        "{body}"
    );
    assert_eq!(encode_body(&[]).unwrap(), b"[]");
}

#[test]
fn external_labels_only_fill_missing_names() {
    let a = OutgoingAlert {
        labels: Labels::from_pairs([("alertname", "A"), ("cluster", "mine")]),
        annotations: BTreeMap::new(),
        starts_at_ms: Some(0),
        ends_at_ms: Some(1),
        generator_url: String::new(),
    };
    let p = Pipeline::new(
        Labels::from_pairs([("cluster", "ext"), ("region", "eu")]),
        "",
        relabel,
    );
    let out = p.apply(vec![a]);
    assert_eq!(out[0].labels.get("cluster"), Some("mine"));
    assert_eq!(out[0].labels.get("region"), Some("eu"));
}

#[test]
fn relabel_drops_alerts_and_the_replica_label_always_goes() {
    let mk = |name: &str, replica: Option<&str>| {
        let mut l = vec![("alertname", name.to_string())];
        if let Some(r) = replica {
            l.push(("replica", r.to_string()));
        }
        OutgoingAlert {
            labels: Labels::from_pairs(l),
            annotations: BTreeMap::new(),
            starts_at_ms: Some(0),
            ends_at_ms: Some(1),
            generator_url: String::new(),
        }
    };
    let mut p = Pipeline::new(
        Labels::from_pairs([("replica", "ext-r")]),
        "replica",
        relabel,
    );
    p.alert_relabel_configs = relabel_configs(
        "- {source_labels: [alertname], regex: Silenced, action: drop}\n\
         - {source_labels: [replica], target_label: seen_replica}\n",
    );
    let out = p.apply(vec![
        mk("Silenced", None),
        mk("Own", Some("r2")),
        mk("Ext", None),
    ]);
    let names: Vec<&str> = out
        .iter()
        .map(|a| a.labels.get("alertname").unwrap())
        .collect();
    assert_eq!(names, ["Own", "Ext"]);
    // Relabeling saw the replica label (its own and the external one); the wire does not.
    assert_eq!(out[0].labels.get("seen_replica"), Some("r2"));
    assert_eq!(out[1].labels.get("seen_replica"), Some("ext-r"));
    assert!(out.iter().all(|a| a.labels.get("replica").is_none()));
}

#[test]
fn an_alert_relabeled_to_no_labels_is_not_sent() {
    let mut p = Pipeline::new(Labels::empty(), "replica", relabel);
    p.alert_relabel_configs = relabel_configs("- {regex: '.*', action: labeldrop}\n");
    let a = OutgoingAlert {
        labels: Labels::from_pairs([("alertname", "A")]),
        annotations: BTreeMap::new(),
        starts_at_ms: None,
        ends_at_ms: None,
        generator_url: String::new(),
    };
    assert!(p.apply(vec![a]).is_empty());
}
