//! Remote-write receive for the pool: `POST /api/v1/write` (Prometheus's path) and
//! `POST /api/v1/receive` (Thanos's) on any node. A request is decoded and checked whole
//! before anything is stored (a bad payload answers 400, limits 413/429, and nothing is
//! written); each series gets its tenant label and is placed by `cluster::hashring` on
//! `cluster.receive_replication` live ScraperShippers; each node's share is appended locally or
//! sent to the peer as one remote-write request marked with `X-Strata-Receive-Replica` (the
//! peer stores it without re-routing, Thanos's `THANOS-REPLICA`). The answer is 204 only when
//! every series reached the write quorum (`hashring::write_quorum`); 409 when some samples
//! were refused as out of order or out of bounds (Thanos: the sender drops the batch); 503
//! otherwise, so Prometheus retries, and a retry is harmless because re-appending a stored
//! `(t, v)` is an ignored duplicate. A replica answers only after its WAL commit returned, which
//! has handed the records to the OS (`storage::wal`): an acknowledged sample survives a
//! SIGKILL of any node (not a power loss, unless `wal_fsync` is on).
//!
//! Tenants (Thanos receive): the tenant is the `receive.tenant_header` value or
//! `receive.default_tenant`; it becomes the label `receive.tenant_label` (`tenant_id`) on every
//! series, which is how it shows in queries (Thanos shows it as an external label of the
//! tenant's TSDB; in Strata it is a series label, so `{tenant_id="team-a"}` selects a tenant).
//! On `/api/v1/write` the label is added only when the request names a tenant, so a plain
//! Prometheus writing there sees its series unchanged. Each copy is stored under its node's
//! replica label (`cluster.replica_label`, shipped with the blocks), which is what the query
//! side deduplicates.
//!
//! Metrics: `thanos_receive_replications_total{result}`, `thanos_receive_forward_requests_total
//! {result}`, `thanos_receive_write_timeseries_total{tenant}`,
//! `thanos_receive_write_samples_total{tenant}`, `strata_receive_requests_total{handler,code}`,
//! `strata_receive_conflict_samples_total`, `strata_receive_limit_hits_total{limit}`,
//! `strata_receive_inflight_requests`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use prost::Message;

use super::remote_write::{
    decode, ProtoLabel, ProtoSample, RemoteWriteError, TimeSeries, WriteBatch, WriteRequest,
};
use super::Router;
use crate::cluster::hashring::{self, HashringError, ReplicaOutcome, WriteVerdict};
use crate::config::{ReceiveConfig, Role};
use crate::storage::db::Db;
use crate::storage::head::HeadError;

/// Marks a replica write from a peer: store here, never re-route. Its value is the sender.
pub const REPLICA_HEADER: &str = "X-Strata-Receive-Replica";

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("bad remote-write payload: {0}")]
    Payload(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("tenant {tenant:?} is over its limit of {limit} samples/s")]
    RateLimited { tenant: String, limit: u64 },
    #[error("too many remote-write requests in flight ({0}); retry later")]
    Overloaded(usize),
    #[error("invalid tenant {0:?}")]
    Tenant(String),
    #[error(transparent)]
    Placement(#[from] HashringError),
    #[error("no scraper_shipper role receives samples on node {0}")]
    NotReceiving(String),
    #[error("write quorum not reached: {0}")]
    Quorum(String),
    #[error("some samples were refused (out of order, out of bounds or a new value at a stored timestamp): {0}")]
    Conflict(String),
    #[error("local append failed: {0}")]
    Storage(String),
}

pub type Result<T> = std::result::Result<T, ReceiveError>;

