//! The node's own Prometheus metrics: one `prometheus_client` registry per node, built at start
//! (every module registers its metrics into it while the node is wired) and encoded for
//! `GET /metrics`. This module owns the node-level metrics: build info, role states, restarts.

use std::fmt::Write as _;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::actors::role::RoleState;
use crate::config::Role;

/// The Content-Type `/metrics` answers with (what `encode` writes).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleStateLabels {
    role: String,
    state: String,
}

/// Version facts shown by `/metrics` and `/api/v1/status/buildinfo`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl BuildInfo {
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("STRATA_GIT_REVISION")
                .unwrap_or("unknown")
                .to_string(),
            branch: option_env!("STRATA_GIT_BRANCH")
                .unwrap_or("unknown")
                .to_string(),
            build_user: String::new(),
            build_date: String::new(),
            // Prometheus's field name; we report the Rust toolchain in it.
            go_version: option_env!("STRATA_RUSTC_VERSION")
                .unwrap_or("rust")
                .to_string(),
        }
    }
}

/// Node-level metrics; cheap to clone handles live inside.
pub struct NodeMetrics {
    role_restarts: Family<RoleLabels, Counter>,
    role_state: Family<RoleStateLabels, Gauge>,
    role_running: Family<RoleLabels, Gauge>,
}

impl NodeMetrics {
    pub fn register(registry: &mut Registry, build: &BuildInfo) -> Self {
        let info = Info::new(vec![
            ("version".to_string(), build.version.clone()),
            ("revision".to_string(), build.revision.clone()),
            ("branch".to_string(), build.branch.clone()),
            ("rustversion".to_string(), build.go_version.clone()),
        ]);
        registry.register(
            "strata_build",
            "Build information of this Strata binary",
            info,
        );
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
        let m = NodeMetrics {
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

/// Encodes a registry in the OpenMetrics text format.
pub fn encode_registry(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    encode(&mut out, registry)?;
    if !out.ends_with('\n') {
        out.write_char('\n')?;
    }
    Ok(out)
}
