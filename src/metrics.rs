//! The node's own Prometheus metrics: one `prometheus_client` registry per node, built at start
//! (every module registers its metrics into it while the node is wired) and encoded for
//! `GET /metrics`. This module owns the registry's encoding and the build info; each module
//! registers its own metrics (the supervisor its role states and restarts).

use std::fmt::Write as _;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The Content-Type `/metrics` answers with (what `encode` writes).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Registers `strata_build` (the build facts as an info metric).
pub fn register_build_info(registry: &mut Registry, build: &BuildInfo) {
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
