//! The same rule file over the same data in Strata and in a real Prometheus 2.42: both scrape
//! one target whose values never change, both evaluate the rules every second. The recorded
//! series (labels and values), the alerts (labels, annotations with templates, state) and
//! `/api/v1/rules` apart from timings must be the same.

use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, Prometheus, TestNode};

const BODY: &str = "# TYPE rv_temp gauge\n\
rv_temp{room=\"a\",floor=\"1\"} 21.5\n\
rv_temp{room=\"b\",floor=\"1\"} 19.25\n\
rv_temp{room=\"c\",floor=\"2\"} 30\n\
# TYPE rv_requests_total counter\n\
rv_requests_total{code=\"200\"} 1234567\n\
rv_requests_total{code=\"500\"} 42\n";

const RULES: &str = r#"groups:
- name: records
  rules:
  - record: floor:rv_temp:avg
    expr: avg by (floor) (rv_temp)
  - record: rv_temp:fahrenheit
    expr: rv_temp * 9 / 5 + 32
    labels: {unit: F}
  - record: rv:rooms
    expr: count(rv_temp)
  - record: rv:scalar
    expr: scalar(count(rv_temp))
  - record: floor:rv_temp:avg:doubled
    expr: floor:rv_temp:avg * 2
- name: alerts
  rules:
  - alert: Hot
    expr: rv_temp > 25
    for: 3s
    labels: {severity: page, room: '{{ $labels.room }}-x'}
    annotations:
      summary: 'Room {{ $labels.room }} is {{ $value }} degrees'
      pretty: '{{ $value | printf "%.1f" }} / {{ 1234567 | humanize }} / {{ 0.25 | humanizePercentage }}'
      rooms: '{{ query "count(rv_temp)" | first | value }} rooms, {{ range query "rv_temp > 20" | sortByLabel "room" }}{{ .Labels.room }} {{ end }}'
      missing: '{{ $labels.nothing }}|{{ .Labels.floor | toUpper }}'
  - alert: Errors
    expr: rv_requests_total{code="500"} > 0
    labels: {team: api}
    annotations:
      description: 'errors: {{ $value | humanize1024 }}; {{ "abc" | title }}; {{ 90 | humanizeDuration }}'
  - alert: NeverFires
    expr: rv_temp > 100
"#;

async fn get(base: &str, path: &str) -> Value {
    http_client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A query's vector as sorted `(labels, value)`.
async fn vector(base: &str, expr: &str) -> Vec<(String, String)> {
    let v: Value = http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| (s["metric"].to_string(), s["value"][1].to_string()))
        .collect();
    out.sort();
    out
}

/// `/api/v1/alerts`' alerts without their times, sorted.
fn alerts_without_times(v: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = v["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            if let Some(o) = a.as_object_mut() {
                o.remove("activeAt");
            }
            a
        })
        .collect();
    out.sort_by_key(|a| a.to_string());
    out
}

/// `/api/v1/rules` without evaluation times (and the file path, which differs).
fn rules_without_times(v: &Value) -> Value {
    let mut v = v["data"].clone();
    if let Some(groups) = v["groups"].as_array_mut() {
        for g in groups {
            let o = g.as_object_mut().unwrap();
            for k in ["evaluationTime", "lastEvaluation", "file"] {
                o.remove(k);
            }
            for r in o.get_mut("rules").and_then(|r| r.as_array_mut()).unwrap() {
                let r = r.as_object_mut().unwrap();
                for k in ["evaluationTime", "lastEvaluation"] {
                    r.remove(k);
                }
                if let Some(alerts) = r.get_mut("alerts").and_then(|a| a.as_array_mut()) {
                    for a in alerts.iter_mut() {
                        a.as_object_mut().unwrap().remove("activeAt");
                    }
                    alerts.sort_by_key(|a| a.to_string());
                }
            }
        }
    }
    v
}

#[actix_rt::test]
async fn the_same_rules_over_the_same_data_answer_like_prometheus() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let scrape = format!(
        "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
        target.addr
    );
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n{scrape}",
        rules.display()
    ))
    .await;
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "rule_evaluator", "query_planner"])
        .yaml(&format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n{scrape}",
            rules.display()
        ))
        .start()
        .await;

    let firing = |v: &Value| {
        v["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|x| x["state"] == "firing").count() == 2)
    };
    for (name, base) in [("Prometheus", &prom.base), ("Strata", &node.base)] {
        wait_until(
            &format!("{name}'s Hot and Errors alerts to fire"),
            Duration::from_secs(60),
            || async { firing(&get(base, "/api/v1/alerts").await) },
        )
        .await;
    }

    for expr in [
        "floor:rv_temp:avg",
        "rv_temp:fahrenheit",
        "rv:rooms",
        "rv:scalar",
        "floor:rv_temp:avg:doubled",
        "ALERTS",
        "ALERTS_FOR_STATE > 0",
    ] {
        let (want, got) = (
            vector(&prom.base, expr).await,
            vector(&node.base, expr).await,
        );
        let got = if expr.starts_with("ALERTS_FOR_STATE") {
            // The value is the activeAt second, which differs between the two servers.
            got.into_iter().map(|(l, _)| (l, String::new())).collect()
        } else {
            got
        };
        let want = if expr.starts_with("ALERTS_FOR_STATE") {
            want.into_iter().map(|(l, _)| (l, String::new())).collect()
        } else {
            want
        };
        assert_eq!(got, want, "{expr}: Strata (left) vs Prometheus (right)");
    }
    let (want, got) = (
        alerts_without_times(&get(&prom.base, "/api/v1/alerts").await),
        alerts_without_times(&get(&node.base, "/api/v1/alerts").await),
    );
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap(),
        "/api/v1/alerts: Strata (left) vs Prometheus (right)"
    );
    // Strata's one addition to the shape: the nodes evaluating each group.
    let mut strata_rules = get(&node.base, "/api/v1/rules").await;
    let node_id = node.handle.cluster.node_id().to_string();
    for g in strata_rules["data"]["groups"].as_array_mut().unwrap() {
        let by = g.as_object_mut().unwrap().remove("evaluatedBy");
        assert_eq!(by, Some(serde_json::json!([node_id])), "{g}");
    }
    let (want, got) = (
        rules_without_times(&get(&prom.base, "/api/v1/rules").await),
        rules_without_times(&strata_rules),
    );
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap(),
        "/api/v1/rules: Strata (left) vs Prometheus (right)"
    );
    node.handle.stop().await;
}
