//! Alerts from two RuleEvaluators to a real Alertmanager 0.25 cluster of two peers (Debian's
//! `prometheus-alertmanager`, gossiping on loopback) with a webhook receiver in the test. Both
//! nodes evaluate the group (`rule_replication: 2`) and both notify both Alertmanagers; the
//! Alertmanager cluster must still notify once per alert group: one firing notification, one
//! resolved. Stopping one evaluator after the firing notification changes nothing: the other
//! carries the alert to its resolution.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use serde_json::Value;
use strata_testing::{free_port, require_binary, wait_http_ok, wait_until, ChildGuard, TestNode};

/// Webhook bodies received, in order.
type Hooks = Arc<Mutex<Vec<Value>>>;

async fn start_webhook() -> (Hooks, u16, actix_web::dev::ServerHandle) {
    let hooks: Hooks = Arc::default();
    let state = web::Data::new(hooks.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).route(
            "/hook",
            web::post().to(|body: web::Bytes, hooks: web::Data<Hooks>| async move {
                if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
                    v["receivedAtMs"] = Value::from(strata_testing::now_ms());
                    hooks.lock().unwrap().push(v);
                }
                "ok"
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (hooks, port, handle)
}

/// Two Alertmanagers peered with each other; returns their guards and web ports. The group
/// interval is longer than the peer timeout, as in every real set-up (5m and 15s by default):
/// the second peer checks the notification log `peer timeout` after its flush, and must do so
/// before the first peer's next flush. With the group interval below the peer timeout, the
/// second peer can take a flush from just before an alert resolved, see the first peer's
/// "resolved" in the log when its wait ends, and send a stale "firing" (observed here with
/// Alertmanager 0.25 at 1 s / 2 s: an Alertmanager HA race, not the sender's doing).
async fn start_am_cluster(dir: &std::path::Path, hook_port: u16) -> Vec<(ChildGuard, u16)> {
    let bin = require_binary("prometheus-alertmanager");
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{hook_port}/hook\n    send_resolved: true\n"
        ),
    )
    .unwrap();
    let cluster_ports = [free_port(), free_port()];
    let mut out = Vec::new();
    for i in 0..2 {
        let web_port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join(format!("am{i}")).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg(format!(
                "--cluster.listen-address=127.0.0.1:{}",
                cluster_ports[i]
            ))
            .arg(format!("--cluster.peer=127.0.0.1:{}", cluster_ports[1 - i]))
            .arg("--cluster.peer-timeout=500ms")
            .arg("--cluster.gossip-interval=100ms")
            .arg("--cluster.pushpull-interval=1s")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        out.push((ChildGuard::new(child, "alertmanager"), web_port));
    }
    for (_, port) in &out {
        wait_http_ok(
            &format!("http://127.0.0.1:{port}/-/ready"),
            Duration::from_secs(30),
        )
        .await;
    }
    out
}

/// The (status, alertnames) of each webhook call for `alertname`.
fn notifications(hooks: &Hooks, alertname: &str) -> Vec<(String, Vec<Value>)> {
    hooks
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h["groupLabels"]["alertname"] == alertname)
        .map(|h| {
            (
                h["status"].as_str().unwrap_or("").to_string(),
                h["alerts"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn two_evaluators_and_an_alertmanager_pair_notify_once_firing_and_once_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hook_port, hook_server) = start_webhook().await;
    let ams = start_am_cluster(dir.path(), hook_port).await;
    // Fires in the first 20 s of every 40 s of wall time, then resolves.
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: ha\n  interval: 1s\n  rules:\n  - alert: HalfTheTime\n    expr: vector(time() % 40 < bool 20) == 1\n    labels: {severity: page}\n    annotations: {summary: 'value {{ $value }}'}\n",
    )
    .unwrap();
    let targets: Vec<String> = ams
        .iter()
        .map(|(_, p)| format!("'127.0.0.1:{p}'"))
        .collect();
    let yaml = format!(
        "global:\n  external_labels: {{cluster: ha}}\nrule_files: [{}]\n\
         alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: [{}]\n",
        rules.display(),
        targets.join(", ")
    );
    // Start in the resolved half, so the test sees a whole firing period.
    wait_until(
        "the resolved half of the 40 s cycle",
        Duration::from_secs(45),
        || async { strata_testing::now_ms() / 1000 % 40 >= 22 },
    )
    .await;
    let a = TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .yaml(&yaml)
        .start()
        .await;
    let b = TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .yaml(&yaml)
        .join(a.gossip_addr())
        .start()
        .await;

    wait_until("a firing notification", Duration::from_secs(60), || async {
        notifications(&hooks, "HalfTheTime")
            .iter()
            .any(|(s, _)| s == "firing")
    })
    .await;
    let firing = notifications(&hooks, "HalfTheTime");
    let alert = &firing[0].1[0];
    assert_eq!(alert["labels"]["alertname"], "HalfTheTime");
    assert_eq!(alert["labels"]["cluster"], "ha", "external labels added");
    assert!(alert["labels"].get("replica").is_none(), "{alert}");
    assert_eq!(alert["annotations"]["summary"], "value 1");
    assert!(alert["generatorURL"]
        .as_str()
        .is_some_and(|u| u.contains("/graph?g0.expr=")));

    // Both nodes evaluate the group; either lists it, and the alert, once for the cluster.
    for node in [&a, &b] {
        let v = node.get_json("/api/v1/rules").await;
        let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
        assert_eq!(groups.len(), 1, "{v}");
        assert_eq!(groups[0]["name"], "ha");
        let v = node.get_json("/api/v1/alerts").await;
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        assert_eq!(alerts.len(), 1, "{v}");
    }

    // One evaluator goes away; the other carries the alert to its resolution.
    a.handle.stop().await;
    wait_until(
        "the resolved notification",
        Duration::from_secs(60),
        || async {
            notifications(&hooks, "HalfTheTime")
                .iter()
                .any(|(s, _)| s == "resolved")
        },
    )
    .await;
    // Watch a few more seconds (the second Alertmanager's peer timeout is 2 s) for duplicates.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let n = notifications(&hooks, "HalfTheTime");
        let firing = n.iter().filter(|(s, _)| s == "firing").count();
        let resolved = n.iter().filter(|(s, _)| s == "resolved").count();
        if (firing, resolved) != (1, 1) {
            let m = b.metrics().await;
            let notes: Vec<&str> = m
                .lines()
                .filter(|l| l.starts_with("strata_notifications_"))
                .collect();
            panic!(
                "notifications {:?}; evaluator b's notifier: {notes:#?}",
                n.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>()
            );
        }
        // Sampling the invariant over a fixed window is the test, not a wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = b.get_json("/api/v1/alertmanagers").await;
    assert_eq!(
        v["data"]["activeAlertmanagers"].as_array().map(|a| a.len()),
        Some(2),
        "{v}"
    );
    b.handle.stop().await;
    hook_server.stop(true).await;
    drop(ams);
}
