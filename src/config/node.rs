//! Strata's own sections, which sit beside Prometheus's: the node's identity, listeners and
//! roles (`node`), cluster membership (`cluster`), the object store (`bucket`), local TSDB
//! settings (`tsdb`) and the admin API (`admin`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::http_client::Secret;
use super::units::PromDuration;

/// One of the five roles a node can host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    ScraperShipper,
    StoreShard,
    QueryPlanner,
    Compactor,
    RuleEvaluator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::ScraperShipper,
        Role::StoreShard,
        Role::QueryPlanner,
        Role::Compactor,
        Role::RuleEvaluator,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::ScraperShipper => "scraper_shipper",
            Role::StoreShard => "store_shard",
            Role::QueryPlanner => "query_planner",
            Role::Compactor => "compactor",
            Role::RuleEvaluator => "rule_evaluator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?}, expected one of {}", names.join(", "))
            })
    }
}

/// A listen address given as `IP:PORT`; host names are refused because a listener binds.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("invalid address {s:?}: expected IP:PORT such as 127.0.0.1:9090 or [::1]:9090")
    })
}

/// A peer address given as `host:port` (a name or an IP, `[v6]:port` for IPv6).
pub fn check_host_port(s: &str) -> Result<(), String> {
    let bad =
        |why: &str| format!("invalid address {s:?}: {why}, expected host:port such as node1:7946");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = after.strip_prefix(':').ok_or_else(|| bad("missing port"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("invalid IPv6 address"));
        }
        (h, port)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        if h.contains(':') {
            return Err(bad("IPv6 addresses must be written [addr]:port"));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return Err(bad("invalid host name"));
    }
    port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    Ok(())
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_socket_addr(&s).map_err(serde::de::Error::custom)
}

fn serialize_addr<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    #[serde(default = "default_node_id")]
    pub id: String,
    #[serde(
        default = "default_web_listen",
        deserialize_with = "socket_addr",
        serialize_with = "serialize_addr"
    )]
    pub web_listen: SocketAddr,
    #[serde(
        default = "default_gossip_listen",
        deserialize_with = "socket_addr",
        serialize_with = "serialize_addr"
    )]
    pub gossip_listen: SocketAddr,
    #[serde(
        default = "default_rpc_listen",
        deserialize_with = "socket_addr",
        serialize_with = "serialize_addr"
    )]
    pub rpc_listen: SocketAddr,
    /// `host:port` peers use to reach this node; `None` means the listen address.
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_roles")]
    pub roles: Vec<Role>,
    /// Where DNS discovery reads its name servers, search domains and `ndots` (Prometheus
    /// reads `/etc/resolv.conf` and has no setting; this one exists for hosts whose
    /// discovery DNS differs from the system's).
    #[serde(default = "default_resolv_conf")]
    pub resolv_conf: PathBuf,
}

fn default_resolv_conf() -> PathBuf {
    PathBuf::from("/etc/resolv.conf")
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn default_node_id() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

fn default_web_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_gossip_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7946))
}

fn default_rpc_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7947))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

fn default_roles() -> Vec<Role> {
    Role::ALL.to_vec()
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: default_node_id(),
            web_listen: default_web_listen(),
            gossip_listen: default_gossip_listen(),
            rpc_listen: default_rpc_listen(),
            advertise: None,
            data_dir: default_data_dir(),
            roles: default_roles(),
            resolv_conf: default_resolv_conf(),
        }
    }
}

