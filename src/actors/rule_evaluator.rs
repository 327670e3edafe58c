//! The RuleEvaluator role (ruler): evaluates its share of the rule groups and sends alerts.

use std::sync::Arc;

use actix::Context;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;

pub struct RuleEvaluator {
    #[allow(dead_code)]
    ctx: Arc<RoleContext>,
}

impl RuleEvaluator {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        RuleEvaluator { ctx }
    }
}

impl RoleWorker for RuleEvaluator {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {}
}
