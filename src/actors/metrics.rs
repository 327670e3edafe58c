//! The role metrics the supervisor keeps: the state each role on this node is in, whether it
//! runs, and how often it was restarted after failing. Every role is exposed from the start, so
//! a dashboard sees 0 rather than nothing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::role::RoleState;
use crate::config::Role;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleStateLabels {
    role: String,
    state: String,
}

/// The supervisor's metrics; cheap to clone handles live inside.
pub struct RoleMetrics {
    role_restarts: Family<RoleLabels, Counter>,
    role_state: Family<RoleStateLabels, Gauge>,
    role_running: Family<RoleLabels, Gauge>,
}

impl RoleMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let role_restarts = Family::<RoleLabels, Counter>::default();
        registry.register(
            "strata_role_restarts",
            "Restarts of a role actor after it failed",
            role_restarts.clone(),
        );
        let role_state = Family::<RoleStateLabels, Gauge>::default();
        registry.register(
            "strata_role_state",
            "1 for the state each role on this node is in",
            role_state.clone(),
        );
        let role_running = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "strata_role_running",
            "1 when the role runs on this node, else 0",
            role_running.clone(),
        );
        let m = RoleMetrics {
            role_restarts,
            role_state,
            role_running,
        };
        for role in Role::ALL {
            // Expose every role from the start so a dashboard sees 0 rather than nothing.
            let _ = m.role_restarts.get_or_create(&RoleLabels {
                role: role.to_string(),
            });
            m.set_role_state(role, None);
        }
        m
    }

    pub fn role_restarted(&self, role: Role) {
        self.role_restarts
            .get_or_create(&RoleLabels {
                role: role.to_string(),
            })
            .inc();
    }

    /// `None` = the role is not held by this node.
    pub fn set_role_state(&self, role: Role, state: Option<RoleState>) {
        for s in RoleState::ALL {
            let labels = RoleStateLabels {
                role: role.to_string(),
                state: s.as_str().to_string(),
            };
            self.role_state
                .get_or_create(&labels)
                .set(i64::from(state == Some(s)));
        }
        let running = i64::from(state == Some(RoleState::Running));
        self.role_running
            .get_or_create(&RoleLabels {
                role: role.to_string(),
            })
            .set(running);
    }
}
