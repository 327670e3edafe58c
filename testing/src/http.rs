//! An HTTP client for talking to nodes and peers, and the few requests every area makes.

use std::time::Duration;

use serde_json::Value;

use crate::wait::Wait;

/// A client with a 30 s timeout, so a hung server fails a test instead of stalling it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the HTTP client")
}

/// GETs `url` and parses the body as JSON; None when unreachable or not JSON (for polling).
pub async fn get_json(url: &str) -> Option<Value> {
    http_client().get(url).send().await.ok()?.json().await.ok()
}

/// The `/metrics` text of the server at `base`; None when unreachable.
pub async fn fetch_metrics(base: &str) -> Option<String> {
    let resp = http_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?;
    resp.text().await.ok()
}

/// Sends a snappy-compressed remote-write request; panics unless the server answers 2xx.
pub async fn remote_write(base: &str, body: Vec<u8>) {
    let resp = http_client()
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

/// Whether `url` answers 2xx right now.
async fn is_ok(url: &str) -> bool {
    http_client()
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Waits until `url` answers 2xx; panics naming the URL otherwise.
pub async fn wait_http_ok(url: &str, timeout: Duration) {
    if let Err(e) = try_wait_http_ok(url, timeout).await {
        panic!("{e}");
    }
}

/// Waits until `url` answers 2xx, or says it timed out (for tests that add a log to the error).
pub async fn try_wait_http_ok(url: &str, timeout: Duration) -> Result<Duration, crate::TimedOut> {
    Wait::new(format!("{url} to answer 2xx"), timeout)
        .until(|| is_ok(url))
        .await
}
