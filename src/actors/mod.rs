//! The node's actors: the supervisor that keeps the assigned roles running, the common role
//! actor shell, and one module per role with that role's behaviour. `NodeRoleFactory` builds a
//! role's worker from the resources the node shares with its roles (`RoleContext`).

pub mod compactor;
pub mod query_planner;
pub mod role;
pub mod rule_evaluator;
pub mod scraper_shipper;
pub mod store_shard;
pub mod supervisor;

use std::sync::Arc;

use crate::config::{Config, Role};
use role::RoleWorker;
use supervisor::RoleFactory;

/// What the node hands to every role it runs: the configuration and the shared storage.
pub struct RoleContext {
    pub config: Arc<Config>,
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
