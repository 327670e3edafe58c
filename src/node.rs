//! Wires one Strata node: binds nothing itself (listeners come in, so tests can use port 0),
//! builds the metrics registry and the shared resources downstream-first, starts the supervisor
//! with the configured roles and the HTTP server, and returns a handle. `main` and the tests
//! call the same `start`. Must run inside an actix `System`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;

use actix::prelude::*;
use actix_web::web;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::actors::membership::{ClusterService, ClusterSettings};
use crate::actors::rpc::NodeRpc;
use crate::actors::supervisor::{NodeSupervisor, StopAll};
use crate::actors::{NodeRoleFactory, RoleContext, RunningRoles};
use crate::cluster::transport::{TransportClient, TransportConfig, TransportServer};
use crate::config::{Config, Role};
use crate::http;
use crate::http::query::QueryService;
use crate::metrics::{BuildInfo, NodeMetrics};
use crate::promql::{Engine, EngineOptions};
use crate::query::sources::SourceSet;
use crate::storage::bucket::config::{
    open_bucket, BucketConfig as BucketSettings, BucketKind, FilesystemConfig, S3Config,
};
use crate::storage::bucket::shipper::{Shipper, ShipperConfig};
use crate::storage::bucket::ObjectStore;
use crate::storage::db::{Db, DbOptions};
use crate::storage::model::Labels;
use crate::storage::store::{BucketStore, StoreConfig};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot read admin token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("admin token file {0} is empty")]
    EmptyToken(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] crate::actors::membership::ClusterError),
    #[error("cannot start the RPC transport: {0}")]
    Transport(#[from] crate::cluster::transport::TransportError),
    #[error("cannot set up the bucket store: {0}")]
    Store(#[from] crate::storage::store::StoreError),
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
    pub gossip: UdpSocket,
    pub rpc: TcpListener,
}

impl Listeners {
    pub fn bind(config: &Config) -> Result<Self> {
        let addr = config.node.web_listen.to_string();
        let web = TcpListener::bind(&addr).map_err(|source| NodeError::Bind {
            what: "web",
            addr,
            source,
        })?;
        let addr = config.node.gossip_listen.to_string();
        let gossip = UdpSocket::bind(&addr).map_err(|source| NodeError::Bind {
            what: "gossip",
            addr,
            source,
        })?;
        let addr = config.node.rpc_listen.to_string();
        let rpc = TcpListener::bind(&addr).map_err(|source| NodeError::Bind {
            what: "rpc",
            addr,
            source,
        })?;
        Ok(Listeners { web, gossip, rpc })
    }
}

/// The address peers reach a listener on: the bound address, with a wildcard IP replaced by
/// the advertised host's IP (or loopback when nothing is advertised).
pub fn reachable(bound: SocketAddr, advertise: Option<SocketAddr>) -> SocketAddr {
    if bound.ip().is_unspecified() {
        let ip = advertise
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        SocketAddr::new(ip, bound.port())
    } else {
        bound
    }
}

/// `node.advertise` (host:port, DNS allowed) resolved to the gossip address peers use.
fn resolve_advertise(config: &Config) -> Result<Option<SocketAddr>> {
    let Some(adv) = config.node.advertise.as_deref() else {
        return Ok(None);
    };
    use std::net::ToSocketAddrs;
    let mut addrs = adv.to_socket_addrs().map_err(|source| NodeError::Bind {
        what: "advertise",
        addr: adv.to_string(),
        source,
    })?;
    addrs.next().map(Some).ok_or_else(|| NodeError::Bind {
        what: "advertise",
        addr: adv.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "resolves to no address"),
    })
}

