//! Shared helpers for the integration tests: booting nodes in-process on port 0, waiting on
//! conditions with a deadline, reading metrics.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use strata::config::Config;
use strata::node::{self, Listeners, NodeHandle, StartOptions};
use tokio_util::sync::CancellationToken;

static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

pub const ADMIN_TOKEN: &str = "s3cr3t-admin-token";

/// A node running in this process, with its data under a temp dir.
pub struct TestNode {
    pub handle: NodeHandle,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub token: Option<String>,
}

/// YAML for a single node on 127.0.0.1:0 with its data in `dir`; `extra` is appended.
pub fn node_yaml(dir: &Path, token_file: Option<&Path>, extra: &str) -> String {
    let mut y = format!(
        "node:\n  id: test-node-{}\n  web_listen: 127.0.0.1:0\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n",
        NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        dir.join("data").display()
    );
    if let Some(t) = token_file {
        y.push_str(&format!("admin:\n  token_file: {}\n", t.display()));
    }
    y.push_str(extra);
    y
}

/// Like `start_node`, with this node's roles.
pub async fn start_node_with_roles(roles: &[&str], extra: &str) -> TestNode {
    start_node_inner(false, extra, Some(roles)).await
}

pub async fn start_node(with_token: bool, extra: &str) -> TestNode {
    start_node_inner(with_token, extra, None).await
}

/// Starts a node whose data lives in `data_dir` (kept by the caller, so a test can restart it).
pub async fn start_node_in(data_dir: &Path, extra: &str) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = node_yaml(dir.path(), None, extra).replace(
        &dir.path().join("data").display().to_string(),
        &data_dir.display().to_string(),
    );
    boot(dir, &yaml, None).await
}

/// Starts a node from config text; `dir` holds its files and lives as long as the node.
async fn boot(dir: tempfile::TempDir, yaml: &str, token: Option<String>) -> TestNode {
    let config = Config::from_yaml_str(yaml, "test.yml").expect("test config is valid");
    let listeners = Listeners::bind(&config).expect("bind");
    let opts = StartOptions {
        fault_injection: true,
        http_workers: 1,
        ..Default::default()
    };
    let handle = node::start(config, listeners, CancellationToken::new(), opts)
        .await
        .expect("node starts");
    let base = format!("http://{}", handle.web_addr);
    TestNode {
        handle,
        base,
        dir,
        token,
    }
}

async fn start_node_inner(with_token: bool, extra: &str, roles: Option<&[&str]>) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("admin-token");
    let token = if with_token {
        std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).expect("write token");
        Some(ADMIN_TOKEN.to_string())
    } else {
        None
    };
    let mut yaml = node_yaml(
        dir.path(),
        with_token.then_some(token_file.as_path()),
        extra,
    );
    if let Some(roles) = roles {
        yaml = yaml.replacen(
            "node:\n",
            &format!("node:\n  roles: [{}]\n", roles.join(", ")),
            1,
        );
    }
    boot(dir, &yaml, token).await
}

impl TestNode {
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self
            .authed(Self::client().get(format!("{}{}", self.base, path)))
            .send()
            .await
            .expect("GET");
        resp.json().await.expect("json body")
    }

    pub async fn metrics(&self) -> String {
        let resp = Self::client()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        resp.text().await.expect("metrics text")
    }

    pub async fn status(&self, path: &str) -> u16 {
        Self::client()
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

/// The value of the first sample in a metrics text whose name and labels start with `prefix`.
pub fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `f` until it returns true or the deadline passes; returns whether it became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Picks a free TCP port on 127.0.0.1 for a child process that cannot report its own.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed when dropped, so a failing test never leaks servers.
pub struct ChildGuard {
    pub child: std::process::Child,
    pub name: &'static str,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with an install hint when a real peer's binary is missing (tests must not skip).
pub fn require_binary(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run ./scripts/test.sh, which installs the Debian packages the tests use");
}

/// A real Prometheus 2.42 (Debian's package) on a free port, accepting remote write.
pub struct RealPrometheus {
    pub guard: ChildGuard,
    pub base: String,
    pub dir: tempfile::TempDir,
}

pub async fn start_prometheus(extra_config: &str) -> RealPrometheus {
    let bin = require_binary("prometheus");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 15s\n{extra_config}"),
    )
    .expect("write prometheus.yml");
    let port = free_port();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--storage.tsdb.retention.time=100y")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prometheus");
    let guard = ChildGuard {
        child,
        name: "prometheus",
    };
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(30)).await;
    RealPrometheus { guard, base, dir }
}

/// Sends a remote-write request; panics unless the server answers 2xx.
pub async fn remote_write(base: &str, body: Vec<u8>) {
    let resp = TestNode::client()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("remote write request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "remote write to {base} failed: {status} {text}"
    );
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Waits until `url` answers 2xx; fails the test naming the URL otherwise.
pub async fn wait_http_ok(url: &str, timeout: Duration) {
    let up = wait_until(timeout, || {
        let u = url.to_string();
        async move {
            TestNode::client()
                .get(&u)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    assert!(up, "{url} did not come up");
}
