//! Wires one Strata node: binds nothing itself (listeners come in, so tests can use port 0),
//! builds the metrics registry and the shared resources downstream-first, starts the supervisor
//! with the configured roles and the HTTP server, and returns a handle. `main` and the tests
//! call the same `start`. Must run inside an actix `System`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix::prelude::*;
use actix_web::web;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::actors::supervisor::{NodeSupervisor, StopAll};
use crate::actors::{NodeRoleFactory, RoleContext, RunningRoles};
use crate::config::{Config, Role};
use crate::http::query::QueryService;
use crate::promql::{Engine, EngineOptions};
use crate::storage::bucket::config::{open_bucket, BucketConfig as BucketSettings, BucketKind, FilesystemConfig, S3Config};
use crate::storage::bucket::shipper::{Shipper, ShipperConfig};
use crate::storage::db::{Db, DbOptions};
use crate::storage::model::{Labels, Queryable};
use crate::http;
use crate::metrics::{BuildInfo, NodeMetrics};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {what} address {addr}: {source}")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error("cannot read admin token file {path}: {source}")]
    TokenFile { path: String, source: std::io::Error },
    #[error("admin token file {0} is empty")]
    EmptyToken(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open the bucket: {0}")]
    Bucket(#[from] crate::storage::bucket::BucketError),
    #[error("cannot open the local TSDB: {0}")]
    Db(#[from] crate::storage::db::DbError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
}

pub type Result<T> = std::result::Result<T, NodeError>;

/// The sockets a node serves on, bound before `start` so that port 0 works and so that a bad
/// address fails before anything has started.
pub struct Listeners {
    pub web: TcpListener,
}

impl Listeners {
    pub fn bind(config: &Config) -> Result<Self> {
        let addr = config.node.web_listen.to_string();
        let web = TcpListener::bind(&addr).map_err(|source| NodeError::Bind { what: "web", addr, source })?;
        Ok(Listeners { web })
    }
}

/// What HTTP handlers share: the node's identity, its supervisor and its metrics.
pub struct NodeState {
    pub node_id: String,
    pub config: Arc<Config>,
    pub supervisor: Addr<NodeSupervisor>,
    pub running: Arc<RunningRoles>,
    pub registry: Arc<Registry>,
    pub build: BuildInfo,
    pub flags: BTreeMap<String, String>,
    pub admin_token: Option<String>,
    pub fault_injection: bool,
    pub db: Arc<Db>,
    pub query: Arc<QueryService>,
}

impl NodeState {
    /// The local TSDB when this node's scraper_shipper role takes samples in.
    pub fn db_for_ingest(&self) -> Option<Arc<Db>> {
        self.running.contains(Role::ScraperShipper).then(|| self.db.clone())
    }
}

/// Start-time options that are not part of the config file.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// The command-line flags as `/api/v1/status/flags` shows them.
    pub flags: BTreeMap<String, String>,
    /// Enables the test-only fault switch of the admin API.
    pub fault_injection: bool,
    /// HTTP worker threads; 0 = 2.
    pub http_workers: usize,
}

pub struct NodeHandle {
    pub web_addr: SocketAddr,
    pub supervisor: Addr<NodeSupervisor>,
    shutdown: CancellationToken,
    done: tokio::sync::oneshot::Receiver<()>,
}

impl NodeHandle {
    /// Asks the node to stop and waits until every role has stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the node has stopped (after its shutdown token was cancelled).
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

fn read_admin_token(config: &Config) -> Result<Option<String>> {
    let Some(path) = config.admin.token_file.as_ref() else { return Ok(None) };
    let path_s = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::TokenFile { path: path_s.clone(), source })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(NodeError::EmptyToken(path_s));
    }
    Ok(Some(token))
}

/// Prometheus's default `--query.max-concurrency`.
const MAX_CONCURRENT_QUERIES: usize = 20;

/// Opens (and replays) the local TSDB off the async workers. Retention of local blocks is the
/// scraper_shipper's job, because a block may only go once it is shipped.
async fn open_db(config: &Config, dir: &std::path::Path) -> Result<Arc<Db>> {
    let opts = DbOptions {
        block_duration_ms: config.tsdb.block_duration.as_millis() as i64,
        retention_ms: 0,
        ..DbOptions::default()
    };
    let dir = dir.to_path_buf();
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts))
        .await
        .map_err(|e| NodeError::Db(crate::storage::db::DbError::Options(format!("TSDB open task failed: {e}"))))??;
    Ok(Arc::new(db))
}