impl ReceiveError {
    /// The status Prometheus and Thanos answer, which decides whether the sender retries
    /// (5xx, and 429 with `retry_on_http_429`) or drops the batch (other 4xx).
    pub fn status(&self) -> StatusCode {
        match self {
            ReceiveError::Payload(_) | ReceiveError::Tenant(_) => StatusCode::BAD_REQUEST,
            ReceiveError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ReceiveError::Conflict(_) => StatusCode::CONFLICT,
            ReceiveError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ReceiveError::Overloaded(_)
            | ReceiveError::Placement(_)
            | ReceiveError::NotReceiving(_)
            | ReceiveError::Quorum(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn limit_name(&self) -> Option<&'static str> {
        match self {
            ReceiveError::TooLarge(_) => Some("request"),
            ReceiveError::RateLimited { .. } => Some("tenant_rate"),
            ReceiveError::Overloaded(_) => Some("concurrency"),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    handler: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: String,
}

/// The receive metrics (see the module docs for the names).
#[derive(Clone, Debug, Default)]
pub struct ReceiveMetrics {
    replications: Family<ResultLabel, Counter>,
    forwards: Family<ResultLabel, Counter>,
    timeseries: Family<TenantLabel, Counter>,
    samples: Family<TenantLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    conflicts: Counter,
    limit_hits: Family<LimitLabel, Counter>,
    inflight: Gauge,
}

impl ReceiveMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = ReceiveMetrics::default();
        let thanos = registry.sub_registry_with_prefix("thanos_receive");
        thanos.register(
            "replications",
            "Replica writes of receive requests, by result",
            m.replications.clone(),
        );
        thanos.register(
            "forward_requests",
            "Writes sent to peer nodes, by result",
            m.forwards.clone(),
        );
        thanos.register(
            "write_timeseries",
            "Series received per tenant (before replication)",
            m.timeseries.clone(),
        );
        thanos.register(
            "write_samples",
            "Samples received per tenant (before replication)",
            m.samples.clone(),
        );
        let strata = registry.sub_registry_with_prefix("strata_receive");
        strata.register(
            "requests",
            "Remote-write requests answered, by handler and status code",
            m.requests.clone(),
        );
        strata.register(
            "conflict_samples",
            "Samples refused by this node's head as out of order, out of bounds or conflicting",
            m.conflicts.clone(),
        );
        strata.register(
            "limit_hits",
            "Requests refused by a limit (request size, tenant rate, concurrency)",
            m.limit_hits.clone(),
        );
        strata.register(
            "inflight_requests",
            "Remote-write requests being served now",
            m.inflight.clone(),
        );
        m
    }
}

/// Token bucket per tenant: `rate` samples/s with one second of burst.
#[derive(Default)]
struct TenantRates {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl TenantRates {
    fn take(&self, tenant: &str, rate: u64, n: usize, now: Instant) -> bool {
        let rate = rate as f64;
        let mut buckets = self.buckets.lock();
        let (tokens, last) = buckets.entry(tenant.to_string()).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        // A request larger than a second's worth passes when the bucket is full, then owes it.
        if *tokens >= (n as f64).min(rate) {
            *tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

/// What the receive handlers need, built once by the node.
pub struct ReceiveState {
    pub router: Arc<Router>,
    pub db: Arc<Db>,
    pub config: ReceiveConfig,
    pub replication: usize,
    /// `web.route_prefix`, shared by every node, for the peers' URLs.
    pub route_prefix: String,
    client: reqwest::Client,
    inflight: AtomicI64,
    rates: TenantRates,
    metrics: ReceiveMetrics,
}

impl ReceiveState {
    pub fn new(
        router: Arc<Router>,
        db: Arc<Db>,
        config: ReceiveConfig,
        replication: usize,
        route_prefix: String,
        metrics: ReceiveMetrics,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.forward_timeout.as_std())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        ReceiveState {
            router,
            db,
            config,
            replication: replication.max(1),
            route_prefix,
            client,
            inflight: AtomicI64::new(0),
            rates: TenantRates::default(),
            metrics,
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/write", web::post().to(write))
        .route("/api/v1/receive", web::post().to(receive));
}

async fn write(req: HttpRequest, state: web::Data<ReceiveState>, body: web::Bytes) -> HttpResponse {
    serve(&req, &state, body, Handler::Write).await
}

async fn receive(
    req: HttpRequest,
    state: web::Data<ReceiveState>,
    body: web::Bytes,
) -> HttpResponse {
    serve(&req, &state, body, Handler::Receive).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// Prometheus's path: the tenant label only when the request names a tenant.
    Write,
    /// Thanos's path: always a tenant label.
    Receive,
}

struct InflightGuard<'a>(&'a ReceiveState);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.inflight.dec();
    }
}

async fn serve(
    req: &HttpRequest,
    state: &ReceiveState,
    body: web::Bytes,
    handler: Handler,
) -> HttpResponse {
    state.inflight.fetch_add(1, Ordering::Relaxed);
    state.metrics.inflight.inc();
    let guard = InflightGuard(state);
    let result = handle(req, state, body, handler).await;
    drop(guard);
    let name = match handler {
        Handler::Write => "write",
        Handler::Receive => "receive",
    };
    let resp = match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => {
            if let Some(limit) = e.limit_name() {
                state
                    .metrics
                    .limit_hits
                    .get_or_create(&LimitLabel {
                        limit: limit.to_string(),
                    })
                    .inc();
            }
            if e.status().is_server_error() {
                tracing::warn!(error = %e, "remote write not acknowledged");
            } else {
                tracing::debug!(error = %e, "remote write refused");
            }
            HttpResponse::build(e.status())
                .content_type("text/plain; charset=utf-8")
                .body(format!("{e}\n"))
        }
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            handler: name.to_string(),
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

async fn handle(
    req: &HttpRequest,
    state: &ReceiveState,
    body: web::Bytes,
    handler: Handler,
) -> Result<()> {
    let limits = &state.config.limits;
    if limits.max_concurrency > 0
        && state.inflight.load(Ordering::Relaxed) > limits.max_concurrency as i64
    {
        return Err(ReceiveError::Overloaded(limits.max_concurrency));
    }
    if limits.max_body_size.0 > 0 && body.len() as u64 > limits.max_body_size.0 {
        return Err(ReceiveError::TooLarge(format!(
            "request body of {} bytes is over the limit of {}",
            body.len(),
            limits.max_body_size
        )));
    }
    if req.headers().contains_key(REPLICA_HEADER) {
        return store_replica(state, body).await;
    }
    let header = req
        .headers()
        .get(state.config.tenant_header.as_str())
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ReceiveError::Tenant("<not UTF-8>".to_string()))?
        .filter(|t| !t.is_empty());
    let tenant = match &header {
        Some(t) => validate_tenant(t)?,
        None => state.config.default_tenant.clone(),
    };
    let mut batch = web::block(move || decode(&body))
        .await
        .map_err(|e| ReceiveError::Storage(e.to_string()))?
        .map_err(payload_error)?;
    check_request_limits(
        &batch,
        limits.max_series_per_request,
        limits.max_samples_per_request,
    )?;
    let samples: usize = batch.iter().map(|(_, s)| s.len()).sum();
    if limits.tenant_samples_per_second > 0
        && !state.rates.take(
            &tenant,
            limits.tenant_samples_per_second,
            samples,
            Instant::now(),
        )
    {
        return Err(ReceiveError::RateLimited {
            tenant,
            limit: limits.tenant_samples_per_second,
        });
    }
    if handler == Handler::Receive || header.is_some() {
        let label = state.config.tenant_label.as_str();
        for (labels, _) in batch.iter_mut() {
            *labels = labels.with(label, &tenant);
        }
    }
    let tenant_label = TenantLabel { tenant };
    state
        .metrics
        .timeseries
        .get_or_create(&tenant_label)
        .inc_by(batch.len() as u64);
    state
        .metrics
        .samples
        .get_or_create(&tenant_label)
        .inc_by(samples as u64);
    replicate(state, Arc::new(batch)).await
}

/// A body that does not decode is a bad payload (400), one that decodes too large is 413.
fn payload_error(e: RemoteWriteError) -> ReceiveError {
    match e {
        RemoteWriteError::TooLarge(_) => ReceiveError::TooLarge(e.to_string()),
        e => ReceiveError::Payload(e.to_string()),
    }
}

/// Tenants name TSDBs and label values; Thanos refuses path separators in them.
fn validate_tenant(t: &str) -> Result<String> {
    if t.contains('/') || t.contains('\\') || t == "." || t == ".." {
        return Err(ReceiveError::Tenant(t.to_string()));
    }
    Ok(t.to_string())
}

/// Thanos's per-request limits (413); 0 is unlimited.
pub fn check_request_limits(
    batch: &WriteBatch,
    max_series: usize,
    max_samples: usize,
) -> Result<()> {
    if max_series > 0 && batch.len() > max_series {
        return Err(ReceiveError::TooLarge(format!(
            "request has {} series, over the limit of {max_series}",
            batch.len()
        )));
    }
    let samples: usize = batch.iter().map(|(_, s)| s.len()).sum();
    if max_samples > 0 && samples > max_samples {
        return Err(ReceiveError::TooLarge(format!(
            "request has {samples} samples, over the limit of {max_samples}"
        )));
    }
    Ok(())
}

/// Places the series, writes every node's share at once, and folds the answers.
async fn replicate(state: &ReceiveState, batch: Arc<WriteBatch>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let local = state.router.node_id.clone();
    let peers = state
        .router
        .cluster
        .live_peers_with_role(Role::ScraperShipper);
    let mut holders: Vec<String> = peers.iter().map(|p| p.node_id.clone()).collect();
    if state.router.runs(Role::ScraperShipper) {
        holders.push(local.clone());
    }
    let keys: Vec<u64> = batch
        .iter()
        .map(|(labels, _)| hashring::series_key(labels))
        .collect();
    let placement = hashring::place(&keys, &holders, state.replication)?;
    let addrs: HashMap<&str, std::net::SocketAddr> = peers
        .iter()
        .map(|p| (p.node_id.as_str(), p.http_addr))
        .collect();
    let writes = placement.by_node.iter().map(|(node, indexes)| {
        let batch = batch.clone();
        let addr = addrs.get(node.as_str()).copied();
        let is_local = *node == local;
        async move {
            let outcome = if is_local {
                store_local(state, batch, Some(indexes.clone())).await
            } else {
                match addr {
                    Some(addr) => send_replica(state, addr, &batch, indexes).await,
                    None => (ReplicaOutcome::Failed, Some(format!("{node}: no address"))),
                }
            };
            (node.clone(), outcome)
        }
    });
    let results = futures::future::join_all(writes).await;
    let mut outcomes = BTreeMap::new();
    let mut problems = Vec::new();
    for (node, (outcome, problem)) in results {
        let result = match outcome {
            ReplicaOutcome::Stored => "success",
            ReplicaOutcome::Conflict => "conflict",
            ReplicaOutcome::Failed => "error",
        };
        state
            .metrics
            .replications
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        if let Some(p) = problem {
            problems.push(format!("{node}: {p}"));
        }
        outcomes.insert(node, outcome);
    }
    match hashring::verdict(&placement, &outcomes) {
        WriteVerdict::Acknowledged => Ok(()),
        WriteVerdict::Conflict => Err(ReceiveError::Conflict(problems.join("; "))),
        WriteVerdict::Retry => Err(ReceiveError::Quorum(problems.join("; "))),
    }
}

/// A peer's share, stored here as it is.
async fn store_replica(state: &ReceiveState, body: web::Bytes) -> Result<()> {
    if !state.router.runs(Role::ScraperShipper) {
        return Err(ReceiveError::NotReceiving(state.router.node_id.clone()));
    }
    let batch = web::block(move || decode(&body))
        .await
        .map_err(|e| ReceiveError::Storage(e.to_string()))?
        .map_err(payload_error)?;
    match store_local(state, Arc::new(batch), None).await {
        (ReplicaOutcome::Stored, _) => Ok(()),
        (ReplicaOutcome::Conflict, p) => Err(ReceiveError::Conflict(p.unwrap_or_default())),
        (ReplicaOutcome::Failed, p) => Err(ReceiveError::Storage(p.unwrap_or_default())),
    }
}

async fn store_local(
    state: &ReceiveState,
    batch: Arc<WriteBatch>,
    indexes: Option<Vec<usize>>,
) -> (ReplicaOutcome, Option<String>) {
    if !state.router.runs(Role::ScraperShipper) {
        return (
            ReplicaOutcome::Failed,
            Some("the scraper_shipper role stopped here".to_string()),
        );
    }
    let db = state.db.clone();
    let appended = web::block(move || append_tolerant(&db, &batch, indexes.as_deref())).await;
    match appended {
        Ok(Ok(report)) if report.refused == 0 => (ReplicaOutcome::Stored, None),
        Ok(Ok(report)) => {
            state.metrics.conflicts.inc_by(report.refused);
            (
                ReplicaOutcome::Conflict,
                Some(format!(
                    "{} sample(s) refused, first: {}",
                    report.refused,
                    report.first_refusal.unwrap_or_default()
                )),
            )
        }
        Ok(Err(e)) => (ReplicaOutcome::Failed, Some(e.to_string())),
        Err(e) => (ReplicaOutcome::Failed, Some(e.to_string())),
    }
}

async fn send_replica(
    state: &ReceiveState,
    addr: std::net::SocketAddr,
    batch: &WriteBatch,
    indexes: &[usize],
) -> (ReplicaOutcome, Option<String>) {
    let body = encode_indexed(batch, indexes);
    let url = format!("http://{addr}{}/api/v1/receive", state.route_prefix);
    let sent = state
        .client
        .post(url)
        .header(REPLICA_HEADER, state.router.node_id.as_str())
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await;
    let (outcome, problem) = match sent {
        Ok(resp) if resp.status().is_success() => (ReplicaOutcome::Stored, None),
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let outcome = if status == reqwest::StatusCode::CONFLICT {
                ReplicaOutcome::Conflict
            } else {
                ReplicaOutcome::Failed
            };
            (outcome, Some(format!("{status}: {}", text.trim())))
        }
        Err(e) => (ReplicaOutcome::Failed, Some(e.to_string())),
    };
    let result = if outcome == ReplicaOutcome::Failed {
        "error"
    } else {
        "success"
    };
    state
        .metrics
        .forwards
        .get_or_create(&ResultLabel {
            result: result.to_string(),
        })
        .inc();
    (outcome, problem)
}

/// Encodes the series at `indexes` as one snappy-compressed `WriteRequest`.
pub fn encode_indexed(batch: &WriteBatch, indexes: &[usize]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: indexes
            .iter()
            .filter_map(|&i| batch.get(i))
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|l| ProtoLabel {
                        name: l.name.to_string(),
                        value: l.value.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| ProtoSample { value, timestamp })
                    .collect(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// What a tolerant append stored and refused.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub refused: u64,
    pub first_refusal: Option<String>,
}

/// Appends the series at `indexes` (all when `None`) as one commit, skipping (and counting)
/// samples the head refuses one by one — out of order, out of bounds, a new value at a
/// stored timestamp — as Thanos's receive writer does. A `(t, v)` that is already stored is a
/// no-op, also below the series' last sample (a retried request: the head compares with the
/// last sample only, so such samples are looked up in the stored data before they count as
/// refused). Only a storage failure (WAL) fails the whole append, and then nothing is stored.
pub fn append_tolerant(
    db: &Db,
    batch: &WriteBatch,
    indexes: Option<&[usize]>,
) -> std::result::Result<AppendReport, HeadError> {
    let mut app = db.appender();
    let mut report = AppendReport::default();
    // Per series (batch index), the samples refused as out of order: maybe already stored.
    let mut older: Vec<(usize, Vec<(i64, f64)>)> = Vec::new();
    let mut one = |i: usize| -> std::result::Result<(), HeadError> {
        let Some((labels, samples)) = batch.get(i) else {
            return Ok(());
        };
        let mut series_ref = 0;
        for &(t, v) in samples {
            match app.append(series_ref, labels, t, v) {
                Ok(r) => series_ref = r,
                Err(HeadError::OutOfOrder) => match older.last_mut() {
                    Some((j, s)) if *j == i => s.push((t, v)),
                    _ => older.push((i, vec![(t, v)])),
                },
                Err(
                    e @ (HeadError::OutOfBounds
                    | HeadError::DuplicateTimestamp
                    | HeadError::EmptyLabels),
                ) => report.refuse(&e, labels, t),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    match indexes {
        Some(idx) => idx.iter().try_for_each(|&i| one(i))?,
        None => (0..batch.len()).try_for_each(&mut one)?,
    }
    app.commit()?;
    for (i, samples) in older {
        let Some((labels, _)) = batch.get(i) else {
            continue;
        };
        let stored = stored_samples(db, labels, &samples);
        for (t, v) in samples {
            if !stored.contains(&(t, v.to_bits())) {
                report.refuse(&HeadError::OutOfOrder, labels, t);
            }
        }
    }
    Ok(report)
}

impl AppendReport {
    fn refuse(&mut self, e: &HeadError, labels: &crate::storage::model::Labels, t: i64) {
        self.refused += 1;
        if self.first_refusal.is_none() {
            self.first_refusal = Some(format!("{e} for {labels} at {t}"));
        }
    }
}

/// The stored `(t, value bits)` of the series `labels` over the span of `samples`.
fn stored_samples(
    db: &Db,
    labels: &crate::storage::model::Labels,
    samples: &[(i64, f64)],
) -> std::collections::HashSet<(i64, u64)> {
    use crate::storage::chunkenc::SeriesIterator;
    use crate::storage::model::{Matcher, Queryable, SelectHints};
    let mut out = std::collections::HashSet::new();
    let (lo, hi) = samples
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &(t, _)| {
            (lo.min(t), hi.max(t))
        });
    let matchers: Vec<Matcher> = labels
        .iter()
        .map(|l| Matcher::equal(l.name.to_string(), l.value.to_string()))
        .collect();
    let Ok(found) = db.select(&matchers, lo, hi, &SelectHints::default()) else {
        return out;
    };
    for s in found.into_iter().filter(|s| s.labels == *labels) {
        let mut it = SeriesIterator::new(s.chunks);
        while let Ok(Some(x)) = it.next() {
            if x.t >= lo && x.t <= hi {
                out.insert((x.t, x.v.to_bits()));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "receive_tests.rs"]
mod tests;
