//! The roles running on this node right now, as the node's supervisor last published them.
//! HTTP handlers and the query sources read it to decide whether this node serves a request
//! itself or forwards it; only the supervisor writes it.

use std::collections::BTreeSet;

use crate::config::Role;

#[derive(Default)]
pub struct RunningRoles(parking_lot::RwLock<BTreeSet<Role>>);

impl RunningRoles {
    pub fn contains(&self, role: Role) -> bool {
        self.0.read().contains(&role)
    }

    pub fn set(&self, roles: BTreeSet<Role>) {
        *self.0.write() = roles;
    }
}