fn read_cluster_key(config: &Config) -> Result<Option<Vec<u8>>> {
    let Some(path) = config.cluster.key_file.as_ref() else {
        return Ok(None);
    };
    let path = config.resolve_path(path);
    let text = std::fs::read_to_string(&path).map_err(|source| NodeError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(NodeError::EmptyToken(path.display().to_string()));
    }
    Ok(Some(key.as_bytes().to_vec()))
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
    /// The scrape pools, for `/api/v1/targets`, `/api/v1/metadata` and reloads.
    pub scrape: Arc<crate::scrape::ScrapeManager>,
    /// The config file `POST /-/reload` re-reads (`None`: the embedded default).
    pub config_path: Option<std::path::PathBuf>,
    pub cluster: Arc<ClusterService>,
    pub bucket: Arc<dyn ObjectStore>,
    /// When the node started (`/api/v1/status/runtimeinfo`).
    pub started_at: std::time::SystemTime,
}

impl NodeState {
    /// The local TSDB when this node's scraper_shipper role takes samples in.
    pub fn db_for_ingest(&self) -> Option<Arc<Db>> {
        self.running
            .contains(Role::ScraperShipper)
            .then(|| self.db.clone())
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
    /// The config file, re-read by `POST /-/reload` and SIGHUP.
    pub config_path: Option<std::path::PathBuf>,
}

pub struct NodeHandle {
    pub web_addr: SocketAddr,
    pub supervisor: Addr<NodeSupervisor>,
    pub cluster: Arc<ClusterService>,
    shutdown: CancellationToken,
    done: tokio::sync::oneshot::Receiver<()>,
    reloader: crate::scrape::reload::Reloader,
}

impl NodeHandle {
    /// Reloads the scrape config from the node's config file (what SIGHUP does).
    pub fn reloader(&self) -> crate::scrape::reload::Reloader {
        self.reloader.clone()
    }

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
    let Some(path) = config.admin.token_file.as_ref() else {
        return Ok(None);
    };
    let path_s = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::TokenFile {
        path: path_s.clone(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(NodeError::EmptyToken(path_s));
    }
    Ok(Some(token))
}

/// How long a node must be gone before the role policy moves its roles.
const REASSIGN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
        .map_err(|e| {
            NodeError::Db(crate::storage::db::DbError::Options(format!(
                "TSDB open task failed: {e}"
            )))
        })??;
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
            filesystem: Some(FilesystemConfig {
                dir: cfg.filesystem.dir.clone(),
            }),
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
            BucketSettings {
                kind: BucketKind::S3,
                filesystem: None,
                s3: Some(s3),
                retry: Default::default(),
            }
        }
    }
}

/// The external labels blocks are shipped with: the configured ones plus this node's replica
/// label, so that replicas of the same targets stay distinct streams the query side dedups.
pub fn shipping_labels(config: &Config) -> std::collections::BTreeMap<String, String> {
    let mut labels = config.global.external_labels.clone();
    labels
        .entry(config.cluster.replica_label.clone())
        .or_insert_with(|| config.node.id.clone());
    labels
}

