//! Remote-write receive: one in-process node answers a bad payload with 400 and a request over
//! a limit with 413, storing nothing, and turns the tenant header into the `tenant_id` label;
//! then a real Prometheus 2.42 remote-writes to three real `strata node` processes behind
//! haproxy, one node is SIGKILLed mid-run and restarted, and every sample Prometheus sent is
//! queryable through Strata exactly once, equal to Prometheus's own data.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata::http::remote_write::encode;
use strata::storage::model::Labels;
use strata_testing::http::try_wait_http_ok;
use strata_testing::{
    free_ports, free_udp_port, http_client, metric_value, now_ms, require_binary, wait_until,
    ChildGuard, Prometheus, TestNode, Wait,
};

async fn post(base: &str, path: &str, body: Vec<u8>, tenant: Option<&str>) -> (u16, String) {
    let mut req = http_client()
        .post(format!("{base}{path}"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("THANOS-TENANT", t);
    }
    let resp = req.send().await.expect("POST remote write");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn instant(base: &str, query: &str, time_ms: i64) -> Value {
    http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[
            ("query", query.to_string()),
            ("time", format!("{:.3}", time_ms as f64 / 1000.0)),
        ])
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("query JSON")
}

fn result(v: &Value) -> Vec<Value> {
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[actix_rt::test]
async fn one_node_refuses_bad_requests_whole_and_labels_tenants() {
    let node = TestNode::builder()
        .yaml("receive:\n  limits: {max_series_per_request: 2}\n")
        .start()
        .await;
    node.wait_ready().await;
    let now = now_ms();
    let one = |name: &str| {
        (
            Labels::from_pairs([("__name__", name), ("job", "w")]),
            vec![(now - 1000, 1.0), (now, 2.0)],
        )
    };
    let (status, body) = post(&node.base, "/api/v1/write", b"not snappy".to_vec(), None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &node.base,
        "/api/v1/receive",
        encode(&[one("too_a"), one("too_b"), one("too_c")]),
        None,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = post(&node.base, "/api/v1/write", encode(&[one("plain")]), None).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(
        &node.base,
        "/api/v1/write",
        encode(&[one("tenanted")]),
        Some("team-a"),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(
        &node.base,
        "/api/v1/receive",
        encode(&[one("thanos")]),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // A retry of an acknowledged request is acknowledged again and stores nothing twice.
    let (status, body) = post(
        &node.base,
        "/api/v1/receive",
        encode(&[one("thanos")]),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");

    let v = instant(&node.base, "count_over_time({job=\"w\"}[1m])", now).await;
    let mut got: Vec<(String, String)> = result(&v)
        .iter()
        .map(|s| {
            (
                s["metric"]["tenant_id"].as_str().unwrap_or("-").to_string(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("-".to_string(), "2".to_string()),
            ("default-tenant".to_string(), "2".to_string()),
            ("team-a".to_string(), "2".to_string()),
        ],
        "{v}"
    );
    let metrics = node.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "strata_receive_requests_total{handler=\"receive\",code=\"413\"}"
        )
        .is_some(),
        "{metrics}"
    );
    assert!(
        metrics.contains("thanos_receive_replications_total"),
        "{metrics}"
    );
}

fn write_config(
    dir: &Path,
    id: &str,
    (web, gossip, rpc): (u16, u16, u16),
    seeds: &[u16],
) -> std::path::PathBuf {
    let join: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let yaml = format!(
        "node:\n  id: {id}\n  web_listen: 127.0.0.1:{web}\n  gossip_listen: 127.0.0.1:{gossip}\n  rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {data}\n  roles: [query_planner, scraper_shipper]\ncluster:\n  join: [{join}]\n  receive_replication: 2\n  role_policy: {{}}\nbucket:\n  type: filesystem\n  filesystem: {{dir: {bucket}}}\n",
        data = dir.join(id).display(),
        join = join.join(", "),
        bucket = dir.join("bucket").display(),
    );
    let path = dir.join(format!("{id}.yml"));
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn spawn(config: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .expect("node log file");
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["node", "--config"])
        .arg(config)
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start strata node");
    ChildGuard::new(child, "strata")
}

fn start_haproxy(dir: &Path, front: u16, ports: &[u16]) -> ChildGuard {
    let bin = require_binary("haproxy");
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server n{} 127.0.0.1:{p} check\n", i + 1))
        .collect();
    let cfg = format!(
        "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 2\n    option redispatch\nfrontend f\n    bind 127.0.0.1:{front}\n    default_backend b\nbackend b\n    balance roundrobin\n    option httpchk GET /-/ready\n    http-check expect status 200\n    default-server inter 300ms fall 2 rise 1\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("haproxy.cfg");
    let child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy");
    ChildGuard::new(child, "haproxy")
}

/// A metric of Prometheus's own remote-write queue from its `/metrics`, summed over labels.
async fn prom_metric(prom: &Prometheus, name: &str) -> f64 {
    let text = strata_testing::http::fetch_metrics(&prom.base)
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Series (without `tenant_id`) → samples `(t ms, value text)` of a range-vector instant query.
fn samples_by_series(v: &Value) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out = BTreeMap::new();
    for s in result(v) {
        let mut metric: BTreeMap<String, String> = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        metric.remove("tenant_id");
        let samples: Vec<(i64, String)> = s["values"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                        (t, p[1].as_str().unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(format!("{metric:?}"), samples);
    }
    out
}

/// A node's own head: (series, min time ms).
async fn head_stats(base: &str) -> (u64, i64) {
    let v = strata_testing::http::get_json(&format!("{base}/api/v1/status/tsdb"))
        .await
        .unwrap_or_default();
    let h = &v["data"]["headStats"];
    (
        h["numSeries"].as_u64().unwrap_or(0),
        h["minTime"].as_i64().unwrap_or(i64::MAX),
    )
}

#[actix_rt::test]
async fn prometheus_writes_through_haproxy_and_a_killed_node_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let ports = free_ports(7);
    let webs = ports[..3].to_vec();
    let mut configs = Vec::new();
    let mut guards = Vec::new();
    for i in 0..3 {
        let seeds: Vec<u16> = gossip.iter().copied().filter(|p| *p != gossip[i]).collect();
        let cfg = write_config(
            dir.path(),
            &format!("n{}", i + 1),
            (webs[i], gossip[i], ports[3 + i]),
            &seeds,
        );
        guards.push(spawn(&cfg));
        configs.push(cfg);
    }
    for w in &webs {
        try_wait_http_ok(
            &format!("http://127.0.0.1:{w}/-/ready"),
            Duration::from_secs(30),
        )
        .await
        .expect("node ready");
    }
    let _haproxy = start_haproxy(dir.path(), ports[6], &webs);
    let lb = format!("http://127.0.0.1:{}", ports[6]);
    try_wait_http_ok(&format!("{lb}/-/ready"), Duration::from_secs(30))
        .await
        .expect("haproxy forwards");

    // Prometheus scrapes the three nodes (many series, one of them dies and comes back) and
    // remote-writes through haproxy with small, frequent batches.
    let targets: Vec<String> = webs.iter().map(|w| format!("'127.0.0.1:{w}'")).collect();
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: strata\n    static_configs:\n      - targets: [{}]\nremote_write:\n  - url: {lb}/api/v1/receive\n    queue_config: {{capacity: 500, max_samples_per_send: 100, batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n",
        targets.join(", ")
    ))
    .await;
    let started = now_ms();
    wait_until(
        "Prometheus to send samples",
        Duration::from_secs(30),
        || async { prom_metric(&prom, "prometheus_remote_storage_samples_total").await > 1000.0 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n2 = format!("http://127.0.0.1:{}", webs[1]);
    let before = head_stats(&n2).await;
    assert!(before.0 > 0, "n2 stored nothing before the kill");
    let killed_at = now_ms();
    println!("SIGKILL n2 (head: {} series from {})", before.0, before.1);
    guards[1].kill();
    tokio::time::sleep(Duration::from_secs(8)).await;
    println!("restart n2");
    guards[1] = spawn(&configs[1]);
    try_wait_http_ok(
        &format!("http://127.0.0.1:{}/-/ready", webs[1]),
        Duration::from_secs(30),
    )
    .await
    .expect("n2 ready again");
    // Its WAL gave back what it had acknowledged before the kill.
    let after = head_stats(&n2).await;
    assert!(
        after.0 >= before.0 && after.1 <= before.1 && after.1 < killed_at,
        "n2's head after restart {after:?}, before the kill {before:?}"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let end = now_ms();

    // Everything up to `end` is sent once the queue's highest sent timestamp is past it.
    wait_until(
        "Prometheus to have sent past the window",
        Duration::from_secs(60),
        || async {
            prom_metric(
                &prom,
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            )
            .await
                * 1000.0
                > (end + 3000) as f64
        },
    )
    .await;
    let failed = prom_metric(&prom, "prometheus_remote_storage_samples_failed_total").await;
    let dropped = prom_metric(&prom, "prometheus_remote_storage_samples_dropped_total").await;
    let retried = prom_metric(&prom, "prometheus_remote_storage_samples_retried_total").await;
    let sent = prom_metric(&prom, "prometheus_remote_storage_samples_total").await;
    println!(
        "Prometheus sent {sent} samples, retried {retried}, failed {failed}, dropped {dropped}"
    );
    assert_eq!(failed, 0.0, "Prometheus dropped refused samples");

    let window_s = (end - started) / 1000;
    let query = format!("{{job=\"strata\"}}[{window_s}s]");
    let want = samples_by_series(&instant(&prom.base, &query, end).await);
    assert!(
        want.len() > 100,
        "Prometheus has too few series: {}",
        want.len()
    );
    let total: usize = want.values().map(Vec::len).sum();
    let compared = Wait::new(
        "Strata to answer Prometheus's samples exactly once",
        Duration::from_secs(30),
    )
    .until(|| async {
        let got = samples_by_series(&instant(&lb, &query, end).await);
        got == want
    })
    .await;
    if compared.is_err() {
        let got = samples_by_series(&instant(&lb, &query, end).await);
        let missing: Vec<&String> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<(&String, usize, usize)> = want
            .iter()
            .filter_map(|(k, w)| {
                got.get(k)
                    .filter(|g| *g != w)
                    .map(|g| (k, w.len(), g.len()))
            })
            .take(5)
            .collect();
        let logs = std::fs::read_to_string(dir.path().join("n2.log")).unwrap_or_default();
        panic!(
            "Strata differs from Prometheus over {window_s}s ({} series, {total} samples): {} series missing (e.g. {missing:?}), {} extra, differing (series, want, got): {differ:?}; n2's log tail: {}",
            want.len(),
            want.keys().filter(|k| !got.contains_key(*k)).count(),
            got.keys().filter(|k| !want.contains_key(*k)).count(),
            &logs[logs.len().saturating_sub(3000)..]
        );
    }
    println!(
        "{} series, {total} samples over {window_s}s equal through haproxy after SIGKILL and restart of n2",
        want.len()
    );
}

/// Two in-process nodes with `receive_replication: 3` (quorum 2): a write reaches both (one
/// copy sent to the peer) and is acknowledged; with the peer gone the quorum cannot be met
/// and the answer is 503, which Prometheus retries.
#[actix_rt::test]
async fn a_write_below_quorum_answers_503() {
    let roles = ["scraper_shipper", "query_planner"];
    let a = TestNode::builder()
        .roles(&roles)
        .yaml("cluster:\n  receive_replication: 3\n")
        .start()
        .await;
    let b = TestNode::builder()
        .roles(&roles)
        .yaml(&format!(
            "cluster:\n  join: [\"{}\"]\n  receive_replication: 3\n",
            a.gossip_addr()
        ))
        .start()
        .await;
    a.wait_ready().await;
    b.wait_ready().await;
    wait_until("a to see b receive", Duration::from_secs(15), || async {
        a.handle
            .cluster
            .live_peers_with_role(strata::config::Role::ScraperShipper)
            .len()
            == 1
    })
    .await;
    let now = now_ms();
    let batch = |t: i64| {
        encode(&[(
            Labels::from_pairs([("__name__", "quorum_test"), ("job", "q")]),
            vec![(t, 1.0)],
        )])
    };
    let (status, body) = post(&a.base, "/api/v1/receive", batch(now - 2000), None).await;
    assert_eq!(status, 204, "{body}");
    let (series, _) = head_stats(&b.base).await;
    assert_eq!(series, 1, "the peer holds its copy");
    let metrics = a.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "thanos_receive_forward_requests_total{result=\"success\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    b.handle.stop().await;
    let (status, body) = post(&a.base, "/api/v1/receive", batch(now - 1000), None).await;
    assert_eq!(status, 503, "{body}");
}
