//! The RuleEvaluator role in a node: a rule file with a recording rule and an alerting rule
//! whose annotation is a template. The recorded series is queryable through the node, the
//! alert fires with its annotation expanded, and `/api/v1/rules` and `/api/v1/alerts` answer
//! in Prometheus's shapes.

use std::time::Duration;

use serde_json::Value;
use strata_testing::{http_client, wait_until, TestNode};

async fn query(base: &str, expr: &str) -> Value {
    http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[actix_rt::test]
async fn recording_and_alerting_rules_are_evaluated_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g1\n  interval: 1s\n  rules:\n  - record: strata:answer\n    expr: vector(42)\n    labels: {source: rule}\n  - alert: AnswerIsBig\n    expr: strata:answer > 40\n    labels: {severity: page}\n    annotations:\n      summary: 'the answer is {{ $value }} from {{ $labels.source }}'\n      humanized: '{{ 1234567 | humanize }}'\n",
    )
    .unwrap();
    let node = TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .yaml(&format!("rule_files: [{}]\n", rules.display()))
        .start()
        .await;
    wait_until("the recorded series", Duration::from_secs(30), || async {
        let v = query(&node.base, "strata:answer").await;
        v["data"]["result"][0]["value"][1] == "42"
    })
    .await;
    let v = query(&node.base, "strata:answer").await;
    assert_eq!(v["data"]["result"][0]["metric"]["source"], "rule", "{v}");

    wait_until("the alert to fire", Duration::from_secs(30), || async {
        let v = node.get_json("/api/v1/alerts").await;
        v["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
    })
    .await;
    let v = node.get_json("/api/v1/alerts").await;
    let alert = &v["data"]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "AnswerIsBig");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["source"], "rule");
    assert_eq!(
        alert["annotations"]["summary"],
        "the answer is 42 from rule"
    );
    assert_eq!(alert["annotations"]["humanized"], "1.235M");
    assert_eq!(alert["value"], "4.2e+01");

    let v = node.get_json("/api/v1/rules").await;
    let group = &v["data"]["groups"][0];
    assert_eq!(group["name"], "g1");
    assert_eq!(group["interval"], 1);
    let kinds: Vec<&str> = group["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["recording", "alerting"]);
    assert_eq!(group["rules"][0]["health"], "ok");
    assert_eq!(group["rules"][1]["state"], "firing");
    assert_eq!(
        group["rules"][1]["annotations"]["summary"],
        "the answer is {{ $value }} from {{ $labels.source }}",
        "rule annotations are listed as written"
    );
    let only_alerts = node.get_json("/api/v1/rules?type=alert").await;
    assert_eq!(
        only_alerts["data"]["groups"][0]["rules"]
            .as_array()
            .map(|a| a.len()),
        Some(1)
    );
    let bad = node.status("/api/v1/rules?type=nope").await;
    assert_eq!(bad, 400);
    // ALERTS is written like any series.
    let v = query(&node.base, "ALERTS{alertname=\"AnswerIsBig\"}").await;
    assert_eq!(
        v["data"]["result"][0]["metric"]["alertstate"], "firing",
        "{v}"
    );
    node.handle.stop().await;
}

