//! The Compactor role: compacts, downsamples and applies retention to one bucket stream.

use std::sync::Arc;

use actix::Context;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;

pub struct Compactor {
    #[allow(dead_code)]
    ctx: Arc<RoleContext>,
}

impl Compactor {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        Compactor { ctx }
    }
}

impl RoleWorker for Compactor {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {}
}