impl NodeConfig {
    /// Where the local TSDB (head, WAL, blocks) lives.
    pub fn tsdb_dir(&self) -> PathBuf {
        self.data_dir.join("tsdb")
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Seeds, `host:port` of other nodes' `gossip_listen`.
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub join: Vec<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_replica_label")]
    pub replica_label: String,
    /// How many live ScraperShippers scrape each target (each under its own replica label);
    /// the query side deduplicates them.
    #[serde(default = "default_scrape_replication")]
    pub scrape_replication: usize,
    /// How many live RuleEvaluators evaluate each rule group (each writes under its own
    /// replica label; Alertmanager and the query side deduplicate them).
    #[serde(default = "default_rule_replication")]
    pub rule_replication: usize,
    /// How many live ScraperShippers store each remote-written series (Thanos's
    /// `--receive.replication-factor`); each copy is under its node's replica label.
    #[serde(default = "default_receive_replication")]
    pub receive_replication: usize,
    /// Keep at least N live nodes with the role; `all` (stored as `usize::MAX`) means every
    /// live node.
    #[serde(
        default = "default_role_policy",
        deserialize_with = "de_role_policy",
        serialize_with = "ser_role_policy"
    )]
    pub role_policy: BTreeMap<Role, usize>,
}

/// A role policy count: a number, or `all`.
#[derive(Deserialize)]
#[serde(untagged)]
enum PolicyCount {
    Count(usize),
    Word(String),
}

fn de_role_policy<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<Role, usize>, D::Error> {
    let raw: BTreeMap<Role, PolicyCount> = BTreeMap::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (role, count) in raw {
        let n = match count {
            PolicyCount::Count(n) => n,
            PolicyCount::Word(w) if w == "all" => usize::MAX,
            PolicyCount::Word(w) => {
                return Err(serde::de::Error::custom(format!(
                    "role_policy.{role}: want a number or `all`, got {w:?}"
                )))
            }
        };
        out.insert(role, n);
    }
    Ok(out)
}

fn ser_role_policy<S: serde::Serializer>(
    policy: &BTreeMap<Role, usize>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(policy.len()))?;
    for (role, n) in policy {
        if *n == usize::MAX {
            m.serialize_entry(role, "all")?;
        } else {
            m.serialize_entry(role, n)?;
        }
    }
    m.end()
}

fn default_replica_label() -> String {
    "replica".to_string()
}

fn default_rule_replication() -> usize {
    2
}

fn default_receive_replication() -> usize {
    2
}

fn default_scrape_replication() -> usize {
    2
}

fn default_role_policy() -> BTreeMap<Role, usize> {
    BTreeMap::from([(Role::Compactor, 1), (Role::RuleEvaluator, 2)])
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            join: Vec::new(),
            key_file: None,
            replica_label: default_replica_label(),
            scrape_replication: default_scrape_replication(),
            rule_replication: default_rule_replication(),
            receive_replication: default_receive_replication(),
            role_policy: default_role_policy(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketType {
    #[default]
    Filesystem,
    S3,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    #[serde(default, rename = "type")]
    pub bucket_type: BucketType,
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub filesystem: FilesystemBucketConfig,
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub s3: S3BucketConfig,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemBucketConfig {
    /// Empty in the file means `<node.data_dir>/bucket`; filled in by `Config::finalize`.
    #[serde(default)]
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3BucketConfig {
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_path_style")]
    pub path_style: bool,
    /// When both keys are empty the AWS_* environment variables are used.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub access_key: Secret,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub secret_key: Secret,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_path_style() -> bool {
    true
}

impl Default for S3BucketConfig {
    fn default() -> Self {
        S3BucketConfig {
            endpoint: String::new(),
            bucket: String::new(),
            region: default_region(),
            path_style: default_path_style(),
            access_key: Secret::default(),
            secret_key: Secret::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbConfig {
    #[serde(default = "default_retention")]
    pub retention: PromDuration,
    #[serde(default = "default_block_duration")]
    pub block_duration: PromDuration,
}

fn default_retention() -> PromDuration {
    PromDuration::from_days(15)
}

fn default_block_duration() -> PromDuration {
    PromDuration::from_hours(2)
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            retention: default_retention(),
            block_duration: default_block_duration(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// File holding the bearer token the admin API requires; `None` leaves it open.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}
