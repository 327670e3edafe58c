//! Remote write out, as Prometheus 2.42's queue manager does it, one queue per `remote_write`
//! entry. The source is the node's WAL, followed by a [`WalWatcher`]: series records give each
//! ref its labels (after `write_relabel_configs`, with the external labels added where the
//! series lacks them; a dropped series' samples count as dropped), sample records are spread
//! over shards by series ref, so each series stays in order. A shard sends a batch when it
//! holds `max_samples_per_send` samples or `batch_send_deadline` has passed, as one snappy
//! protobuf `WriteRequest` (protocol 1.0 headers). Recoverable failures — connection errors,
//! 5xx, and 429 with `retry_on_http_429` — are retried with a backoff doubling from
//! `min_backoff` to `max_backoff` for as long as it takes; other 4xx answers drop the batch
//! (the receiver refused the data itself).
//!
//! The WAL is the buffer: when a shard's queue (`capacity`) is full the watcher stops before
//! the record it could not place and reads it again later, so an unreachable receiver loses
//! nothing while the segments it needs exist (as in Prometheus, samples in a segment the
//! head truncates before it is read are lost, and at start-up only samples from then on are
//! sent). Every 10 s the number of shards is recomputed from the rate samples arrive, the
//! time a sample takes to send and the backlog (Prometheus's formula, with its ±30% dead
//! band), between `min_shards` and `max_shards`; a change flushes the old shards first.
//! Metadata of the scraped families is sent every `metadata_config.send_interval`.
//! Metrics are Prometheus's `prometheus_remote_storage_*`, labelled `remote_name` and `url`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::{EndpointLabels, RemoteWriteMetrics};
use super::prompb::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
use crate::config::RemoteWriteConfig;
use crate::scrape::relabel::LabelsBuilder;
use crate::storage::model::{Label as ModelLabel, Labels};
use crate::storage::wal::watcher::WalWatcher;
use crate::storage::wal::WalRecord;

/// How often the watcher looks for new WAL records.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often the shard count is reconsidered (Prometheus's `shardUpdateDuration`).
const RESHARD_EVERY: Duration = Duration::from_secs(10);

/// The families' metadata to send, as the scrape manager knows it.
pub type MetadataSource = Arc<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>;

/// One sample on its way to a shard.
struct Item {
    labels: Arc<Labels>,
    t: i64,
    v: f64,
}

/// What the shards of one endpoint share.
struct Endpoint {
    cfg: RemoteWriteConfig,
    client: reqwest::Client,
    resolve_base: PathBuf,
    labels: EndpointLabels,
    metrics: RemoteWriteMetrics,
    stop: CancellationToken,
    /// Sent samples and the seconds their requests took, for resharding.
    sent: AtomicU64,
    send_micros: AtomicU64,
    highest_sent_ms: AtomicI64,
}

/// What every queue of a node shares.
pub struct Context {
    /// The local TSDB's WAL directory.
    pub wal_dir: PathBuf,
    /// Added to every series that lacks them (`global.external_labels`).
    pub external: Labels,
    /// Where relative secret and TLS file names are resolved (the config file's directory).
    pub base_dir: PathBuf,
    pub metadata: MetadataSource,
    pub metrics: RemoteWriteMetrics,
    /// Where the shards run.
    pub runtime: Handle,
    pub stop: CancellationToken,
}

