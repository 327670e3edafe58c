//! Scrape targets: a tiny in-process HTTP server whose paths serve fixed exposition bodies (or
//! a huge generated one), and the real exporters (Debian's prometheus-node-exporter, a
//! `prometheus_client` Python exporter) as child processes.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::http::wait_http_ok;
use crate::net::free_port;
use crate::process::{require_binary, ChildGuard};

/// What one path answers.
#[derive(Clone)]
enum Body {
    /// A fixed body with this content type.
    Fixed {
        content_type: String,
        body: Arc<Vec<u8>>,
    },
    /// `size` bytes of valid-looking lines, generated while sending.
    Huge { size: usize },
}

type Routes = Arc<Mutex<HashMap<String, Body>>>;

/// An HTTP/1.1 server on 127.0.0.1:0 with keep-alive; paths can change at any time, unknown
/// paths answer 404.
pub struct BodyServer {
    pub addr: std::net::SocketAddr,
    routes: Routes,
    hits: Hits,
    task: tokio::task::JoinHandle<()>,
}

/// Requests served per path.
type Hits = Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>;

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
        let routes: Routes = Arc::default();
        let hits: Hits = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_conn(sock, r.clone(), h.clone()));
            }
        });
        BodyServer {
            addr,
            routes,
            hits,
            task,
        }
    }

    /// How many requests for `path` were served so far.
    pub fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// `path` answers `body` with `content_type` from now on.
    pub fn set(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.routes.lock().expect("routes").insert(
            path.to_string(),
            Body::Fixed {
                content_type: content_type.to_string(),
                body: Arc::new(body.into()),
            },
        );
    }

    /// `path` answers `size` bytes of text-format lines.
    pub fn set_huge(&self, path: &str, size: usize) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_string(), Body::Huge { size });
    }
}

async fn serve_conn(mut sock: tokio::net::TcpStream, routes: Routes, hits: Hits) {
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
        *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
        let body = routes.lock().expect("routes").get(&path).cloned();
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

/// Debian's node exporter on a free port with a few stable collectors; returns the guard and
/// its `host:port`.
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
    let guard = ChildGuard::new(child, "node-exporter");
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&format!("http://{addr}/metrics"), Duration::from_secs(20)).await;
    (guard, addr)
}

/// A `prometheus_client` exporter with a counter, a gauge, a histogram, a summary, an info and
/// a gauge whose labels clash with target labels; returns the guard and its `host:port`.
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
    let guard = ChildGuard::new(child, "python-exporter");
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&format!("http://{addr}/metrics"), Duration::from_secs(20)).await;
    (guard, addr)
}
