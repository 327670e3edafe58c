//! The ScraperShipper role (Prometheus + sidecar): scrapes its share of the targets into the node's local TSDB and ships cut blocks to the bucket.

use std::sync::Arc;

use actix::Context;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;

pub struct ScraperShipper {
    #[allow(dead_code)]
    ctx: Arc<RoleContext>,
}

impl ScraperShipper {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        ScraperShipper { ctx }
    }
}

impl RoleWorker for ScraperShipper {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {}
}
