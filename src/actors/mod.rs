//! The node's actors: the supervisor that keeps the assigned roles running, the common role
//! actor shell, and one module per role with that role's behaviour. `NodeRoleFactory` builds a
//! role's worker from the resources the node shares with its roles (`RoleContext`).

pub mod compactor;
pub mod lease;
pub mod membership;
pub mod policy;
pub mod query_planner;
pub mod role;
pub mod rpc;
pub mod rule_evaluator;
pub mod scraper_shipper;
pub mod store_shard;
pub mod supervisor;

use std::sync::Arc;

use crate::config::{Config, Role};
use crate::storage::bucket::shipper::Shipper;
use crate::storage::bucket::ObjectStore;
use crate::storage::db::Db;
use role::RoleWorker;
use supervisor::RoleFactory;

/// The roles running on this node right now, as the supervisor last published them; HTTP
/// handlers read it to decide whether this node can serve a request itself.
#[derive(Default)]
pub struct RunningRoles(parking_lot::RwLock<std::collections::BTreeSet<Role>>);

impl RunningRoles {
    pub fn contains(&self, role: Role) -> bool {
        self.0.read().contains(&role)
    }

    pub fn set(&self, roles: std::collections::BTreeSet<Role>) {
        *self.0.write() = roles;
    }
}

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
    /// Membership, set once the node has joined (roles start before that).
    pub cluster: Arc<std::sync::OnceLock<Arc<membership::ClusterService>>>,
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