/// Starts one queue per entry of `configs`. Each queue runs its watcher on a thread of its
/// own and its shards on the context's runtime, until `stop`.
pub fn start(configs: &[RemoteWriteConfig], ctx: Context) {
    let Context {
        wal_dir,
        external,
        base_dir,
        metadata,
        metrics,
        runtime,
        stop,
    } = ctx;
    for cfg in configs {
        let client = match crate::httpclient::build_client(
            &cfg.tls_config,
            cfg.follow_redirects,
            concat!("Strata/", env!("CARGO_PKG_VERSION")),
            |p| base_dir.join(p),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(url = %cfg.url, error = %e, "remote write cannot start");
                continue;
            }
        };
        let labels = EndpointLabels {
            remote_name: cfg.remote_name(),
            url: cfg.url.clone(),
        };
        let ep = Arc::new(Endpoint {
            cfg: cfg.clone(),
            client,
            resolve_base: base_dir.clone(),
            labels,
            metrics: metrics.clone(),
            stop: stop.clone(),
            sent: AtomicU64::new(0),
            send_micros: AtomicU64::new(0),
            highest_sent_ms: AtomicI64::new(0),
        });
        if cfg.metadata_config.send {
            runtime.spawn(send_metadata_loop(ep.clone(), metadata.clone()));
        }
        let (dir, ext, rt) = (wal_dir.clone(), external.clone(), runtime.clone());
        let name = format!("remote-write-{}", ep.labels.remote_name);
        if let Err(e) = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_reader(ep, dir, ext, rt))
        {
            tracing::error!(error = %e, "cannot start a remote write thread");
        }
    }
}

/// The shards of an endpoint, as the reader holds them.
struct Shards {
    senders: Vec<mpsc::Sender<Item>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Shards {
    fn start(ep: &Arc<Endpoint>, n: usize, rt: &Handle) -> Shards {
        let mut senders = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(ep.cfg.queue_config.capacity);
            senders.push(tx);
            tasks.push(rt.spawn(run_shard(ep.clone(), rx)));
        }
        ep.metrics.shards.get_or_create(&ep.labels).set(n as i64);
        Shards { senders, tasks }
    }

    /// Closes the queues and waits until every shard has sent what it held.
    fn stop(self, rt: &Handle) {
        drop(self.senders);
        for t in self.tasks {
            let _ = rt.block_on(t);
        }
    }

    fn pending(&self, capacity: usize) -> usize {
        self.senders.iter().map(|s| capacity - s.capacity()).sum()
    }
}

/// The watcher loop of one endpoint.
fn run_reader(ep: Arc<Endpoint>, wal_dir: PathBuf, external: Labels, rt: Handle) {
    let q = ep.cfg.queue_config.clone();
    let m = &ep.metrics;
    m.shards_max
        .get_or_create(&ep.labels)
        .set(q.max_shards as i64);
    m.shards_min
        .get_or_create(&ep.labels)
        .set(q.min_shards as i64);
    m.shard_capacity
        .get_or_create(&ep.labels)
        .set(q.capacity as i64);
    let mut watcher = WalWatcher::new(&wal_dir, crate::time::now_ms());
    let mut series: HashMap<u64, Option<Arc<Labels>>> = HashMap::new();
    let mut shards = Shards::start(&ep, q.min_shards, &rt);
    let mut highest_in_ms: i64 = 0;
    let mut rate = RateTracker::new(ep.sent.load(Ordering::Relaxed));
    let mut last_reshard = Instant::now();
    let mut samples_in: u64 = 0;
    while !ep.stop.is_cancelled() {
        let polled = watcher.poll(|record| match record {
            WalRecord::Series(list) => {
                for s in list {
                    let labels = outgoing_labels(&s.labels, &external, &ep.cfg);
                    series.insert(s.series_ref, labels.map(Arc::new));
                }
                true
            }
            WalRecord::Samples(list) => {
                // All of a record's samples are placed or none: a refused record comes back.
                let n = shards.senders.len();
                let mut need = vec![0usize; n];
                for s in &list {
                    need[(s.series_ref % n as u64) as usize] += 1;
                }
                if need
                    .iter()
                    .zip(&shards.senders)
                    .any(|(k, tx)| *k > tx.capacity())
                {
                    return false;
                }
                for s in list {
                    samples_in += 1;
                    highest_in_ms = highest_in_ms.max(s.t);
                    match series.get(&s.series_ref) {
                        Some(Some(labels)) => {
                            let tx = &shards.senders[(s.series_ref % n as u64) as usize];
                            let item = Item {
                                labels: labels.clone(),
                                t: s.t,
                                v: s.v,
                            };
                            if tx.try_send(item).is_err() {
                                // Only this thread sends, so room checked above is still there;
                                // a closed shard means we are stopping.
                                m.samples_failed.get_or_create(&ep.labels).inc();
                            }
                        }
                        // Dropped by relabeling, or a ref whose series record was never seen.
                        _ => {
                            m.samples_dropped.get_or_create(&ep.labels).inc();
                        }
                    }
                }
                true
            }
        });
        if let Err(e) = polled {
            tracing::warn!(url = %ep.cfg.url, error = %e, "reading the WAL for remote write");
        }
        m.samples_in.inc_by(std::mem::take(&mut samples_in));
        m.highest_timestamp_in.set(highest_in_ms / 1000);
        m.samples_pending
            .get_or_create(&ep.labels)
            .set(shards.pending(q.capacity) as i64);
        if last_reshard.elapsed() >= RESHARD_EVERY {
            last_reshard = Instant::now();
            let delay_s =
                (highest_in_ms - ep.highest_sent_ms.load(Ordering::Relaxed)).max(0) as f64 / 1000.0;
            let (in_rate, time_per_sample) = rate.update(
                m.samples_in.get(),
                ep.sent.load(Ordering::Relaxed),
                ep.send_micros.load(Ordering::Relaxed),
            );
            let current = shards.senders.len();
            let desired = desired_shards(current, in_rate, time_per_sample, delay_s, &q);
            m.shards_desired
                .get_or_create(&ep.labels)
                .set(desired as i64);
            if desired != current {
                tracing::info!(url = %ep.cfg.url, from = current, to = desired, "remote write resharding");
                shards.stop(&rt);
                shards = Shards::start(&ep, desired, &rt);
            }
        }
        std::thread::sleep(POLL_EVERY);
    }
    shards.stop(&rt);
}

