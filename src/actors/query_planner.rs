//! The QueryPlanner role (querier): evaluates PromQL over the sources it fans out to.

use std::sync::Arc;

use actix::Context;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;

pub struct QueryPlanner {
    #[allow(dead_code)]
    ctx: Arc<RoleContext>,
}

impl QueryPlanner {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        QueryPlanner { ctx }
    }
}

impl RoleWorker for QueryPlanner {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {}
}
