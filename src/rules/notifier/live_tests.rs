//! The notifier against real peers: a real Alertmanager 0.25 (Debian's
//! `prometheus-alertmanager`, clustering off) whose webhook receiver is a tiny in-test HTTP
//! server, and failing Alertmanagers (a closed port, a server answering 500). Waits are
//! conditions with deadlines, never fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use strata_testing::http::wait_http_ok;
use strata_testing::net::{free_port, free_ports};
use strata_testing::process::{require_binary, ChildGuard};
use strata_testing::wait::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::test_support::{alerting, relabel};
use super::*;
use crate::rules::alerting::{Alert, AlertState};

const DEADLINE: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
struct Request {
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP/1.1 server that records every request and answers each with `status` and an
/// empty body, one request per connection.
struct MockServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl MockServer {
    async fn start(status: u16) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_one(stream, log.clone(), status));
            }
        });
        MockServer { addr, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().clone()
    }

    fn count(&self) -> usize {
        self.requests.lock().len()
    }
}

async fn serve_one(mut s: TcpStream, log: Arc<Mutex<Vec<Request>>>, status: u16) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, len) = loop {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (end, len);
        }
    };
    while buf.len() < head_end + 4 + len {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = buf[head_end + 4..head_end + 4 + len].to_vec();
    log.lock().push(Request {
        path,
        headers,
        body,
    });
    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A real Alertmanager 0.25 on free ports, clustering disabled, notifying `webhook` at once.
async fn start_alertmanager(dir: &std::path::Path, webhook: SocketAddr) -> (ChildGuard, String) {
    let bin = require_binary("prometheus-alertmanager");
    let cfg = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n- name: hook\n  webhook_configs:\n  - url: http://{webhook}/hook\n    send_resolved: true\n"
    );
    let cfg_path = dir.join("am.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = ChildGuard::new(child, "alertmanager");
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/-/ready"), DEADLINE).await;
    (guard, base)
}

fn now_ns() -> i64 {
    crate::time::now_ms() * 1_000_000
}

fn firing(name: &str) -> Alert {
    let now = now_ns();
    Alert {
        state: AlertState::Firing,
        labels: Labels::from_pairs([("alertname", name), ("severity", "page")]),
        annotations: [("summary".to_string(), "it fires".to_string())].into(),
        value: 1.0,
        active_at_ns: now,
        fired_at_ns: Some(now),
        resolved_at_ns: None,
        last_sent_at_ns: Some(now),
        valid_until_ns: Some(now + 240 * 1_000_000_000),
        keep_firing_since_ns: None,
    }
}

fn options(replica: &str) -> NotifierOptions {
    let mut o = NotifierOptions::new(relabel);
    o.external_labels = Labels::from_pairs([("cluster", "c1"), ("replica", replica)]);
    o.replica_label = "replica".to_string();
    o.retry = RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(50),
    };
    o
}

fn static_config(targets: &[String]) -> AlertingConfig {
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    alerting(&format!(
        "alertmanagers:\n- static_configs: [{{targets: [{}]}}]\n",
        list.join(", ")
    ))
}

