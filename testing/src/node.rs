//! A Strata node booted in-process through `node::start` (the path `main.rs` takes), on
//! 127.0.0.1 port 0 for HTTP, gossip and RPC, with its files in a temp dir.
//!
//! ```ignore
//! let node = TestNode::builder()
//!     .roles(&["store_shard", "query_planner"])
//!     .filesystem_bucket(bucket.path())
//!     .join(seed)
//!     .start()
//!     .await;
//! ```
//!
//! The node runs inside the caller's actix system (`#[actix_rt::test]`), with one HTTP worker
//! and the admin API's fault switch on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata::config::Config;
use strata::node::{self, Listeners, NodeHandle, StartOptions};
use tokio_util::sync::CancellationToken;

use crate::http::http_client;

/// The admin token of nodes built with [`NodeBuilder::admin_token`].
pub const ADMIN_TOKEN: &str = "s3cr3t-admin-token";

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A node running in this process.
pub struct TestNode {
    pub handle: NodeHandle,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Holds the node's files (its data too, unless [`NodeBuilder::data_dir`] chose another).
    pub dir: tempfile::TempDir,
    /// The admin token, when the node has one.
    pub token: Option<String>,
    data_dir: PathBuf,
    config_path: Option<PathBuf>,
}

/// What a [`TestNode`] is started with; every part is optional.
#[derive(Default)]
#[must_use]
pub struct NodeBuilder {
    id: Option<String>,
    roles: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    admin_token: bool,
    config_file: bool,
    resolv_conf: Option<PathBuf>,
    sections: String,
}

impl NodeBuilder {
    /// The node id (default: `test-node-<n>`, unique in the process).
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// The roles the node runs (default: all five).
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.roles = Some(roles.iter().map(|r| r.to_string()).collect());
        self
    }

    /// Keeps the node's data in `dir` (the caller's), so a test can restart a node on it.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Protects the admin API with [`ADMIN_TOKEN`]; [`TestNode::get_json`] sends it.
    pub fn admin_token(mut self) -> Self {
        self.admin_token = true;
        self
    }

    /// Joins the cluster through the gossip address `seed` (adds a `cluster:` section).
    pub fn join(self, seed: SocketAddr) -> Self {
        self.yaml(&format!("cluster:\n  join: [\"{seed}\"]\n"))
    }

    /// Uses a filesystem bucket in `dir` (adds a `bucket:` section).
    pub fn filesystem_bucket(self, dir: &Path) -> Self {
        self.yaml(&format!(
            "bucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\n",
            dir.display()
        ))
    }

    /// Where the node's DNS discovery reads its name servers (`node.resolv_conf`).
    pub fn resolv_conf(mut self, path: &Path) -> Self {
        self.resolv_conf = Some(path.to_path_buf());
        self
    }

    /// Appends top-level config sections (YAML text ending in a newline, no `node:` section).
    pub fn yaml(mut self, sections: &str) -> Self {
        self.sections.push_str(sections);
        self
    }

    /// Writes the config to `<dir>/strata.yml` and starts from that file, so `POST /-/reload`
    /// has something to re-read ([`TestNode::config_path`]).
    pub fn config_file(mut self) -> Self {
        self.config_file = true;
        self
    }

    /// The config text for a node with its data in `data_dir`.
    fn config_text(&self, data_dir: &Path, token_file: Option<&Path>) -> String {
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("test-node-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        let mut y = format!(
            "node:\n  id: {id}\n  web_listen: 127.0.0.1:0\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n",
            data_dir.display()
        );
        if let Some(roles) = &self.roles {
            y.push_str(&format!("  roles: [{}]\n", roles.join(", ")));
        }
        if let Some(r) = &self.resolv_conf {
            y.push_str(&format!("  resolv_conf: {}\n", r.display()));
        }
        if let Some(t) = token_file {
            y.push_str(&format!("admin:\n  token_file: {}\n", t.display()));
        }
        y.push_str(&self.sections);
        y
    }

    /// Boots the node and returns once `node::start` has (HTTP is listening; use
    /// [`TestNode::wait_ready`] for readiness).
    pub async fn start(self) -> TestNode {
        let dir = crate::temp_dir();
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let token_file = dir.path().join("admin-token");
        let token = self.admin_token.then(|| {
            std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).expect("write token file");
            ADMIN_TOKEN.to_string()
        });
        let yaml = self.config_text(&data_dir, token.is_some().then_some(token_file.as_path()));
        let (config, config_path) = if self.config_file {
            let path = dir.path().join("strata.yml");
            std::fs::write(&path, &yaml).expect("write strata.yml");
            let config = Config::load(&path).expect("test config is valid");
            (config, Some(path))
        } else {
            let config = Config::from_yaml_str(&yaml, "test.yml").expect("test config is valid");
            (config, None)
        };
        let listeners = Listeners::bind(&config).expect("bind the node's listeners");
        let opts = StartOptions {
            fault_injection: true,
            http_workers: 1,
            config_path: config_path.clone(),
            ..Default::default()
        };
        let handle = node::start(config, listeners, CancellationToken::new(), opts)
            .await
            .expect("node starts");
        let base = format!("http://{}", handle.web_addr);
        TestNode {
            handle,
            base,
            dir,
            token,
            data_dir,
            config_path,
        }
    }
}

impl TestNode {
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// The node's data dir (`tsdb/` is under it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The config file, when built with [`NodeBuilder::config_file`].
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// The node's gossip address, for others to join.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.handle.cluster.handle().local_addr()
    }

    /// Adds the admin token to a request when the node has one.
    pub fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GETs `path` (with the admin token, if any) as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self
            .authed(http_client().get(format!("{}{}", self.base, path)))
            .send()
            .await
            .expect("GET");
        resp.json().await.expect("json body")
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::http::fetch_metrics(&self.base)
            .await
            .expect("GET /metrics")
    }

    /// The HTTP status of GET `path`, 0 when the request fails.
    pub async fn status(&self, path: &str) -> u16 {
        http_client()
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Waits until `/-/ready` answers 200; panics naming the node otherwise.
    pub async fn wait_ready(&self) {
        crate::http::wait_http_ok(
            &format!("{}/-/ready", self.base),
            std::time::Duration::from_secs(20),
        )
        .await;
    }
}