/// A series' labels as sent: external labels added where missing, then write relabeling.
fn outgoing_labels(labels: &Labels, external: &Labels, cfg: &RemoteWriteConfig) -> Option<Labels> {
    let mut b = LabelsBuilder::new(labels);
    for l in external.iter() {
        if labels.get(&l.name).is_none() {
            b.set(l.name.as_str(), l.value.as_str());
        }
    }
    if cfg.write_relabel_configs.is_empty() {
        return Some(b.labels());
    }
    crate::scrape::relabel::process_builder(&mut b, &cfg.write_relabel_configs).then(|| b.labels())
}

/// Rates of the last interval, smoothed (Prometheus's EWMA with weight 0.2).
struct RateTracker {
    last_in: u64,
    last_out: u64,
    last_micros: u64,
    at: Instant,
    in_rate: f64,
    time_per_sample: f64,
}

impl RateTracker {
    fn new(out: u64) -> Self {
        RateTracker {
            last_in: 0,
            last_out: out,
            last_micros: 0,
            at: Instant::now(),
            in_rate: 0.0,
            time_per_sample: 0.0,
        }
    }

    /// (samples in per second, seconds of sending per sample).
    fn update(&mut self, total_in: u64, total_out: u64, total_micros: u64) -> (f64, f64) {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let d_in = total_in.saturating_sub(self.last_in) as f64 / secs;
        let d_out = total_out.saturating_sub(self.last_out);
        let d_micros = total_micros.saturating_sub(self.last_micros);
        const ALPHA: f64 = 0.2;
        self.in_rate = ALPHA * d_in + (1.0 - ALPHA) * self.in_rate;
        if d_out > 0 {
            let tps = d_micros as f64 / 1e6 / d_out as f64;
            self.time_per_sample = ALPHA * tps + (1.0 - ALPHA) * self.time_per_sample;
        }
        self.last_in = total_in;
        self.last_out = total_out;
        self.last_micros = total_micros;
        self.at = Instant::now();
        (self.in_rate, self.time_per_sample)
    }
}