/// The bucket section of the config in the shape the bucket layer takes. S3 keys come from the
/// config or, when absent there, from the usual AWS environment variables.
pub fn bucket_config(cfg: &crate::config::BucketConfig) -> BucketSettings {
    use crate::config::BucketType;
    let secret = |s: &crate::config::Secret| (!s.is_empty()).then(|| s.expose().to_string());
    match cfg.bucket_type {
        BucketType::Filesystem => BucketSettings {
            kind: BucketKind::Filesystem,
            filesystem: Some(FilesystemConfig { dir: cfg.filesystem.dir.clone() }),
            s3: None,
            retry: Default::default(),
        },
        BucketType::S3 => {
            let s3 = S3Config {
                endpoint: cfg.s3.endpoint.clone(),
                bucket: cfg.s3.bucket.clone(),
                region: cfg.s3.region.clone(),
                path_style: cfg.s3.path_style,
                access_key: secret(&cfg.s3.access_key),
                secret_key: secret(&cfg.s3.secret_key),
                request_timeout_secs: 300,
                multipart_threshold_bytes: None,
            };
            BucketSettings { kind: BucketKind::S3, filesystem: None, s3: Some(s3), retry: Default::default() }
        }
    }
}

/// The external labels blocks are shipped with: the configured ones plus this node's replica
/// label, so that replicas of the same targets stay distinct streams the query side dedups.
pub fn shipping_labels(config: &Config) -> std::collections::BTreeMap<String, String> {
    let mut labels = config.global.external_labels.clone();
    labels.entry(config.cluster.replica_label.clone()).or_insert_with(|| config.node.id.clone());
    labels
}

/// Starts a node on the given listeners; the node stops when `shutdown` is cancelled.
pub async fn start(config: Config, listeners: Listeners, shutdown: CancellationToken, opts: StartOptions) -> Result<NodeHandle> {
    let config = Arc::new(config);
    let admin_token = read_admin_token(&config)?;
    let tsdb_dir = config.node.tsdb_dir();
    std::fs::create_dir_all(&tsdb_dir).map_err(|source| NodeError::DataDir { path: tsdb_dir.display().to_string(), source })?;
    let db = open_db(&config, &tsdb_dir).await?;
    let web_addr = listeners.web.local_addr().map_err(|source| NodeError::Bind {
        what: "web",
        addr: config.node.web_listen.to_string(),
        source,
    })?;

    let build = BuildInfo::current();
    let mut registry = Registry::default();
    let metrics = Arc::new(NodeMetrics::register(&mut registry, &build));

    let external_labels = Labels::from_pairs(config.global.external_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let queryable: Arc<dyn Queryable> = db.clone();
    let query = Arc::new(QueryService::new(Engine::new(EngineOptions::default()), queryable, MAX_CONCURRENT_QUERIES, external_labels));
    let bucket = open_bucket(&bucket_config(&config.bucket), &mut registry)?;
    let shipper = Arc::new(Shipper::new(
        ShipperConfig {
            tsdb_dir: tsdb_dir.clone(),
            external_labels: shipping_labels(&config),
            source: "sidecar".to_string(),
            upload_compacted: false,
        },
        bucket.clone(),
        &mut registry,
    ));
    let role_ctx = Arc::new(RoleContext { config: config.clone(), db: db.clone(), bucket, shipper });
    let factory = Arc::new(NodeRoleFactory { ctx: role_ctx });
    let running = Arc::new(RunningRoles::default());
    let supervisor = NodeSupervisor::new(&config.node.roles, factory, metrics, running.clone()).start();

    let state = web::Data::new(NodeState {
        node_id: config.node.id.clone(),
        config: config.clone(),
        supervisor: supervisor.clone(),
        running,
        registry: Arc::new(registry),
        build,
        flags: opts.flags,
        admin_token,
        fault_injection: opts.fault_injection,
        db: db.clone(),
        query,
    });
    let workers = if opts.http_workers == 0 { 2 } else { opts.http_workers };
    let server = http::serve(listeners.web, state, workers)?;
    let server_handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(node = %config.node.id, %web_addr, roles = ?config.node.roles, "node started");

    let (done_tx, done) = tokio::sync::oneshot::channel();
    let sup = supervisor.clone();
    let token = shutdown.clone();
    actix_rt::spawn(async move {
        token.cancelled().await;
        tracing::info!("shutting down: stopping HTTP, then roles in reverse order");
        server_handle.stop(true).await;
        if sup.send(StopAll).await.is_err() {
            tracing::warn!("supervisor was already gone at shutdown");
        }
        let closing = db.clone();
        match tokio::task::spawn_blocking(move || closing.close()).await {
            Ok(Ok(())) => tracing::info!("local TSDB closed"),
            Ok(Err(e)) => tracing::error!(error = %e, "closing the local TSDB failed"),
            Err(e) => tracing::error!(error = %e, "closing the local TSDB panicked"),
        }
        let _ = done_tx.send(());
    });

    Ok(NodeHandle { web_addr, supervisor, shutdown, done })
}
