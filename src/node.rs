//! Wires one Strata node, and is the only module that does: it binds nothing itself (listeners
//! come in, so tests can use port 0), and `start` tells the startup story in named steps,
//! downstream-first — open storage (local TSDB, bucket, shipper, bucket store, scrape pools),
//! join the cluster, start the roles under the supervisor, start query execution (sources,
//! fan-out runtime, StoreAPI/RPC server), start HTTP with each area's own state — and returns a
//! handle. Everything the node starts (threads and runtimes included) belongs to the node and
//! stops with it. `main` and the tests call the same `start`. Must run inside an actix `System`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;

use actix::prelude::*;
use actix_web::web;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::actors::compactor::SharedStatus;
use crate::actors::metrics::RoleMetrics;
use crate::actors::supervisor::{NodeSupervisor, SetRoles, StopAll};
use crate::actors::{NodeRoleFactory, RoleContext};
use crate::cluster::running::RunningRoles;
use crate::cluster::service::{ClusterService, ClusterSettings};
use crate::cluster::transport::{TransportClient, TransportConfig, TransportServer};
use crate::config::{Config, Role};
use crate::http;
use crate::metrics::BuildInfo;
use crate::promql::{Engine, EngineOptions, Freer};
use crate::query::fanout::FanoutRuntime;
use crate::query::service::QueryService;
use crate::query::sources::SourceSet;
use crate::query::storeapi::rpc::NodeRpc;
use crate::storage::bucket::config::open_bucket;
use crate::storage::bucket::shipper::{Shipper, ShipperConfig};
use crate::storage::bucket::ObjectStore;
use crate::storage::compactor::metrics::CompactorMetrics;
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
    Cluster(#[from] crate::cluster::service::ClusterError),
    #[error("cannot start the query fan-out runtime: {0}")]
    Runtime(std::io::Error),
    #[error("alerting: {0}")]
    Notifier(String),
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
    #[error(transparent)]
    Sidecar(#[from] crate::sidecar::SidecarError),
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

/// What `open_storage` opens: the node's local TSDB, the bucket, and what reads and writes them.
struct Storage {
    db: Arc<Db>,
    /// The bucket compactor's metrics and status, kept across role moves.
    compactor_metrics: Arc<CompactorMetrics>,
    compactor_status: SharedStatus,
    bucket: Arc<dyn ObjectStore>,
    shipper: Arc<Shipper>,
    store: Arc<BucketStore>,
    scrape: Arc<crate::scrape::ScrapeManager>,
}

/// The local TSDB (replayed), the bucket, the shipper of local blocks, the bucket store a
/// StoreShard serves from, and the scrape pools. Nothing runs yet.
async fn open_storage(
    config: &Arc<Config>,
    registry: &mut Registry,
    sidecar: Option<&crate::sidecar::Sidecar>,
) -> Result<Storage> {
    let tsdb_dir = config.node.tsdb_dir();
    std::fs::create_dir_all(&tsdb_dir).map_err(|source| NodeError::DataDir {
        path: tsdb_dir.display().to_string(),
        source,
    })?;
    let db = open_db(config, &tsdb_dir).await?;
    let bucket = open_bucket(
        &crate::storage::bucket::config::from_config(&config.bucket),
        registry,
    )?;
    let shipper = Arc::new(Shipper::new(
        shipper_config(config, tsdb_dir, sidecar),
        bucket.clone(),
        registry,
    ));
    let scrape = crate::scrape::ScrapeManager::new(db.clone(), config.clone());
    let store = Arc::new(BucketStore::new(
        bucket.clone(),
        StoreConfig::new(
            config.node.data_dir.join("store-cache"),
            config.node.id.clone(),
        ),
    )?);
    Ok(Storage {
        db,
        compactor_metrics: Arc::new(CompactorMetrics::register(registry)),
        compactor_status: SharedStatus::default(),
        bucket,
        shipper,
        store,
        scrape,
    })
}

/// What the shipper ships: the node's own TSDB with its shipping labels, or in sidecar mode
/// the Prometheus data dir with Prometheus's external labels (the same shipper either way).
fn shipper_config(
    config: &Config,
    tsdb_dir: std::path::PathBuf,
    sidecar: Option<&crate::sidecar::Sidecar>,
) -> ShipperConfig {
    match sidecar {
        Some(sc) => ShipperConfig::sidecar(sc.data_dir.clone(), sc.external_labels()),
        None => ShipperConfig {
            tsdb_dir,
            external_labels: config.shipping_labels(),
            source: "sidecar".to_string(),
            upload_compacted: false,
        },
    }
}

/// Sidecar mode: checks the Prometheus beside the node (the node does not start if it
/// compacts locally or has no external labels) and keeps the shipper's labels in step with
/// Prometheus's config.
async fn connect_sidecar(config: &Config) -> Result<Option<Arc<crate::sidecar::Sidecar>>> {
    match &config.sidecar {
        None => Ok(None),
        Some(cfg) => Ok(Some(Arc::new(
            crate::sidecar::connect(cfg, &config.base_dir).await?,
        ))),
    }
}

/// The addresses the node serves on, as bound.
struct Bound {
    web: SocketAddr,
    rpc: SocketAddr,
    gossip: SocketAddr,
}

fn bound_addrs(config: &Config, listeners: &Listeners) -> Result<Bound> {
    let addr = |what: &'static str, configured: String, got: std::io::Result<SocketAddr>| {
        got.map_err(|source| NodeError::Bind {
            what,
            addr: configured,
            source,
        })
    };
    Ok(Bound {
        web: addr(
            "web",
            config.node.web_listen.to_string(),
            listeners.web.local_addr(),
        )?,
        rpc: addr(
            "rpc",
            config.node.rpc_listen.to_string(),
            listeners.rpc.local_addr(),
        )?,
        gossip: addr(
            "gossip",
            config.node.gossip_listen.to_string(),
            listeners.gossip.local_addr(),
        )?,
    })
}

/// Joins (or forms) the cluster: membership, the role assignment and the role policy.
async fn start_cluster(
    config: &Config,
    gossip: UdpSocket,
    bound: &Bound,
    key: Option<Vec<u8>>,
) -> Result<Arc<ClusterService>> {
    let advertise = resolve_advertise(config)?;
    let gossip_advertise = advertise.unwrap_or_else(|| reachable(bound.gossip, None));
    Ok(ClusterService::start(ClusterSettings {
        node_id: config.node.id.clone(),
        http_addr: reachable(bound.web, advertise),
        rpc_addr: reachable(bound.rpc, advertise),
        gossip,
        advertise: Some(gossip_advertise),
        seeds: config.cluster.join.clone(),
        key,
        roles: config.node.roles.clone(),
        policy: config.cluster.role_policy.clone(),
        grace: REASSIGN_GRACE,
    })
    .await?)
}

/// Starts the supervisor with the configured roles, keeps it reconciled to the roles the
/// cluster assigns this node, and shards scrape targets over the live ScraperShippers.
/// What the RuleEvaluator role needs beyond storage: the query service, the shared view of
/// its groups, the template expander and the alert sender.
struct RuleParts {
    query: Arc<QueryService>,
    rules: crate::rules::manager::SharedRules,
    expander: crate::actors::rule_evaluator::SharedExpander,
    alerts: Arc<dyn crate::actors::rule_evaluator::AlertSender>,
    runtime: Arc<FanoutRuntime>,
}

/// Re-reads the rule files of a reloaded config: valid ones replace the rule groups (the
/// RuleEvaluator picks them up), invalid ones keep the previous rules and fail the reload.
fn rules_reload_hook(
    rules: crate::rules::manager::SharedRules,
) -> crate::scrape::reload::ReloadHook {
    Arc::new(move |cfg: &Config| {
        let paths = cfg.rule_file_paths()?;
        match crate::rules::manager::load(&paths) {
            Ok(defs) => {
                let mut view = rules.write();
                view.set_file_groups(defs);
                view.load_errors.clear();
                view.metrics.last_reload_successful.set(1);
                Ok(())
            }
            Err(errors) => {
                let mut view = rules.write();
                view.load_errors = errors.clone();
                view.metrics.last_reload_successful.set(0);
                tracing::error!(errors = ?errors, "error loading rules, previous rule set restored");
                Err(errors.join("; "))
            }
        }
    })
}

/// Mimir's ruler config API: its groups live in the bucket and a syncer keeps this node's copy
/// (and so its RuleEvaluator's groups) equal to them. The node's one API-config signal wakes
/// the syncer after a write here or a peer's word that it wrote.
fn start_rules_api(
    config: &Config,
    storage: &Storage,
    rules: &crate::rules::manager::SharedRules,
    query: &Arc<QueryService>,
    signal: crate::apiconfig::SyncSignal,
    shutdown: &CancellationToken,
) -> http::rules_api::RulesApiState {
    http::rules_api::start(
        storage.bucket.clone(),
        rules.clone(),
        &config.rule_file_paths().unwrap_or_default(),
        query.clone(),
        config.global.evaluation_interval.as_std(),
        signal,
        shutdown.clone(),
    )
}

/// The URL alerts and templates link back to: `http://<web address>` of this node.
fn external_url(_config: &Config, bound: &Bound) -> String {
    format!("http://{}", bound.web)
}

/// The notifier as the RuleEvaluator's alert sender: each alert gets its `generatorURL` (from
/// the rule's expression as PromQL prints it) and goes through the notifier's pipeline.
struct NotifierSender {
    notifier: crate::rules::notifier::Notifier,
    external_url: String,
}

impl crate::actors::rule_evaluator::AlertSender for NotifierSender {
    fn send(&self, alerts: Vec<crate::rules::group::OutgoingAlert>) {
        use crate::rules::notifier::payload::{from_rule_alert, generator_url};
        let out = alerts
            .iter()
            .map(|a| from_rule_alert(&a.alert, &generator_url(&self.external_url, &a.expr)))
            .collect();
        self.notifier.send(out);
    }

    fn alertmanagers(&self) -> serde_json::Value {
        serde_json::to_value(self.notifier.status()).unwrap_or_default()
    }
}

/// Starts the notifier for the config's Alertmanagers (none configured: alerts go nowhere, as
/// in Prometheus). Relabelling is the scraper's, the replica label is always removed.
fn alert_sender(
    config: &Config,
    registry: &mut Registry,
    external_url: String,
) -> Result<Arc<dyn crate::actors::rule_evaluator::AlertSender>> {
    use crate::rules::notifier::{Notifier, NotifierMetrics, NotifierOptions};
    let mut opts = NotifierOptions::new(crate::scrape::relabel::process);
    opts.external_labels = Labels::from_pairs(
        config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    opts.replica_label = config.cluster.replica_label.clone();
    opts.config_dir = config.base_dir.clone();
    let metrics = NotifierMetrics::register(registry);
    let notifier = Notifier::start(&config.alerting, opts, metrics)
        .map_err(|e| NodeError::Notifier(e.to_string()))?;
    Ok(Arc::new(NotifierSender {
        notifier,
        external_url,
    }))
}

fn start_roles(
    config: &Arc<Config>,
    storage: &Storage,
    cluster: &Arc<ClusterService>,
    metrics: Arc<RoleMetrics>,
    shutdown: &CancellationToken,
    running: &Arc<RunningRoles>,
    rule_parts: RuleParts,
) -> Addr<NodeSupervisor> {
    let ctx = Arc::new(RoleContext {
        config: config.clone(),
        db: storage.db.clone(),
        bucket: storage.bucket.clone(),
        shipper: storage.shipper.clone(),
        scrape: storage.scrape.clone(),
        store: storage.store.clone(),
        cluster: cluster.clone(),
        compactor_metrics: storage.compactor_metrics.clone(),
        compactor_status: storage.compactor_status.clone(),
        query: rule_parts.query,
        rules: rule_parts.rules,
        expander: rule_parts.expander,
        alerts: rule_parts.alerts,
        rules_runtime: rule_parts.runtime,
    });
    let supervisor = NodeSupervisor::new(
        &config.node.roles,
        Arc::new(NodeRoleFactory { ctx }),
        metrics,
        running.clone(),
    )
    .start();
    let mut assigned = cluster.local_roles();
    let sup = supervisor.clone();
    let stop = shutdown.clone();
    actix_rt::spawn(async move {
        loop {
            let roles = assigned.borrow_and_update().clone();
            if let Err(e) = sup.send(SetRoles(roles)).await {
                tracing::error!(error = %e, "supervisor did not take the new roles");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = assigned.changed() => if changed.is_err() { return },
            }
        }
    });
    let peers = cluster.clone();
    let live_scrapers = move || {
        peers
            .live_peers_with_role(Role::ScraperShipper)
            .into_iter()
            .map(|m| m.node_id)
            .collect()
    };
    storage.scrape.follow_membership(
        live_scrapers,
        std::time::Duration::from_secs(2),
        shutdown.clone(),
    );
    supervisor
}

/// Query execution: the sources a query reads, the fan-out runtime, the engine with its
/// freeing thread, and the StoreAPI/RPC server that answers peers from the same sources.
/// Where the metric usage this node recorded is kept across restarts.
fn usage_path(config: &Config) -> std::path::PathBuf {
    config.node.data_dir.join("metric-usage.json")
}

fn start_query(
    config: &Config,
    storage: &Storage,
    cluster: &Arc<ClusterService>,
    running: &Arc<RunningRoles>,
    rpc_listener: TcpListener,
    key: Option<Vec<u8>>,
    sidecar: Option<Arc<crate::sidecar::Sidecar>>,
) -> Result<(Arc<QueryService>, TransportServer)> {
    let transport_cfg = TransportConfig {
        cluster_key: key,
        ..TransportConfig::default()
    };
    let sources = Arc::new(SourceSet {
        store: storage.store.clone(),
        db: storage.db.clone(),
        running: running.clone(),
        external_labels: Labels::from_pairs(config.shipping_labels()),
        cluster: cluster.clone(),
        runtime: Arc::new(FanoutRuntime::start().map_err(NodeError::Runtime)?),
        sidecar,
    });
    let rpc = TransportServer::start(
        rpc_listener,
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
    let query = Arc::new(
        QueryService::new(
            Engine::new(EngineOptions::default()).with_freer(Freer::spawn()),
            sources,
            client,
            vec![config.cluster.replica_label.clone()],
            MAX_CONCURRENT_QUERIES,
            global_labels,
        )
        .with_default_resolution(config.query.default_max_source_resolution)
        .with_usage(
            Arc::new(crate::query::usage::Usage::new(
                crate::time::now_ms(),
                crate::query::usage::load(&usage_path(config)),
            )),
            config.query.record_usage,
        ),
    );
    Ok((query, rpc))
}

/// What `start_http` serves from.
struct HttpParts {
    config: Arc<Config>,
    storage: Storage,
    cluster: Arc<ClusterService>,
    supervisor: Addr<NodeSupervisor>,
    running: Arc<RunningRoles>,
    query: Arc<QueryService>,
    registry: Registry,
    build: BuildInfo,
    admin_token: Option<String>,
    rules: crate::rules::manager::SharedRules,
    alerts: Arc<dyn crate::actors::rule_evaluator::AlertSender>,
    reload_hooks: Vec<crate::scrape::reload::ReloadHook>,
    api_configs: crate::apiconfig::ApiConfigs,
    rules_api: http::rules_api::RulesApiState,
}

/// Keeps the jobs of the scrape-config API in force here: read from the bucket at start (so
/// they survive restarts), again whenever a peer says it wrote, and on a timer.
fn start_api_config_sync(
    storage: &Storage,
    shutdown: &CancellationToken,
) -> crate::apiconfig::ApiConfigs {
    use crate::apiconfig::{run_syncer, ApiConfigs, Apply, SYNC_INTERVAL};
    let configs = ApiConfigs::new(storage.bucket.clone());
    let scrape = storage.scrape.clone();
    let apply: Apply = Arc::new(move |docs| {
        scrape.set_api_jobs(crate::apiconfig::scrape::jobs_from_documents(docs));
        Ok(())
    });
    tokio::spawn(run_syncer(
        configs.scrape.clone(),
        apply,
        configs.signal.clone(),
        SYNC_INTERVAL,
        shutdown.clone(),
    ));
    configs
}

/// Remote write out: one queue per `remote_write` entry, following the local TSDB's WAL and
/// sending the scraped families' metadata; external labels are `global.external_labels`,
/// as Prometheus adds them.
fn start_remote_write(
    config: &Config,
    storage: &Storage,
    registry: &mut Registry,
    shutdown: &CancellationToken,
) {
    if config.remote_write.is_empty() {
        return;
    }
    use crate::remote::prompb::{MetricMetadata, MetricType as ProtoType};
    use crate::scrape::parser::MetricType;
    let scrape = storage.scrape.clone();
    let metadata: crate::remote::write::MetadataSource = Arc::new(move || {
        let mut out = Vec::new();
        for (family, list) in scrape.metadata() {
            let Some(m) = list.first() else { continue };
            let t = match m.metric_type {
                MetricType::Counter => ProtoType::Counter,
                MetricType::Gauge => ProtoType::Gauge,
                MetricType::Histogram => ProtoType::Histogram,
                MetricType::GaugeHistogram => ProtoType::Gaugehistogram,
                MetricType::Summary => ProtoType::Summary,
                MetricType::Info => ProtoType::Info,
                MetricType::StateSet => ProtoType::Stateset,
                MetricType::Unknown => ProtoType::Unknown,
            };
            out.push(MetricMetadata {
                r#type: t as i32,
                metric_family_name: family,
                help: m.help.clone(),
                unit: m.unit.clone(),
            });
        }
        out
    });
    let external = crate::storage::model::Labels::from_pairs(
        config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    crate::remote::write::start(
        &config.remote_write,
        crate::remote::write::Context {
            wal_dir: config.node.tsdb_dir().join("wal"),
            external,
            base_dir: config.base_dir.clone(),
            metadata,
            metrics: crate::remote::metrics::RemoteWriteMetrics::register(registry),
            runtime: tokio::runtime::Handle::current(),
            stop: shutdown.clone(),
        },
    );
}

/// Remote-write receive (`http::receive`): its state, with its metrics registered.
fn receive_state(
    config: &Config,
    router: Arc<http::Router>,
    db: Arc<crate::storage::db::Db>,
    registry: &mut Registry,
) -> web::Data<http::receive::ReceiveState> {
    let metrics = http::receive::ReceiveMetrics::register(registry);
    web::Data::new(http::receive::ReceiveState::new(
        router,
        db,
        config.receive.clone(),
        config.cluster.receive_replication,
        config.web.path_prefix().to_string(),
        metrics,
    ))
}

/// Starts the HTTP server, giving each API area only its own state.
fn start_http(
    parts: HttpParts,
    web: TcpListener,
    opts: StartOptions,
) -> Result<actix_web::dev::Server> {
    let HttpParts {
        config,
        storage,
        cluster,
        supervisor,
        running,
        query,
        mut registry,
        build,
        admin_token,
        rules,
        alerts: alert_sender_for_http,
        reload_hooks,
        api_configs,
        rules_api,
    } = parts;
    let router = Arc::new(http::Router {
        node_id: config.node.id.clone(),
        running,
        cluster: cluster.clone(),
    });
    let receive = receive_state(&config, router.clone(), storage.db.clone(), &mut registry);
    let states = http::HttpStates {
        receive,
        rules: web::Data::new(http::rules::RulesState {
            router: router.clone(),
            rules,
            alerts: alert_sender_for_http,
        }),
        query: web::Data::new(http::QueryState {
            router: router.clone(),
            service: query,
        }),
        targets: web::Data::new(http::TargetsState {
            router: router.clone(),
            scrape: storage.scrape.clone(),
            config_path: opts.config_path.clone(),
            reload_hooks,
        }),
        status: web::Data::new(http::StatusState {
            router: router.clone(),
            supervisor: supervisor.clone(),
            registry: Arc::new(registry),
            store: storage.store.clone(),
            build,
            flags: opts.flags,
            db: storage.db.clone(),
            scrape: storage.scrape.clone(),
            config: config.clone(),
            started_at: std::time::SystemTime::now(),
            shipper: storage.shipper.clone(),
        }),
        admin: web::Data::new(http::AdminState {
            token: admin_token,
            fault_injection: opts.fault_injection,
            supervisor,
            router: router.clone(),
            bucket: storage.bucket.clone(),
            compactor: storage.compactor_status.clone(),
            block_metas: Default::default(),
            api_configs,
        }),
        ingest: web::Data::new(http::IngestState {
            router,
            db: storage.db.clone(),
        }),
        rules_api: web::Data::new(rules_api),
    };
    let workers = if opts.http_workers == 0 {
        2
    } else {
        opts.http_workers
    };
    Ok(http::serve(web, states, workers)?)
}

/// Starts a node on the given listeners; the node stops when `shutdown` is cancelled.
pub async fn start(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    opts: StartOptions,
) -> Result<NodeHandle> {
    let config = Arc::new(config);
    // Sections that are accepted but not acted on yet are said out loud, never ignored quietly.
    for warning in config.unimplemented_warnings() {
        tracing::warn!("{warning}");
    }
    let admin_token = read_admin_token(&config)?;
    let key = read_cluster_key(&config)?;
    let bound = bound_addrs(&config, &listeners)?;
    let Listeners { web, gossip, rpc } = listeners;
    let build = BuildInfo::current();
    let mut registry = Registry::default();
    crate::metrics::register_build_info(&mut registry, &build);
    let metrics = Arc::new(RoleMetrics::register(&mut registry));

    let sidecar = connect_sidecar(&config).await?;
    let storage = open_storage(&config, &mut registry, sidecar.as_deref()).await?;
    if let Some(sc) = &sidecar {
        sc.refresh_labels(storage.shipper.clone(), shutdown.clone());
    }
    let cluster = start_cluster(&config, gossip, &bound, key.clone()).await?;
    // Queries first: the RuleEvaluator role evaluates through the query service.
    let running = Arc::new(RunningRoles::default());
    let (query, rpc) = start_query(&config, &storage, &cluster, &running, rpc, key, sidecar)?;
    query.usage().spawn_saver(
        usage_path(&config),
        std::time::Duration::from_secs(60),
        shutdown.clone(),
    );
    let rules = crate::rules::manager::SharedRules::new(parking_lot::RwLock::new(
        crate::rules::manager::RulesView {
            metrics: crate::rules::metrics::RuleMetrics::register(&mut registry),
            ..Default::default()
        },
    ));
    let alerts = alert_sender(&config, &mut registry, external_url(&config, &bound))?;
    let rule_parts = RuleParts {
        query: query.clone(),
        rules: rules.clone(),
        expander: Arc::new(crate::actors::rule_evaluator::TemplateExpander {
            query: query.clone(),
            external_labels: config.global.external_labels.clone(),
            external_url: external_url(&config, &bound),
        }),
        alerts: alerts.clone(),
        runtime: Arc::new(FanoutRuntime::start().map_err(NodeError::Runtime)?),
    };
    let api_configs = start_api_config_sync(&storage, &shutdown);
    start_remote_write(&config, &storage, &mut registry, &shutdown);
    let supervisor = start_roles(
        &config, &storage, &cluster, metrics, &shutdown, &running, rule_parts,
    );
    let db = storage.db.clone();
    let reload_hooks = vec![rules_reload_hook(rules.clone())];
    let rules_api = start_rules_api(
        &config,
        &storage,
        &rules,
        &query,
        api_configs.signal.clone(),
        &shutdown,
    );
    let reloader = crate::scrape::reload::Reloader {
        path: opts.config_path.clone(),
        manager: storage.scrape.clone(),
        hooks: reload_hooks.clone(),
    };
    let parts = HttpParts {
        config: config.clone(),
        storage,
        cluster: cluster.clone(),
        supervisor: supervisor.clone(),
        running,
        query,
        registry,
        build,
        admin_token,
        rules,
        alerts,
        reload_hooks,
        api_configs,
        rules_api,
    };
    let server = start_http(parts, web, opts)?;
    let server_handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(node = %config.node.id, web_addr = %bound.web, roles = ?config.node.roles, "node started");

    let (done_tx, done) = tokio::sync::oneshot::channel();
    let sup = supervisor.clone();
    let token = shutdown.clone();
    let leaving = cluster.clone();
    actix_rt::spawn(async move {
        token.cancelled().await;
        tracing::info!("shutting down: stopping HTTP, then roles in reverse order");
        // Stopping the server drops the handlers' state, and with it the query service's
        // engine (its freeing thread ends) and, once the RPC server below is gone too, the
        // fan-out runtime.
        server_handle.stop(true).await;
        leaving.leave().await;
        rpc.shutdown();
        drop(rpc);
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
        web_addr: bound.web,
        supervisor,
        cluster,
        shutdown,
        done,
        reloader,
    })
}
