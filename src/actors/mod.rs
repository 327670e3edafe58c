//! The node's actors: the supervisor that keeps the assigned roles running, the common role
//! actor shell, and one module per role with that role's behaviour. `NodeRoleFactory` builds a
//! role's worker from the resources the node shares with its roles (`RoleContext`). Cluster
//! services (membership, leases, the role policy) live in `crate::cluster`; the actors only use
//! them.

pub mod compactor;
pub mod metrics;
pub mod panics;
pub mod query_planner;
pub mod role;
pub mod rule_evaluator;
pub mod scraper_shipper;
pub mod store_shard;
pub mod supervisor;

use std::sync::Arc;

use crate::cluster::service::ClusterService;
use crate::config::{Config, Role};
use crate::storage::bucket::shipper::Shipper;
use crate::storage::bucket::ObjectStore;
use crate::storage::db::Db;
use role::RoleWorker;
use supervisor::RoleFactory;

/// What the node hands to every role it runs: the configuration and the shared storage.
pub struct RoleContext {
    pub config: Arc<Config>,
    /// The node's local TSDB (head + WAL + local blocks).
    pub db: Arc<Db>,
    pub bucket: Arc<dyn ObjectStore>,
    /// Ships the local TSDB's blocks; owned by the node so its state outlives role moves.
    pub shipper: Arc<Shipper>,
    /// The scrape pools; the ScraperShipper role starts and stops them.
    pub scrape: Arc<crate::scrape::ScrapeManager>,
    /// The bucket blocks a StoreShard serves (synced only while the role runs).
    pub store: Arc<crate::storage::store::BucketStore>,
    /// Membership and the role assignment (the node joins before any role starts).
    pub cluster: Arc<ClusterService>,
    /// The bucket compactor's metrics (registered once per node, kept across role moves).
    pub compactor_metrics: Arc<crate::storage::compactor::metrics::CompactorMetrics>,
    /// What the compactor role is doing, also read by `GET /api/v1/admin/compactor`.
    pub compactor_status: compactor::SharedStatus,
    /// Queries over the cluster: what rule expressions are evaluated with.
    pub query: Arc<crate::query::service::QueryService>,
    /// The rule groups evaluated here, also read by `/api/v1/rules` and `/api/v1/alerts`.
    pub rules: crate::rules::manager::SharedRules,
    /// Expands alert label and annotation templates.
    pub expander: rule_evaluator::SharedExpander,
    /// Sends alerts to the Alertmanagers.
    pub alerts: Arc<dyn rule_evaluator::AlertSender>,
    /// Where rule groups run (multi-threaded, so templates may block on a query).
    pub rules_runtime: Arc<crate::query::fanout::FanoutRuntime>,
}

/// Builds each role's worker; held by the supervisor, called on the role's own thread.
pub struct NodeRoleFactory {
    pub ctx: Arc<RoleContext>,
}

impl RoleFactory for NodeRoleFactory {
    fn build(&self, role: Role) -> Box<dyn RoleWorker> {
        let ctx = self.ctx.clone();
        match role {
            Role::ScraperShipper => Box::new(scraper_shipper::ScraperShipper::new(ctx)),
            Role::StoreShard => Box::new(store_shard::StoreShard::new(ctx)),
            Role::QueryPlanner => Box::new(query_planner::QueryPlanner::new(ctx)),
            Role::Compactor => Box::new(compactor::Compactor::new(ctx)),
            Role::RuleEvaluator => Box::new(rule_evaluator::RuleEvaluator::new(ctx)),
        }
    }
}
