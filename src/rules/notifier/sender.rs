//! The sending task: takes batches off the queue and POSTs each to every Alertmanager of
//! every set in parallel, each request bounded by its set's `timeout`. A batch succeeded
//! when at least one Alertmanager answered 2xx; otherwise its alerts count as dropped.
//!
//! Retries (Prometheus has none): an Alertmanager that failed with a connection error, a
//! timeout, a 5xx or a 429 gets the same batch again, at most `RetryPolicy::attempts` more
//! times after `backoff`, `2*backoff`, ..., but only while no newer alerts are queued: as
//! soon as the queue is non-empty (or fills during a backoff) the retry is abandoned, because
//! the newer batch carries the fresher state and the rule evaluator re-sends every firing
//! alert each resend delay anyway. A 4xx other than 429 is never retried (Alertmanager
//! refused the alerts themselves). Every attempt is counted like Prometheus counts one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::discovery::{apply_auth, SetView};
use super::payload::{encode_body, OutgoingAlert};
use super::Shared;

/// How failed requests are repeated (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first; 0 = Prometheus's behaviour.
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The result of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Worth another attempt: unreachable, timed out, 5xx, 429.
    Transient(String),
    /// Not worth another attempt: a 4xx, or credentials that cannot be read.
    Permanent(String),
}

/// Whether an HTTP status is retried.
fn is_transient(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// Runs until `cancel`: waits for alerts, sends them batch by batch.
pub(super) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        if shared.queue_len() == 0 {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = shared.more.notified() => {}
            }
        }
        let batch = shared.next_batch();
        if batch.is_empty() {
            continue;
        }
        let delivered = send_batch(&shared, &batch, &cancel).await;
        if !delivered {
            shared.metrics.add_dropped(batch.len());
        }
        if cancel.is_cancelled() {
            return;
        }
    }
}

/// Sends one batch to every Alertmanager, with the retries described above; true when at
/// least one accepted it.
async fn send_batch(shared: &Shared, batch: &[OutgoingAlert], cancel: &CancellationToken) -> bool {
    let body = match encode_body(batch) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!(error = %e, "notifier: cannot encode alerts");
            return false;
        }
    };
    let sets = shared.sets();
    let mut targets: Vec<(&SetView, &str)> = Vec::new();
    for set in sets.iter() {
        for url in &set.active {
            targets.push((set, url.as_str()));
        }
    }
    let mut delivered = false;
    let mut attempt: u32 = 0;
    while !targets.is_empty() {
        let sends = targets
            .iter()
            .map(|(set, url)| post(shared, set, url, body.clone(), batch.len()));
        let outcomes = futures::future::join_all(sends).await;
        let mut retry = Vec::new();
        for (target, outcome) in targets.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Ok => delivered = true,
                Outcome::Transient(e) => {
                    tracing::warn!(alertmanager = target.1, count = batch.len(), error = %e, "notifier: error sending alerts");
                    retry.push(target);
                }
                Outcome::Permanent(e) => {
                    tracing::error!(alertmanager = target.1, count = batch.len(), error = %e, "notifier: alerts refused");
                }
            }
        }
        attempt += 1;
        if retry.is_empty() || attempt > shared.retry.attempts {
            break;
        }
        if !backoff(shared, shared.retry.backoff * attempt, cancel).await {
            break;
        }
        targets = retry;
    }
    delivered
}

/// Sleeps before a retry; false when the retry should be abandoned (newer alerts queued,
/// or the notifier stops).
async fn backoff(shared: &Shared, wait: Duration, cancel: &CancellationToken) -> bool {
    if shared.queue_len() > 0 {
        return false;
    }
    tokio::select! {
        _ = cancel.cancelled() => return false,
        // The permit is consumed here; `run` checks the queue before waiting again.
        _ = shared.more.notified() => {}
        _ = tokio::time::sleep(wait) => {}
    }
    shared.queue_len() == 0 && !cancel.is_cancelled()
}

async fn post(shared: &Shared, set: &SetView, url: &str, body: Bytes, count: usize) -> Outcome {
    let start = Instant::now();
    let outcome = request(set, url, body).await;
    shared.metrics.record_attempt(
        url,
        count,
        outcome == Outcome::Ok,
        start.elapsed().as_secs_f64(),
    );
    outcome
}

async fn request(set: &SetView, url: &str, body: Bytes) -> Outcome {
    let req = set
        .client
        .post(url)
        .timeout(set.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let req = match apply_auth(req, &set.auth, &set.config_dir) {
        Ok(r) => r,
        Err(e) => return Outcome::Permanent(e),
    };
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Outcome::Ok,
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let msg = format!("bad response status {status}: {}", text.trim());
            if is_transient(status) {
                Outcome::Transient(msg)
            } else {
                Outcome::Permanent(msg)
            }
        }
        Err(e) => Outcome::Transient(crate::httpclient::error_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_errors_and_429_are_retried() {
        assert!(is_transient(reqwest::StatusCode::INTERNAL_SERVER_ERROR));
        assert!(is_transient(reqwest::StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_transient(reqwest::StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_transient(reqwest::StatusCode::BAD_REQUEST));
        assert!(!is_transient(reqwest::StatusCode::UNPROCESSABLE_ENTITY));
    }
}
