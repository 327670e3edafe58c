//! The node's HTTP surface (actix-web): the Prometheus HTTP API, Strata's admin API, health,
//! `/metrics` and the web UI (`ui`), all below `web.route_prefix`. Routes live in one submodule per area, and each area's handlers get only that
//! area's state (`QueryState`, `TargetsState`, `StatusState`, `AdminState`, `IngestState`),
//! built by the node; errors become responses in `error`.

pub mod admin;
pub mod blocks;
pub mod cardinality;
pub mod cluster;
pub mod error;
pub mod forward;
pub mod nodes;
pub mod params;
pub mod query;
pub mod receive;
pub mod remote_read;
pub mod remote_write;
pub mod rules;
pub mod rules_api;
pub mod scrape_configs;
pub mod status;
pub mod status_api;
pub mod stores;
pub mod targets;
pub mod targets_cluster;
pub mod ui;
pub mod usage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use actix::Addr;
use actix_web::{web, App, HttpServer};
use prometheus_client::registry::Registry;

use crate::actors::compactor::SharedStatus;
use crate::actors::supervisor::NodeSupervisor;
use crate::cluster::running::RunningRoles;
use crate::cluster::service::ClusterService;
use crate::config::{Config, Role};
use crate::metrics::BuildInfo;
use crate::query::service::QueryService;
use crate::scrape::ScrapeManager;
use crate::storage::bucket::ObjectStore;
use crate::storage::db::Db;
use crate::storage::store::BucketStore;

/// Which roles run on this node and where the others run: what every area needs to decide
/// whether to serve a request itself or forward it, and to ask its peers.
pub struct Router {
    pub node_id: String,
    pub running: Arc<RunningRoles>,
    pub cluster: Arc<ClusterService>,
}

impl Router {
    pub fn runs(&self, role: Role) -> bool {
        self.running.contains(role)
    }
}

/// The query API: `/api/v1/query`, `query_range`, `series`, labels, `/federate`.
pub struct QueryState {
    pub router: Arc<Router>,
    pub service: Arc<QueryService>,
}

/// The scrape side: targets, metadata, reload.
pub struct TargetsState {
    pub router: Arc<Router>,
    pub scrape: Arc<ScrapeManager>,
    /// The config file `POST /-/reload` re-reads (`None`: the embedded default).
    pub config_path: Option<PathBuf>,
    /// What else re-reads its part of a reloaded config (the rule files).
    pub reload_hooks: Vec<crate::scrape::reload::ReloadHook>,
}

/// Health, readiness, `/metrics` and the `status/*` endpoints.
pub struct StatusState {
    pub router: Arc<Router>,
    pub supervisor: Addr<NodeSupervisor>,
    pub registry: Arc<Registry>,
    /// The bucket blocks this node's StoreShard serves (its figures go to `/metrics`).
    pub store: Arc<BucketStore>,
    pub build: BuildInfo,
    pub flags: BTreeMap<String, String>,
    pub db: Arc<Db>,
    pub scrape: Arc<ScrapeManager>,
    pub config: Arc<Config>,
    /// When the node started (`/api/v1/status/runtimeinfo`).
    pub started_at: SystemTime,
    /// The shipper of local blocks (its lag goes on the node's health card).
    pub shipper: Arc<crate::storage::bucket::shipper::Shipper>,
}

/// The admin API (`/api/v1/admin/...`): roles, the cluster, the fault switch.
pub struct AdminState {
    /// The bearer token every admin route requires (`None`: no token configured).
    pub token: Option<String>,
    pub fault_injection: bool,
    pub supervisor: Addr<NodeSupervisor>,
    /// This node's id and the cluster it is in.
    pub router: Arc<Router>,
    /// The bucket, read for the compactor's stream leases.
    pub bucket: Arc<dyn ObjectStore>,
    /// What this node's compactor role is doing.
    pub compactor: SharedStatus,
    /// The bucket's meta.json files, read once, for `/api/v1/blocks`.
    pub block_metas: blocks::MetaCache,
    /// Where API-written configs are kept, and the signal that re-reads them here.
    pub api_configs: crate::apiconfig::ApiConfigs,
}

/// Samples pushed to the node (`/api/v1/write`).
pub struct IngestState {
    pub router: Arc<Router>,
    pub db: Arc<Db>,
}

impl IngestState {
    /// The local TSDB when this node's scraper_shipper role takes samples in.
    pub fn db_for_ingest(&self) -> Option<Arc<Db>> {
        self.router
            .runs(Role::ScraperShipper)
            .then(|| self.db.clone())
    }
}

/// Every area's state, as the node built it.
#[derive(Clone)]
pub struct HttpStates {
    pub query: web::Data<QueryState>,
    pub targets: web::Data<TargetsState>,
    pub status: web::Data<StatusState>,
    pub admin: web::Data<AdminState>,
    pub ingest: web::Data<IngestState>,
    pub rules: web::Data<rules::RulesState>,
    /// Mimir's ruler config API.
    pub rules_api: web::Data<rules_api::RulesApiState>,
    /// Remote-write receive (`/api/v1/write`, `/api/v1/receive`).
    pub receive: web::Data<receive::ReceiveState>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot serve HTTP on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot serve the web UI: {0}")]
    Ui(#[from] ui::UiError),
}

/// Every route of the node, relative to the route prefix.
fn all_routes(cfg: &mut web::ServiceConfig) {
    status::routes(cfg);
    status_api::routes(cfg);
    nodes::routes(cfg);
    stores::routes(cfg);
    usage::routes(cfg);
    cardinality::routes(cfg);
    admin::routes(cfg);
    blocks::routes(cfg);
    cluster::routes(cfg);
    query::routes(cfg);
    remote_read::routes(cfg);
    receive::routes(cfg);
    rules::routes(cfg);
    scrape_configs::routes(cfg);
    rules_api::routes(cfg);
    targets::routes(cfg);
    ui::routes(cfg);
}

/// Starts the HTTP server on an already bound listener; the returned server must be awaited
/// (or spawned) and is stopped through its handle. With a `web.route_prefix` every route is
/// below it (Prometheus's `--web.route-prefix`); peers are called with the path of the request
/// being forwarded, prefix included, so all nodes of a cluster share one prefix.
pub fn serve(
    listener: std::net::TcpListener,
    states: HttpStates,
    workers: usize,
) -> Result<actix_web::dev::Server, HttpError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let node_id = states.admin.router.node_id.clone();
    let prefix = states.status.config.web.path_prefix().to_string();
    let ui_state = web::Data::new(ui::UiState::new(
        &prefix,
        &node_id,
        &states.status.build.version,
    )?);
    let server = HttpServer::new(move || {
        let app = App::new()
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((forward::SERVED_BY, node_id.clone())),
            )
            .app_data(states.query.clone())
            .app_data(states.targets.clone())
            .app_data(states.status.clone())
            .app_data(states.admin.clone())
            .app_data(states.ingest.clone())
            .app_data(states.rules.clone())
            .app_data(states.rules_api.clone())
            .app_data(states.receive.clone())
            .app_data(ui_state.clone())
            .app_data(web::PayloadConfig::new(32 * 1024 * 1024));
        if prefix.is_empty() {
            app.configure(all_routes)
        } else {
            app.service(web::scope(&prefix).configure(all_routes))
        }
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|source| HttpError::Listen { addr, source })?
    .run();
    Ok(server)
}