/// Prometheus's `calculateDesiredShards`: enough shards to send what comes in plus 5% of the
/// backlog per second; changes within ±30% of the current count are ignored, and no shards
/// are taken away while more than 10 s behind.
fn desired_shards(
    current: usize,
    in_rate: f64,
    time_per_sample: f64,
    delay_s: f64,
    q: &crate::config::QueueConfig,
) -> usize {
    if time_per_sample <= 0.0 {
        return current.clamp(q.min_shards, q.max_shards);
    }
    let pending = delay_s * in_rate;
    let desired = time_per_sample * (in_rate + 0.05 * pending);
    let (low, high) = (current as f64 * 0.7, current as f64 * 1.3);
    if desired > low && desired < high {
        return current.clamp(q.min_shards, q.max_shards);
    }
    let mut n = desired.ceil() as usize;
    if n < current && delay_s > 10.0 {
        n = current;
    }
    n.clamp(q.min_shards, q.max_shards)
}

async fn run_shard(ep: Arc<Endpoint>, mut rx: mpsc::Receiver<Item>) {
    let q = &ep.cfg.queue_config;
    let deadline = q.batch_send_deadline.as_std();
    let mut batch: Vec<Item> = Vec::with_capacity(q.max_samples_per_send);
    let mut batch_started = tokio::time::Instant::now();
    loop {
        let wait = tokio::time::sleep_until(batch_started + deadline);
        tokio::select! {
            item = rx.recv() => match item {
                Some(item) => {
                    if batch.is_empty() {
                        batch_started = tokio::time::Instant::now();
                    }
                    batch.push(item);
                    if batch.len() >= q.max_samples_per_send {
                        send_samples(&ep, &batch).await;
                        batch.clear();
                    }
                }
                None => {
                    if !batch.is_empty() {
                        send_samples(&ep, &batch).await;
                    }
                    return;
                }
            },
            _ = wait => {
                if !batch.is_empty() {
                    send_samples(&ep, &batch).await;
                    batch.clear();
                }
                batch_started = tokio::time::Instant::now();
            }
        }
    }
}

