//! The node skeleton end to end: boot on port 0, readiness, the admin roles API with its token,
//! supervised restarts after injected faults, bad configs refused by the real binary, and the
//! README's run command.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata_testing::http::try_wait_http_ok;
use strata_testing::{free_port, http_client, metric_value, wait_until, TestNode, ADMIN_TOKEN};

const ALL_ROLES: [&str; 5] = [
    "scraper_shipper",
    "store_shard",
    "query_planner",
    "compactor",
    "rule_evaluator",
];

fn role_names(v: &Value) -> Vec<String> {
    v["data"]["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["role"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn role_entry<'a>(v: &'a Value, role: &str) -> Option<&'a Value> {
    v["data"]["roles"]
        .as_array()?
        .iter()
        .find(|r| r["role"] == role)
}

#[actix_rt::test]
async fn boots_on_port_zero_and_reports_ready_health_build_and_metrics() {
    let node = TestNode::builder().start().await;
    wait_until(
        "the node to become ready",
        Duration::from_secs(10),
        || async { node.status("/-/ready").await == 200 },
    )
    .await;
    assert_eq!(node.status("/-/healthy").await, 200);

    let build = node.get_json("/api/v1/status/buildinfo").await;
    assert_eq!(build["status"], "success");
    assert_eq!(build["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(build["data"]["revision"].is_string());

    let flags = node.get_json("/api/v1/status/flags").await;
    assert_eq!(flags["status"], "success");
    assert!(flags["data"].is_object());

    let metrics = node.metrics().await;
    assert!(
        metrics.contains("strata_build_info{"),
        "no build info in:\n{metrics}"
    );
    for role in ALL_ROLES {
        assert_eq!(
            metric_value(&metrics, &format!("strata_role_running{{role=\"{role}\"}}")),
            Some(1.0),
            "{role} not running:\n{metrics}"
        );
    }
    node.handle.stop().await;
}

#[actix_rt::test]
async fn admin_roles_api_needs_the_token_and_moves_roles_at_runtime() {
    let node = TestNode::builder().admin_token().start().await;
    let client = http_client();
    let url = format!("{}/api/v1/admin/roles", node.base);

    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "unauthorized");
    let resp = client
        .get(&url)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client
        .put(&url)
        .json(&serde_json::json!({"roles": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "PUT without token must be refused"
    );

    wait_until("all five roles listed", Duration::from_secs(10), || async {
        role_names(&node.get_json("/api/v1/admin/roles").await).len() == 5
    })
    .await;

    let keep: Vec<&str> = ALL_ROLES
        .iter()
        .copied()
        .filter(|r| *r != "compactor")
        .collect();
    let resp = client
        .put(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "roles": keep }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    wait_until(
        "the compactor gone after removal",
        Duration::from_secs(10),
        || async {
            !role_names(&node.get_json("/api/v1/admin/roles").await)
                .contains(&"compactor".to_string())
        },
    )
    .await;
    let metrics = node.metrics().await;
    assert_eq!(
        metric_value(&metrics, "strata_role_running{role=\"compactor\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "strata_role_running{role=\"store_shard\"}"),
        Some(1.0)
    );

    let resp = client
        .put(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "roles": ALL_ROLES }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    wait_until(
        "the compactor running again",
        Duration::from_secs(10),
        || async {
            let v = node.get_json("/api/v1/admin/roles").await;
            role_entry(&v, "compactor").is_some_and(|r| r["state"] == "running")
        },
    )
    .await;
    assert_eq!(
        metric_value(
            &node.metrics().await,
            "strata_role_running{role=\"compactor\"}"
        ),
        Some(1.0)
    );

    // Unknown role names and bad bodies are refused with bad_data, and change nothing.
    let resp = client
        .put(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"roles": ["compactor", "oracle"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errorType"], "bad_data");
    assert!(body["error"].as_str().unwrap_or("").contains("oracle"));
    assert_eq!(
        role_names(&node.get_json("/api/v1/admin/roles").await).len(),
        5
    );
    node.handle.stop().await;
}

#[actix_rt::test]
async fn a_failing_role_is_restarted_and_counted_while_others_keep_serving() {
    let node = TestNode::builder().start().await;
    wait_until(
        "the node to become ready",
        Duration::from_secs(10),
        || async { node.status("/-/ready").await == 200 },
    )
    .await;
    let before = node.get_json("/api/v1/admin/roles").await;
    let planner_started = role_entry(&before, "query_planner").map(|r| r["started_at"].clone());

    let client = http_client();
    let resp = client
        .post(format!(
            "{}/api/v1/admin/roles/store_shard/fault",
            node.base
        ))
        .json(&serde_json::json!({"kind": "panic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    wait_until(
        "store_shard restarted after a panic",
        Duration::from_secs(15),
        || async {
            let v = node.get_json("/api/v1/admin/roles").await;
            role_entry(&v, "store_shard")
                .is_some_and(|r| r["restarts"] == 1 && r["state"] == "running")
        },
    )
    .await;
    let after = node.get_json("/api/v1/admin/roles").await;
    let shard = role_entry(&after, "store_shard")
        .cloned()
        .unwrap_or_default();
    assert!(
        shard["last_error"].as_str().unwrap_or("").contains("panic"),
        "{shard}"
    );
    assert_eq!(
        role_entry(&after, "query_planner").map(|r| r["started_at"].clone()),
        planner_started,
        "other roles must not restart"
    );
    assert_eq!(
        role_entry(&after, "query_planner").map(|r| r["restarts"].clone()),
        Some(Value::from(0))
    );
    let metrics = node.metrics().await;
    assert_eq!(
        metric_value(&metrics, "strata_role_restarts_total{role=\"store_shard\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "strata_role_restarts_total{role=\"query_planner\"}"
        ),
        Some(0.0)
    );
    assert_eq!(node.status("/-/healthy").await, 200);

    let resp = client
        .post(format!("{}/api/v1/admin/roles/compactor/fault", node.base))
        .json(&serde_json::json!({"kind": "error", "message": "disk on fire"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    wait_until(
        "the compactor restarted after a handler error",
        Duration::from_secs(15),
        || async {
            let v = node.get_json("/api/v1/admin/roles").await;
            role_entry(&v, "compactor").is_some_and(|r| {
                r["restarts"] == 1
                    && r["state"] == "running"
                    && r["last_error"]
                        .as_str()
                        .unwrap_or("")
                        .contains("disk on fire")
            })
        },
    )
    .await;
    wait_until("the node ready again", Duration::from_secs(10), || async {
        node.status("/-/ready").await == 200
    })
    .await;
    node.handle.stop().await;
}

fn strata_bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

#[test]
fn bad_configs_are_refused_by_name_with_nothing_started() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases = [
        (
            "unknown key",
            format!("node:\n  data_dir: {}\n  colour: blue\n", data.display()),
            "colour",
        ),
        (
            "wrong type",
            format!(
                "node:\n  data_dir: {}\nglobal:\n  scrape_interval: [1, 2]\n",
                data.display()
            ),
            "scrape_interval",
        ),
        (
            "invalid address",
            format!(
                "node:\n  data_dir: {}\n  web_listen: not-an-address\n",
                data.display()
            ),
            "web_listen",
        ),
        (
            "unsupported section",
            format!(
                "node:\n  data_dir: {}\nremote_read:\n  - url: http://x\n",
                data.display()
            ),
            "remote_read",
        ),
    ];
    for (what, yaml, key) in cases {
        let file = dir.path().join("bad.yml");
        std::fs::write(&file, yaml).unwrap();
        let out = Command::new(strata_bin())
            .args(["node", "--config"])
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{what}: node started with a bad config"
        );
        assert!(
            stderr.contains(key),
            "{what}: error does not name {key}:\n{stderr}"
        );
        assert!(
            !data.exists(),
            "{what}: the node created its data dir before refusing the config"
        );

        let out = Command::new(strata_bin())
            .args(["check", "config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{what}: check config accepted a bad config"
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(key),
            "{what}: check config does not name {key}:\n{text}"
        );
    }
}

#[actix_rt::test]
async fn the_readme_run_command_serves_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(strata_bin())
        .args(["node", "--web.listen-address", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/-/ready");
    let ready = try_wait_http_ok(&url, Duration::from_secs(20)).await;
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    if let Err(e) = ready {
        panic!("{e}; the default node's stderr:\n{stderr}");
    }
    assert!(
        status.success(),
        "node did not exit cleanly on SIGTERM: {status:?}\n{stderr}"
    );
    assert!(
        dir.path().join("data").exists(),
        "the embedded default keeps its data under ./data"
    );
}

#[actix_rt::test]
async fn a_node_restarted_in_process_keeps_every_acknowledged_sample() {
    use strata::http::remote_write::encode;
    use strata::storage::model::Labels;
    use strata_testing::{now_ms, remote_write};
    let data = tempfile::tempdir().unwrap();
    let now = now_ms();
    let series = vec![(
        Labels::from_pairs([("__name__", "kept_total"), ("job", "x")]),
        (0..50)
            .map(|i| (now - 60_000 + i * 1000, i as f64))
            .collect::<Vec<_>>(),
    )];
    let node = TestNode::builder().data_dir(data.path()).start().await;
    remote_write(&node.base, encode(&series)).await;
    node.handle.stop().await;
    let again = TestNode::builder().data_dir(data.path()).start().await;
    let v: Value = http_client()
        .post(format!("{}/api/v1/query", again.base))
        .form(&[
            ("query", "count_over_time(kept_total[2m])".to_string()),
            ("time", format!("{:.3}", now as f64 / 1000.0)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "50", "{v}");
    again.handle.stop().await;
}
