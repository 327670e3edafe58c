//! Test support shared by Strata's `tests/` binaries and the `integration/` binary, so each
//! helper exists once:
//!
//! - [`wait`]: wait on a condition with a deadline ([`wait_until`], [`Wait`]) instead of
//!   sleeping; a timeout names the condition.
//! - [`node`]: a Strata node booted in-process on port 0 through `node::start`, the path
//!   `main.rs` takes ([`TestNode::builder`]).
//! - [`s3`]: a real S3 server (s3s-fs) on 127.0.0.1:0 that logs requests, can hold PUTs,
//!   checks each `meta.json` against the files it lists, and restarts on the same port.
//! - [`bucket`]: bucket fixtures for the contract suite, a recording store decorator with a
//!   hook, synthetic block directories.
//! - [`membership`]: bare SWIM members on loopback for the cluster tests.
//! - [`process`]: child processes killed on drop, the real peers' binaries, a real Prometheus.
//! - [`http`], [`api`], [`targets`]: an HTTP client, Prometheus-API readers, scrape targets.
//! - [`net`], [`metrics`]: free ports, reading values out of metrics text.
//!
//! Helpers panic with a message saying what failed (this is test code); the waiting helpers
//! also come in a form that returns [`TimedOut`] so a test can add its own diagnostics.

pub mod api;
pub mod bucket;
pub mod http;
pub mod membership;
pub mod metrics;
pub mod net;
pub mod node;
pub mod process;
pub mod s3;
pub mod targets;
pub mod wait;

pub use http::{http_client, remote_write, wait_http_ok};
pub use metrics::metric_value;
pub use net::{free_port, free_ports, free_udp_port};
pub use node::{NodeBuilder, TestNode, ADMIN_TOKEN};
pub use process::{require_binary, ChildGuard, Prometheus};
pub use s3::S3Server;
pub use wait::{wait_until, TimedOut, Wait};

/// Milliseconds since the Unix epoch, as sample timestamps use them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}
