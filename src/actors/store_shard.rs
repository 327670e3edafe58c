//! The StoreShard role (store gateway): serves its rendezvous-hashed share of the bucket's blocks.

use std::sync::Arc;

use actix::Context;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;

pub struct StoreShard {
    #[allow(dead_code)]
    ctx: Arc<RoleContext>,
}

impl StoreShard {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        StoreShard { ctx }
    }
}

impl RoleWorker for StoreShard {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {}
}