/// Starts a node on the given listeners; the node stops when `shutdown` is cancelled.
pub async fn start(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    opts: StartOptions,
) -> Result<NodeHandle> {
    let config = Arc::new(config);
    let admin_token = read_admin_token(&config)?;
    let tsdb_dir = config.node.tsdb_dir();
    std::fs::create_dir_all(&tsdb_dir).map_err(|source| NodeError::DataDir {
        path: tsdb_dir.display().to_string(),
        source,
    })?;
    let db = open_db(&config, &tsdb_dir).await?;
    let web_addr = listeners
        .web
        .local_addr()
        .map_err(|source| NodeError::Bind {
            what: "web",
            addr: config.node.web_listen.to_string(),
            source,
        })?;

    let build = BuildInfo::current();
    let mut registry = Registry::default();
    let metrics = Arc::new(NodeMetrics::register(&mut registry, &build));

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
    let scrape = crate::scrape::ScrapeManager::new(db.clone(), config.clone());
    let store = Arc::new(BucketStore::new(
        bucket.clone(),
        StoreConfig::new(
            config.node.data_dir.join("store-cache"),
            config.node.id.clone(),
        ),
    )?);
    let cluster_slot = Arc::new(std::sync::OnceLock::new());
    let role_ctx = Arc::new(RoleContext {
        config: config.clone(),
        db: db.clone(),
        bucket: bucket.clone(),
        shipper,
        scrape: scrape.clone(),
        store: store.clone(),
        cluster: cluster_slot.clone(),
    });
    let factory = Arc::new(NodeRoleFactory { ctx: role_ctx });
    let running = Arc::new(RunningRoles::default());
    let supervisor =
        NodeSupervisor::new(&config.node.roles, factory, metrics, running.clone()).start();

    let advertise = resolve_advertise(&config)?;
    let gossip_addr = listeners
        .gossip
        .local_addr()
        .map_err(|source| NodeError::Bind {
            what: "gossip",
            addr: config.node.gossip_listen.to_string(),
            source,
        })?;
    let rpc_addr = listeners
        .rpc
        .local_addr()
        .map_err(|source| NodeError::Bind {
            what: "rpc",
            addr: config.node.rpc_listen.to_string(),
            source,
        })?;
    let gossip_advertise = advertise.unwrap_or_else(|| reachable(gossip_addr, None));
    let key = read_cluster_key(&config)?;
    let cluster = ClusterService::start(
        ClusterSettings {
            node_id: config.node.id.clone(),
            http_addr: reachable(web_addr, advertise),
            rpc_addr: reachable(rpc_addr, advertise),
            gossip: listeners.gossip,
            advertise: Some(gossip_advertise),
            seeds: config.cluster.join.clone(),
            key: key.clone(),
            roles: config.node.roles.clone(),
            policy: config.cluster.role_policy.clone(),
            grace: REASSIGN_GRACE,
        },
        supervisor.clone(),
    )
    .await?;
    // Scrape targets are sharded over the live ScraperShippers (this node counts itself in).
    let peers = cluster.clone();
    let live_scrapers = move || {
        peers
            .live_peers_with_role(Role::ScraperShipper)
            .into_iter()
            .map(|m| m.node_id)
            .collect()
    };
    scrape.follow_membership(
        live_scrapers,
        std::time::Duration::from_secs(2),
        shutdown.clone(),
    );
    let _ = cluster_slot.set(cluster.clone());
    let transport_cfg = TransportConfig {
        cluster_key: key,
        ..TransportConfig::default()
    };
    let sources = Arc::new(SourceSet {
        store,
        db: db.clone(),
        running: running.clone(),
        external_labels: Labels::from_pairs(shipping_labels(&config)),
        cluster: cluster.clone(),
    });
    let rpc = TransportServer::start(
        listeners.rpc,
        Arc::new(NodeRpc {
            cluster: cluster.clone(),
            sources: sources.clone(),
        }),
        transport_cfg.clone(),
    )?;
    let client = Arc::new(TransportClient::new(transport_cfg)?);
    let global_labels = Labels::from_pairs(
        config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let query = Arc::new(QueryService::new(
        Engine::new(EngineOptions::default()),
        sources,
        client,
        vec![config.cluster.replica_label.clone()],
        MAX_CONCURRENT_QUERIES,
        global_labels,
    ));

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
        cluster: cluster.clone(),
        bucket: bucket.clone(),
        scrape: scrape.clone(),
        config_path: opts.config_path.clone(),
        started_at: std::time::SystemTime::now(),
    });
    let reloader = crate::scrape::reload::Reloader {
        path: opts.config_path.clone(),
        manager: scrape,
    };
    let workers = if opts.http_workers == 0 {
        2
    } else {
        opts.http_workers
    };
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
    let leaving = cluster.clone();
    actix_rt::spawn(async move {
        token.cancelled().await;
        tracing::info!("shutting down: stopping HTTP, then roles in reverse order");
        server_handle.stop(true).await;
        leaving.leave().await;
        rpc.shutdown();
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

    Ok(NodeHandle {
        web_addr,
        supervisor,
        cluster,
        shutdown,
        done,
        reloader,
    })
}