fn to_proto(labels: &Labels) -> Vec<Label> {
    labels
        .iter()
        .map(|l: &ModelLabel| Label {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect()
}

async fn send_samples(ep: &Endpoint, batch: &[Item]) {
    let req = WriteRequest {
        timeseries: batch
            .iter()
            .map(|i| TimeSeries {
                labels: to_proto(&i.labels),
                samples: vec![Sample {
                    value: i.v,
                    timestamp: i.t,
                }],
            })
            .collect(),
        metadata: Vec::new(),
    };
    let n = batch.len() as u64;
    let m = &ep.metrics;
    let started = Instant::now();
    match send_with_retries(ep, &req, n, false).await {
        Outcome::Sent(bytes) => {
            m.samples.get_or_create(&ep.labels).inc_by(n);
            m.bytes.get_or_create(&ep.labels).inc_by(bytes);
            let highest = batch.iter().map(|i| i.t).max().unwrap_or(0);
            let prev = ep.highest_sent_ms.fetch_max(highest, Ordering::Relaxed);
            m.highest_sent
                .get_or_create(&ep.labels)
                .set(prev.max(highest) / 1000);
            ep.sent.fetch_add(n, Ordering::Relaxed);
            ep.send_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Outcome::Failed => {
            m.samples_failed.get_or_create(&ep.labels).inc_by(n);
        }
    }
}

enum Outcome {
    Sent(u64),
    Failed,
}

/// Posts `req` until it is accepted, refused for good, or the node stops.
async fn send_with_retries(ep: &Endpoint, req: &WriteRequest, n: u64, metadata: bool) -> Outcome {
    let q = &ep.cfg.queue_config;
    let body = match snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot compress a remote write request");
            return Outcome::Failed;
        }
    };
    let bytes = body.len() as u64;
    let mut backoff = q.min_backoff.as_std();
    let m = &ep.metrics;
    loop {
        let started = Instant::now();
        let result = post(ep, body.clone()).await;
        m.sent_batch_duration
            .get_or_create(&ep.labels)
            .observe(started.elapsed().as_secs_f64());
        let retry_reason = match result {
            Ok(status) if status.is_success() => return Outcome::Sent(bytes),
            Ok(status)
                if status.is_server_error() || (status.as_u16() == 429 && q.retry_on_http_429) =>
            {
                format!("server returned HTTP status {status}")
            }
            Ok(status) => {
                tracing::error!(url = %ep.cfg.url, %status, "remote write refused, dropping the batch");
                return Outcome::Failed;
            }
            Err(e) => e,
        };
        if metadata {
            m.metadata_retried.get_or_create(&ep.labels).inc_by(n);
        } else {
            m.samples_retried.get_or_create(&ep.labels).inc_by(n);
        }
        tracing::debug!(url = %ep.cfg.url, reason = %retry_reason, ?backoff, "remote write will retry");
        tokio::select! {
            _ = ep.stop.cancelled() => return Outcome::Failed,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(q.max_backoff.as_std());
    }
}

async fn post(ep: &Endpoint, body: Vec<u8>) -> Result<reqwest::StatusCode, String> {
    let mut req = ep
        .client
        .post(&ep.cfg.url)
        .timeout(ep.cfg.remote_timeout.as_std())
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (k, v) in &ep.cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let base = ep.resolve_base.clone();
    let req =
        crate::httpclient::apply_auth(req, &ep.cfg.http_client().auth_header(), |p| base.join(p))
            .map_err(|e| e.to_string())?;
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| crate::httpclient::error_chain(&e))?;
    Ok(resp.status())
}

async fn send_metadata_loop(ep: Arc<Endpoint>, source: MetadataSource) {
    let every = ep.cfg.metadata_config.send_interval.as_std();
    let per_request = ep.cfg.metadata_config.max_samples_per_send.max(1);
    loop {
        tokio::select! {
            _ = ep.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let all = source();
        for chunk in all.chunks(per_request) {
            let req = WriteRequest {
                timeseries: Vec::new(),
                metadata: chunk.to_vec(),
            };
            let n = chunk.len() as u64;
            match send_with_retries(&ep, &req, n, true).await {
                Outcome::Sent(bytes) => {
                    ep.metrics.metadata.get_or_create(&ep.labels).inc_by(n);
                    ep.metrics
                        .metadata_bytes
                        .get_or_create(&ep.labels)
                        .inc_by(bytes);
                }
                Outcome::Failed => {
                    ep.metrics
                        .metadata_failed
                        .get_or_create(&ep.labels)
                        .inc_by(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::QueueConfig;

    #[test]
    fn shards_follow_load_within_the_dead_band_and_bounds() {
        let q = QueueConfig::default();
        // 10k samples/s at 1 ms each: 10 shards.
        assert_eq!(desired_shards(1, 10_000.0, 0.001, 0.0, &q), 10);
        // Within ±30%: unchanged.
        assert_eq!(desired_shards(10, 11_000.0, 0.001, 0.0, &q), 10);
        // Behind by a minute: no shards taken away.
        assert_eq!(desired_shards(10, 1_000.0, 0.001, 60.0, &q), 10);
        assert_eq!(desired_shards(10, 1_000.0, 0.001, 0.0, &q), 1);
        assert_eq!(desired_shards(1, 1e9, 1.0, 0.0, &q), q.max_shards);
        assert_eq!(desired_shards(3, 0.0, 0.0, 0.0, &q), 3);
    }

    #[test]
    fn external_labels_fill_in_and_relabeling_applies() {
        let cfg: RemoteWriteConfig = serde_norway::from_str(
            "url: http://r/w\nwrite_relabel_configs: [{source_labels: [__name__], regex: drop_me, action: drop}]",
        )
        .unwrap();
        let ext = Labels::from_pairs([("cluster", "c1"), ("job", "ext")]);
        let l = outgoing_labels(
            &Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            &ext,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            l,
            Labels::from_pairs([("__name__", "up"), ("cluster", "c1"), ("job", "a")])
        );
        assert!(
            outgoing_labels(&Labels::from_pairs([("__name__", "drop_me")]), &ext, &cfg).is_none()
        );
    }
}
