//! Helpers for the scrape tests: a tiny in-process HTTP server whose paths serve fixed
//! exposition bodies (or a huge generated one), and the real exporters (Debian's
//! prometheus-node-exporter, a `prometheus_client` Python exporter) as child processes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::support::{free_port, require_binary, ChildGuard, TestNode};

/// What one path answers.
#[derive(Clone)]
pub enum Body {
    /// A fixed body with this content type.
    Fixed {
        content_type: String,
        body: Arc<Vec<u8>>,
    },
    /// `size` bytes of valid-looking lines, generated while sending.
    Huge { size: usize },
}

/// An HTTP/1.1 server on 127.0.0.1:0 with keep-alive; paths can change at any time.
pub struct BodyServer {
    pub addr: std::net::SocketAddr,
    routes: Arc<Mutex<HashMap<String, Body>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BodyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BodyServer {
    pub async fn start() -> BodyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind body server");
        let addr = listener.local_addr().expect("addr");
        let routes: Arc<Mutex<HashMap<String, Body>>> = Arc::default();
        let r = routes.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(serve_conn(sock, r));
            }
        });
        BodyServer { addr, routes, task }
    }

    pub fn set(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.routes.lock().insert(
            path.to_string(),
            Body::Fixed {
                content_type: content_type.to_string(),
                body: Arc::new(body.into()),
            },
        );
    }

    pub fn set_huge(&self, path: &str, size: usize) {
        self.routes
            .lock()
            .insert(path.to_string(), Body::Huge { size });
    }
}

async fn serve_conn(mut sock: tokio::net::TcpStream, routes: Arc<Mutex<HashMap<String, Body>>>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some(head_end) =
            strata::cli::bench_scrape::read_request_head(&mut sock, &mut buf).await
        else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let body = routes.lock().get(&path).cloned();
        let ok = match body {
            None => sock
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_ok(),
            Some(Body::Fixed { content_type, body }) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                sock.write_all(head.as_bytes()).await.is_ok() && sock.write_all(&body).await.is_ok()
            }
            Some(Body::Huge { size }) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {size}\r\n\r\n");
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let line = b"huge_metric_total{shard=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"} 1\n";
                let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if sock.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                true
            }
        };
        if !ok {
            return;
        }
    }
}

/// Debian's node exporter on a free port with a few stable collectors.
pub async fn start_node_exporter() -> (ChildGuard, String) {
    let bin = require_binary("prometheus-node-exporter");
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .args([
            "--collector.loadavg",
            "--collector.meminfo",
            "--collector.time",
            "--collector.uname",
            "--collector.stat",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-node-exporter");
    let guard = ChildGuard {
        child,
        name: "node-exporter",
    };
    let addr = format!("127.0.0.1:{port}");
    wait_http(&format!("http://{addr}/metrics")).await;
    (guard, addr)
}

/// A `prometheus_client` exporter with a counter, a gauge, a histogram and a summary.
pub async fn start_python_exporter() -> (ChildGuard, String) {
    let port = free_port();
    let script = format!(
        r#"
import time
from prometheus_client import start_http_server, Counter, Gauge, Histogram, Summary, Info
c = Counter('demo_requests', 'Requests.', ['method', 'code'])
g = Gauge('demo_temperature_celsius', 'Temperature.', unit='celsius')
h = Histogram('demo_latency_seconds', 'Latency.', buckets=[0.1, 0.5, 1.0])
s = Summary('demo_size_bytes', 'Sizes.')
i = Info('demo_build', 'Build info.')
conflict = Gauge('demo_conflict', 'Labels that clash with target labels.', ['job', 'instance'])
conflict.labels('inner', 'x').set(1)
i.info({{'version': '1.2.3'}})
c.labels('get', '200').inc(3)
c.labels('post', '500').inc()
g.set(21.5)
h.observe(0.3)
s.observe(512)
start_http_server({port}, addr='127.0.0.1')
while True:
    time.sleep(1)
"#
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the python exporter (python3 with prometheus_client)");
    let guard = ChildGuard {
        child,
        name: "python-exporter",
    };
    let addr = format!("127.0.0.1:{port}");
    wait_http(&format!("http://{addr}/metrics")).await;
    (guard, addr)
}

async fn wait_http(url: &str) {
    crate::support::wait_http_ok(url, Duration::from_secs(20)).await;
}

/// Every series (name and labels) a Prometheus-compatible API holds, as sorted strings.
pub async fn all_series(base: &str) -> Vec<String> {
    let url = format!("{base}/api/v1/series");
    let resp = TestNode::client()
        .get(&url)
        .query(&[("match[]", "{__name__=~\".+\"}"), ("start", "0")])
        .send()
        .await
        .expect("series request");
    let v: serde_json::Value = resp.json().await.expect("series json");
    assert_eq!(v["status"], "success", "{url}: {v}");
    let mut out: Vec<String> = v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let m = s.as_object().cloned().unwrap_or_default();
                    let mut pairs: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// `/api/v1/targets` of a node or a Prometheus.
pub async fn targets(base: &str) -> serde_json::Value {
    let resp = TestNode::client()
        .get(format!("{base}/api/v1/targets"))
        .send()
        .await
        .expect("targets request");
    resp.json().await.expect("targets json")
}

/// The active target whose scrape URL ends with `suffix`.
pub fn target_with_url<'a>(
    targets: &'a serde_json::Value,
    suffix: &str,
) -> Option<&'a serde_json::Value> {
    targets["data"]["activeTargets"]
        .as_array()?
        .iter()
        .find(|t| t["scrapeUrl"].as_str().is_some_and(|u| u.ends_with(suffix)))
}
