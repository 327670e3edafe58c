//! Alertmanagers that fail, seen through a node: one address with nothing listening, one
//! server answering every request with 500, and one real Alertmanager 0.25 with a webhook
//! receiver. The alert still reaches the working Alertmanager and its receiver; the failing
//! ones are retried and counted per Alertmanager in `strata_notifications_*`; the node stays
//! up and answers. When an Alertmanager starts on the dead address, the next resend brings
//! it the firing alert (the ruler keeps sending while the alert fires).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use strata_testing::{free_port, metric_value, wait_http_ok, wait_until, TestNode};

use crate::rules_alertmanager::{
    notifications, spawn_alertmanager, start_webhook, write_am_config,
};

/// A server that answers every request with 500; returns the request count and its port.
async fn start_failing_server() -> (Arc<AtomicUsize>, u16, actix_web::dev::ServerHandle) {
    let hits = Arc::new(AtomicUsize::new(0));
    let state = web::Data::new(hits.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).default_service(web::to(
            |hits: web::Data<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                HttpResponse::InternalServerError().body("broken")
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (hits, port, handle)
}

fn counter(metrics: &str, name: &str, port: u16) -> f64 {
    let series = format!("{name}{{alertmanager=\"http://127.0.0.1:{port}/api/v2/alerts\"}}");
    metric_value(metrics, &series).unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_down_and_a_failing_alertmanager_are_retried_and_counted_while_alerts_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hook_port, hook_server) = start_webhook().await;
    let (failing_hits, failing_port, failing_server) = start_failing_server().await;
    let am_cfg = write_am_config(dir.path(), hook_port);
    let good_port = free_port();
    let _good = spawn_alertmanager(dir.path(), &am_cfg, "good", good_port, None);
    wait_http_ok(
        &format!("http://127.0.0.1:{good_port}/-/ready"),
        Duration::from_secs(30),
    )
    .await;
    let dead_port = free_port();

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: faults\n  interval: 1s\n  rules:\n  - alert: AlwaysOn\n    expr: vector(1)\n    labels: {severity: page}\n",
    )
    .unwrap();
    let yaml = format!(
        "rule_files: [{}]\nruler: {{resend_delay: 3s}}\n\
         alerting:\n  alertmanagers:\n  - timeout: 2s\n    static_configs:\n    - targets: ['127.0.0.1:{dead_port}', '127.0.0.1:{failing_port}', '127.0.0.1:{good_port}']\n",
        rules.display()
    );
    let node = TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .yaml(&yaml)
        .start()
        .await;

    wait_until(
        "the working Alertmanager's notification",
        Duration::from_secs(60),
        || async {
            notifications(&hooks, "AlwaysOn")
                .iter()
                .any(|(s, _)| s == "firing")
        },
    )
    .await;
    // Each send to the failing server is retried (Prometheus sends once); resends repeat it.
    wait_until(
        "retries and resends at the failing Alertmanager",
        Duration::from_secs(60),
        || async { failing_hits.load(Ordering::SeqCst) >= 4 },
    )
    .await;
    let m = node.metrics().await;
    for port in [dead_port, failing_port] {
        let errors = counter(&m, "strata_notifications_errors_total", port);
        let sent = counter(&m, "strata_notifications_sent_total", port);
        assert!(errors >= 2.0, "port {port}: {errors} errors\n{m}");
        assert!(
            sent >= errors,
            "port {port}: attempts counted as sent too\n{m}"
        );
    }
    assert_eq!(
        counter(&m, "strata_notifications_errors_total", good_port),
        0.0
    );
    assert!(counter(&m, "strata_notifications_sent_total", good_port) >= 1.0);
    // A batch that reached one Alertmanager is not dropped.
    assert_eq!(
        metric_value(&m, "strata_notifications_dropped_total"),
        Some(0.0),
        "{m}"
    );

    // The node is up and answers while its Alertmanagers fail.
    assert_eq!(node.status("/-/healthy").await, 200);
    let v = node.get_json("/api/v1/alerts").await;
    assert_eq!(v["data"]["alerts"][0]["state"], "firing", "{v}");
    let v = node.get_json("/api/v1/alertmanagers").await;
    let active = v["data"]["activeAlertmanagers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(active.len(), 3, "{v}");

    // An Alertmanager comes up on the dead address: the next resend brings it the alert.
    let late_cfg_dir = dir.path().join("late");
    std::fs::create_dir_all(&late_cfg_dir).unwrap();
    let late_cfg = write_am_config(&late_cfg_dir, hook_port);
    let _late = spawn_alertmanager(&late_cfg_dir, &late_cfg, "late", dead_port, None);
    wait_until(
        "the late Alertmanager to hold the alert",
        Duration::from_secs(60),
        || async {
            let url = format!("http://127.0.0.1:{dead_port}/api/v2/alerts");
            let Ok(resp) = strata_testing::http_client().get(url).send().await else {
                return false;
            };
            let alerts: serde_json::Value = resp.json().await.unwrap_or_default();
            alerts
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == "AlwaysOn"))
        },
    )
    .await;
    let m = node.metrics().await;
    assert!(
        counter(&m, "strata_notifications_sent_total", dead_port)
            > counter(&m, "strata_notifications_errors_total", dead_port),
        "{m}"
    );
    node.handle.stop().await;
    failing_server.stop(true).await;
    hook_server.stop(true).await;
}