#[actix_rt::test]
async fn a_reload_with_bad_rules_keeps_the_old_ones_and_a_good_one_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    let v1 = "groups:\n- name: g1\n  interval: 1s\n  rules:\n  - record: strata:one\n    expr: vector(1)\n";
    std::fs::write(&rules, v1).unwrap();
    let node = TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .yaml(&format!("rule_files: [{}]\n", rules.display()))
        .config_file()
        .start()
        .await;
    wait_until("strata:one", Duration::from_secs(30), || async {
        query(&node.base, "strata:one").await["data"]["result"][0]["value"][1] == "1"
    })
    .await;
    let reload = || async {
        http_client()
            .post(format!("{}/-/reload", node.base))
            .send()
            .await
            .unwrap()
    };

    // A broken file: the reload fails and says why, the old rules keep running.
    std::fs::write(
        &rules,
        "groups:\n- name: g1\n  rules:\n  - record: strata:two\n    expr: sum(\n",
    )
    .unwrap();
    let resp = reload().await;
    assert_eq!(resp.status().as_u16(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains("could not parse expression"), "{text}");
    let info = node.get_json("/api/v1/status/runtimeinfo").await;
    assert_eq!(info["data"]["reloadConfigSuccess"], false, "{info}");
    let v = node.get_json("/api/v1/rules").await;
    assert_eq!(
        v["data"]["groups"][0]["rules"][0]["name"], "strata:one",
        "{v}"
    );

    // A good file: the new group replaces the old, whose series goes stale.
    std::fs::write(
        &rules,
        "groups:\n- name: g2\n  interval: 1s\n  rules:\n  - record: strata:two\n    expr: vector(2)\n",
    )
    .unwrap();
    assert_eq!(reload().await.status().as_u16(), 200);
    wait_until("strata:two", Duration::from_secs(30), || async {
        query(&node.base, "strata:two").await["data"]["result"][0]["value"][1] == "2"
    })
    .await;
    wait_until(
        "strata:one to go stale",
        Duration::from_secs(30),
        || async {
            query(&node.base, "strata:one").await["data"]["result"]
                .as_array()
                .is_some_and(|a| a.is_empty())
        },
    )
    .await;
    let v = node.get_json("/api/v1/rules").await;
    let names: Vec<&str> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["g2"]);
    let info = node.get_json("/api/v1/status/runtimeinfo").await;
    assert_eq!(info["data"]["reloadConfigSuccess"], true, "{info}");
    node.handle.stop().await;
}

/// A restart with an alert firing, notifying a real Alertmanager 0.25: the restarted node's
/// first listing of the alert is `firing` with the old active time (restored, not pending for
/// another 30 s), and the receiver gets one firing notification in all, none resolved.
#[actix_rt::test]
async fn a_restarted_node_keeps_a_firing_alert_firing_with_its_old_active_time() {
    use crate::rules_alertmanager::{
        notifications, spawn_alertmanager, start_webhook, write_am_config,
    };
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hook_port, hook_server) = start_webhook().await;
    let am_port = strata_testing::free_port();
    let am_cfg = write_am_config(dir.path(), hook_port);
    let _am = spawn_alertmanager(dir.path(), &am_cfg, "am", am_port, None);
    strata_testing::wait_http_ok(
        &format!("http://127.0.0.1:{am_port}/-/ready"),
        Duration::from_secs(30),
    )
    .await;
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g1\n  interval: 1s\n  rules:\n  - alert: Always\n    expr: vector(1) > 0\n    for: 30s\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let yaml = format!(
        "rule_files: [{}]\nalerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n",
        rules.display()
    );
    let start = || {
        TestNode::builder()
            .id("ruler-restart")
            .roles(&["rule_evaluator", "query_planner"])
            .data_dir(&data)
            .yaml(&yaml)
            .start()
    };
    let node = start().await;
    let alert = |v: &Value| v["data"]["alerts"][0].clone();
    wait_until(
        "the firing notification",
        Duration::from_secs(60),
        || async { !notifications(&hooks, "Always").is_empty() },
    )
    .await;
    let before = alert(&node.get_json("/api/v1/alerts").await);
    assert_eq!(before["state"], "firing", "{before}");
    node.handle.stop().await;
    let stopped_at = strata_testing::now_ms();

    // The new instance restores the alert's active time from ALERTS_FOR_STATE instead of
    // waiting out a new 30 s `for`: its first listing of the alert is already firing.
    let node = start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let after = loop {
        let a = alert(&node.get_json("/api/v1/alerts").await);
        if !a.is_null() {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after["state"], "firing", "{after}");
    let secs = |v: &Value| {
        strata::time::parse_rfc3339_millis(v["activeAt"].as_str().unwrap()).unwrap() / 1000
    };
    assert_eq!(
        secs(&after),
        secs(&before),
        "before {before}, after {after}"
    );
    assert!(secs(&after) * 1000 < stopped_at);
    // Past the Alertmanager's group interval: still the one firing notification.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n = notifications(&hooks, "Always");
    assert_eq!(
        n.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec!["firing"]
    );
    node.handle.stop().await;
    hook_server.stop(true).await;
}