fn statuses(hook: &MockServer) -> Vec<String> {
    hook.requests()
        .iter()
        .map(|r| r.json()["status"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Two rule evaluators (replicas r1 and r2) send the same alert to a real Alertmanager; the
/// replica label is dropped, so the AM sees one alert and notifies once firing, once resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_gets_one_alert_from_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let hook = MockServer::start(200).await;
    let (_am, base) = start_alertmanager(dir.path(), hook.addr).await;
    let cfg = static_config(&[base.trim_start_matches("http://").to_string()]);
    let url = format!("{base}/api/v2/alerts");
    let r1 = Notifier::start(&cfg, options("r1"), NotifierMetrics::unregistered()).unwrap();
    let r2 = Notifier::start(&cfg, options("r2"), NotifierMetrics::unregistered()).unwrap();
    assert_eq!(
        r1.status(),
        AlertmanagersStatus {
            active_alertmanagers: vec![AlertmanagerUrl { url: url.clone() }],
            dropped_alertmanagers: vec![],
        }
    );

    let mut alert = firing("LiveTest");
    let gen = generator_url("http://strata:9090", "up == 1");
    r1.send(vec![from_rule_alert(&alert, &gen)]);
    r2.send(vec![from_rule_alert(&alert, &gen)]);
    wait_until("both replicas delivered the firing alert", DEADLINE, || {
        let done = r1.metrics().sent(&url) == 1 && r2.metrics().sent(&url) == 1;
        std::future::ready(done)
    })
    .await;
    wait_until("the webhook got the firing notification", DEADLINE, || {
        std::future::ready(hook.count() >= 1)
    })
    .await;

    let am_alerts: Value = reqwest::get(format!("{base}/api/v2/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let am_alerts = am_alerts.as_array().unwrap();
    assert_eq!(am_alerts.len(), 1, "{am_alerts:?}");
    let labels = &am_alerts[0]["labels"];
    assert_eq!(labels["alertname"], "LiveTest");
    assert_eq!(labels["cluster"], "c1");
    assert!(labels.get("replica").is_none(), "{labels}");
    assert_eq!(am_alerts[0]["annotations"]["summary"], "it fires");
    assert_eq!(
        am_alerts[0]["generatorURL"],
        "http://strata:9090/graph?g0.expr=up+%3D%3D+1&g0.tab=1"
    );

    alert.state = AlertState::Inactive;
    alert.resolved_at_ns = Some(now_ns());
    r1.send(vec![from_rule_alert(&alert, &gen)]);
    r2.send(vec![from_rule_alert(&alert, &gen)]);
    wait_until(
        "the webhook got the resolved notification",
        DEADLINE,
        || std::future::ready(statuses(&hook).iter().any(|s| s == "resolved")),
    )
    .await;

    assert_eq!(statuses(&hook), ["firing", "resolved"]);
    for req in hook.requests() {
        assert_eq!(req.path, "/hook");
        let body = req.json();
        let alerts = body["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{body}");
        let l = &alerts[0]["labels"];
        assert_eq!(l["alertname"], "LiveTest");
        assert_eq!(l["severity"], "page");
        assert_eq!(l["cluster"], "c1");
        assert!(l.get("replica").is_none(), "{l}");
    }
    for n in [&r1, &r2] {
        assert_eq!(n.metrics().errors(&url), 0);
        assert_eq!(n.metrics().dropped(), 0);
    }
}

/// A closed port and a 500 are errors counted per Alertmanager (with the retries), a batch
/// one Alertmanager accepted is not dropped, one nobody accepted is, and the queue goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_alertmanagers_are_counted_and_the_queue_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let failing = MockServer::start(500).await;
    let good = MockServer::start(200).await;
    let closed = format!("127.0.0.1:{}", free_ports(1)[0]);
    let cfg = alerting(&format!(
        "alertmanagers:\n\
         - static_configs: [{{targets: ['{closed}', '{}']}}]\n  timeout: 2s\n\
         - static_configs: [{{targets: ['{}']}}]\n  path_prefix: /am\n  authorization: {{credentials_file: token}}\n",
        failing.addr, good.addr
    ));
    let metrics = NotifierMetrics::unregistered();
    let mut opts = options("r1");
    opts.config_dir = dir.path().to_path_buf();
    let n = Notifier::start(&cfg, opts, metrics.clone()).unwrap();
    let closed_url = format!("http://{closed}/api/v2/alerts");
    let failing_url = format!("http://{}/api/v2/alerts", failing.addr);
    let good_url = format!("http://{}/am/api/v2/alerts", good.addr);
    assert_eq!(metrics.discovered(), 3);

    n.send(vec![from_rule_alert(&firing("One"), "")]);
    wait_until(
        "first attempt plus two retries to each failing AM",
        DEADLINE,
        || {
            std::future::ready(
                metrics.errors(&closed_url) == 3 && metrics.errors(&failing_url) == 3,
            )
        },
    )
    .await;
    wait_until("the good AM got the batch", DEADLINE, || {
        std::future::ready(good.count() == 1)
    })
    .await;
    assert_eq!(failing.count(), 3);
    assert_eq!(metrics.sent(&failing_url), 3);
    assert_eq!(metrics.sent(&good_url), 1);
    assert_eq!(metrics.errors(&good_url), 0);
    let req = &good.requests()[0];
    assert_eq!(req.path, "/am/api/v2/alerts");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some(USER_AGENT));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(req.json()[0]["labels"]["alertname"], "One");
    assert!(req.json()[0]["labels"].get("replica").is_none());

    // Without the good AM a batch is dropped; the queue still serves the next one.
    n.apply_config(&alerting(&format!(
        "alertmanagers:\n- static_configs: [{{targets: ['{closed}', '{}']}}]\n",
        failing.addr
    )))
    .unwrap();
    assert_eq!(n.status().active_alertmanagers.len(), 2);
    n.send(vec![from_rule_alert(&firing("Two"), "")]);
    wait_until("the undeliverable batch is dropped", DEADLINE, || {
        std::future::ready(metrics.dropped() == 1)
    })
    .await;
    n.apply_config(&cfg).unwrap();
    n.send(vec![from_rule_alert(&firing("Three"), "")]);
    wait_until("the next batch reaches the good AM", DEADLINE, || {
        std::future::ready(good.count() == 2)
    })
    .await;
    assert_eq!(good.requests()[1].json()[0]["labels"]["alertname"], "Three");
    assert_eq!(metrics.dropped(), 1);
    assert_eq!(n.queue_length(), 0);
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let r = Notifier::start(
        &AlertingConfig::default(),
        NotifierOptions::new(relabel),
        NotifierMetrics::unregistered(),
    );
    assert!(matches!(r, Err(NotifierError::NoRuntime)));
}

#[tokio::test]
async fn metrics_are_registered_with_strata_names() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = NotifierMetrics::register(&mut registry);
    let n = Notifier::start(
        &static_config(&["127.0.0.1:1".to_string()]),
        NotifierOptions::new(relabel),
        metrics,
    )
    .unwrap();
    let text = crate::metrics::encode_registry(&registry).unwrap();
    for name in [
        "strata_notifications_sent_total{alertmanager=\"http://127.0.0.1:1/api/v2/alerts\"} 0",
        "strata_notifications_errors_total{alertmanager=\"http://127.0.0.1:1/api/v2/alerts\"} 0",
        "strata_notifications_dropped_total 0",
        "strata_notifications_queue_length 0",
        "strata_notifications_queue_capacity 10000",
        "strata_notifications_alertmanagers_discovered 1",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
    n.send(vec![from_rule_alert(&firing("Latency"), "")]);
    let url = "http://127.0.0.1:1/api/v2/alerts";
    wait_until("a failed attempt", DEADLINE, || {
        std::future::ready(n.metrics().errors(url) >= 1)
    })
    .await;
    let text = crate::metrics::encode_registry(&registry).unwrap();
    let count = format!("strata_notifications_latency_seconds_count{{alertmanager=\"{url}\"}}");
    assert!(text.contains(&count), "{count} missing in\n{text}");
    n.stop();
}
