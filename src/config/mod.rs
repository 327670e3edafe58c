//! Strata's configuration: a Prometheus `prometheus.yml` (global, scrape_configs, rule_files,
//! alerting in Prometheus 2.42 syntax) plus Strata's own sections (node, cluster, bucket, tsdb,
//! admin, web). This module owns the typed config, its defaults, loading with located errors,
//! one validation step, and the `strata check config` report. Sections Prometheus has and
//! Strata does not implement yet are refused by name.

mod alerting;
mod check;
mod compactor;
mod error;
mod http_client;
mod locate;
mod node;
mod nullable;
mod overrides;
mod query;
mod receive;
mod relabel;
mod remote_write;
mod ruler;
mod scrape;
mod sd;
mod sidecar;
mod units;
mod unsupported;
mod validate;
mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use alerting::{AlertingConfig, AlertmanagerApiVersion, AlertmanagerConfig};
pub use check::check_config_report;
pub use compactor::{CompactorConfig, RetentionConfig};
pub use error::{ConfigError, LocatedError, Result};
pub use http_client::{
    AuthHeader, Authorization, BasicAuth, HttpClientView, Secret, TlsConfig, TlsVersion,
};
pub use node::{
    check_host_port, default_node_id, parse_socket_addr, AdminConfig, BucketConfig, BucketType,
    ClusterConfig, FilesystemBucketConfig, NodeConfig, Role, S3BucketConfig, TsdbConfig,
};
pub use overrides::Overrides;
pub use query::{QueryConfig, SourceResolution};
pub use receive::{ReceiveConfig, ReceiveLimits};
pub use relabel::{
    is_valid_label_name, Action, LabelName, RawRelabelConfig, RelabelConfig, RelabelRegex,
    DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR,
};
pub use remote_write::{MetadataConfig, QueueConfig, RemoteWriteConfig};
pub use ruler::RulerConfig;
pub use scrape::{FileSdConfig, LintPolicy, Scheme, ScrapeConfig, ScrapeProtocol, StaticConfig};
pub use sd::{DnsRecordType, DnsSdConfig, HttpSdConfig};
pub use sidecar::SidecarConfig;
pub use units::{ByteSize, PromDuration, UnitError};
pub use unsupported::{Unsupported, REFUSED as REFUSED_SECTIONS};
pub use web::{normalize_route_prefix, WebConfig};

use unsupported as refuse;

/// Prometheus's defaults for the `global` section.
pub const DEFAULT_SCRAPE_INTERVAL: PromDuration = PromDuration::from_mins(1);
pub const DEFAULT_SCRAPE_TIMEOUT: PromDuration = PromDuration::from_secs(10);
pub const DEFAULT_EVALUATION_INTERVAL: PromDuration = PromDuration::from_mins(1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: PromDuration,
    /// Zero in the file means "10s, or the interval when that is shorter".
    #[serde(default)]
    pub scrape_timeout: PromDuration,
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: PromDuration,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub external_labels: BTreeMap<String, String>,
    /// Prometheus's query log; accepted for compatibility, Strata does not write one yet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
}

fn default_scrape_interval() -> PromDuration {
    DEFAULT_SCRAPE_INTERVAL
}

fn default_evaluation_interval() -> PromDuration {
    DEFAULT_EVALUATION_INTERVAL
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: BTreeMap::new(),
            query_log_file: String::new(),
        }
    }
}

/// The whole config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub global: GlobalConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Globs of files each holding more `scrape_configs` (Prometheus 2.43+).
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scrape_config_files: Vec<String>,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub rule_files: Vec<String>,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub alerting: AlertingConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub node: NodeConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub cluster: ClusterConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub bucket: BucketConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub tsdb: TsdbConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub admin: AdminConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub compactor: CompactorConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub query: QueryConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub ruler: RulerConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub web: WebConfig,
    /// Sidecar mode: ship an existing Prometheus's blocks and serve its recent data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarConfig>,
    /// Remote-write receive: tenants and limits (`config::receive`).
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub receive: ReceiveConfig,

    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(
        default,
        skip_serializing,
        rename = "remote_read",
        deserialize_with = "refuse::remote_read"
    )]
    pub _remote_read: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "storage",
        deserialize_with = "refuse::storage"
    )]
    pub _storage: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "tracing",
        deserialize_with = "refuse::tracing"
    )]
    pub _tracing: Unsupported,

    /// Directory relative paths in the file are resolved against (the file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,

    /// Which values the loader filled in from others, so overrides can keep them in step.
    #[serde(skip)]
    derived: Derived,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Derived {
    /// `bucket.filesystem.dir` was left out and is `<node.data_dir>/bucket`.
    bucket_dir: bool,
    /// The config is the embedded default, whose `strata` job scrapes `node.web_listen`.
    self_scrape_target: bool,
}

/// The file holding extra scrape configs named by `scrape_config_files`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeConfigFile {
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
}

impl Default for Config {
    /// Same as [`Config::embedded_default`].
    fn default() -> Self {
        Config::embedded_default()
    }
}

impl Config {
    /// The external labels blocks are shipped with: the configured ones plus this node's
    /// replica label, so that replicas of the same targets stay distinct streams the query side
    /// dedups.
    pub fn shipping_labels(&self) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.global.external_labels.clone();
        labels
            .entry(self.cluster.replica_label.clone())
            .or_insert_with(|| self.node.id.clone());
        labels
    }

    /// All defaults and no scrape jobs: what a file with only Strata's or only Prometheus's
    /// sections starts from.
    fn bare() -> Self {
        Config {
            global: GlobalConfig::default(),
            scrape_configs: Vec::new(),
            scrape_config_files: Vec::new(),
            rule_files: Vec::new(),
            alerting: AlertingConfig::default(),
            node: NodeConfig::default(),
            cluster: ClusterConfig::default(),
            bucket: BucketConfig::default(),
            tsdb: TsdbConfig::default(),
            admin: AdminConfig::default(),
            compactor: CompactorConfig::default(),
            query: QueryConfig::default(),
            ruler: RulerConfig::default(),
            web: WebConfig::default(),
            remote_write: Vec::new(),
            sidecar: None,
            receive: ReceiveConfig::default(),
            _remote_read: Unsupported,
            _storage: Unsupported,
            _tracing: Unsupported,
            base_dir: PathBuf::new(),
            derived: Derived::default(),
        }
    }

    /// The config used with no file or an empty one: one node with all roles, the
    /// filesystem bucket under `./data/bucket`, TSDB under `./data/tsdb`, HTTP on
    /// 127.0.0.1:9090, scraping its own `/metrics` as job `strata`.
    pub fn embedded_default() -> Self {
        let mut c = Config::bare();
        let mut job = ScrapeConfig::new("strata");
        job.static_configs.push(StaticConfig {
            targets: vec![c.node.web_listen.to_string()],
            labels: BTreeMap::new(),
        });
        c.scrape_configs.push(job);
        c.derived.self_scrape_target = true;
        c.finalize();
        c
    }

    /// Reads, parses, completes and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_yaml_str(&text, &path.display().to_string())
    }

    /// Parses config text. `source_name` names it in errors and, when it is a file path,
    /// its directory is where relative paths (rule files, file_sd files, ...) are resolved.
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<Config> {
        let base_dir = Path::new(source_name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let config = if is_blank_yaml(text) {
            let mut c = Config::embedded_default();
            c.base_dir = base_dir;
            c
        } else {
            let mut c: Config = parse_located(text, source_name)?;
            c.base_dir = base_dir;
            c.load_scrape_config_files()?;
            c.finalize();
            c
        };
        config
            .validate()
            .map_err(|e| locate_error(e, text, source_name))?;
        Ok(config)
    }

    /// Parses one scrape config as the scrape-config API receives it (YAML, or JSON, which
    /// is YAML too); errors name the key inside the job (`metric_relabel_configs[0].regex`)
    /// and quote the text.
    pub fn parse_scrape_job(text: &str, source_name: &str) -> Result<ScrapeConfig> {
        parse_located(text, source_name)
    }

    /// Checks `job` as one more job of this config (this config's API jobs of the same name
    /// replaced): the checks `Config::load` makes, errors naming the key inside the job.
    pub fn validate_extra_job(&self, job: &ScrapeConfig) -> Result<()> {
        let mut candidate = self.clone();
        candidate
            .scrape_configs
            .retain(|j| !(j.from_api && j.job_name == job.job_name));
        candidate.scrape_configs.push(job.clone());
        candidate.finalize();
        let i = candidate.scrape_configs.len() - 1;
        let own = format!("scrape_configs[{i}]");
        candidate.validate_scrape_jobs().map_err(|e| match e {
            ConfigError::Invalid { key, message } => {
                let key = match key.strip_prefix(&own) {
                    Some("") => "job".to_string(),
                    Some(rest) => rest.trim_start_matches('.').to_string(),
                    None => key,
                };
                ConfigError::Invalid { key, message }
            }
            other => other,
        })
    }

    /// Fills the values Prometheus derives from other values: global scrape timeout,
    /// per-job interval and timeout, the filesystem bucket directory. Idempotent.
    pub fn finalize(&mut self) {
        let g = &mut self.global;
        if g.scrape_interval.is_zero() {
            g.scrape_interval = DEFAULT_SCRAPE_INTERVAL;
        }
        if g.scrape_timeout.is_zero() {
            g.scrape_timeout = DEFAULT_SCRAPE_TIMEOUT.min(g.scrape_interval);
        }
        if g.evaluation_interval.is_zero() {
            g.evaluation_interval = DEFAULT_EVALUATION_INTERVAL;
        }
        let (interval, timeout) = (g.scrape_interval, g.scrape_timeout);
        for job in &mut self.scrape_configs {
            if job.scrape_interval.is_zero() {
                job.scrape_interval = interval;
            }
            if job.scrape_timeout.is_zero() {
                job.scrape_timeout = timeout.min(job.scrape_interval);
            }
        }
        if self.bucket.filesystem.dir.as_os_str().is_empty() {
            self.bucket.filesystem.dir = self.node.data_dir.join("bucket");
            self.derived.bucket_dir = true;
        }
    }

    /// `path` as Prometheus resolves a file named in the config: relative to the config
    /// file's directory.
    pub fn resolve_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The rule files the `rule_files` globs match now, sorted, without duplicates.
    pub fn rule_file_paths(&self) -> std::result::Result<Vec<PathBuf>, String> {
        let mut out = Vec::new();
        for pattern in &self.rule_files {
            out.extend(expand_glob(&self.resolve_path(pattern))?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// One warning per setting that is accepted, so that a `prometheus.yml` loads unchanged,
    /// but has no effect yet: the query log. Empty when none is set. `strata check config`
    /// prints these; a node should log them when it starts.
    pub fn unimplemented_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.global.query_log_file.is_empty() {
            out.push(format!(
                "global.query_log_file: set to {:?}, but Strata does not write a query log yet",
                self.global.query_log_file
            ));
        }
        out
    }

    /// The HTTP listen address (a shorthand used by the node wiring).
    pub fn web_listen(&self) -> SocketAddr {
        self.node.web_listen
    }

    /// Reads the files named by `scrape_config_files` and appends their jobs.
    fn load_scrape_config_files(&mut self) -> Result<()> {
        for (i, pattern) in self.scrape_config_files.clone().iter().enumerate() {
            let key = format!("scrape_config_files[{i}]");
            let files = expand_glob(&self.resolve_path(pattern))
                .map_err(|m| ConfigError::invalid(&key, m))?;
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Io {
                    path: name.clone(),
                    source,
                })?;
                let extra: ScrapeConfigFile = parse_located(&text, &name)?;
                self.scrape_configs.extend(extra.scrape_configs);
            }
        }
        Ok(())
    }
}

/// Expands one glob (at most one `*` in the last element, like Prometheus allows).
fn expand_glob(pattern: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let paths = glob::glob(&text).map_err(|e| format!("invalid file pattern {text:?}: {e}"))?;
    let mut out = Vec::new();
    for p in paths {
        out.push(p.map_err(|e| format!("cannot read {}: {}", e.path().display(), e.error()))?);
    }
    Ok(out)
}

/// True when the text holds no YAML node at all (only blanks, comments, document markers),
/// which means "use the embedded default".
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Deserialises with the key path and position of the first error.
fn parse_located<T: serde::de::DeserializeOwned>(text: &str, source_name: &str) -> Result<T> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error writes `?` for a map key it could not read; drop that step.
        let mut key = e.path().to_string();
        while let Some(k) = key.strip_suffix(".?") {
            key = k.to_string();
        }
        let inner = e.into_inner();
        // serde_norway marks a value's own check failures at the enclosing mapping; the key
        // path is exact, so when the text shows that key use its position instead.
        let pos = match locate::locate_full(text, &key) {
            Some((pos, true)) => Some(pos),
            _ => inner.location().map(|l| (l.line(), l.column())),
        };
        let message = clean_message(&inner.to_string(), &key);
        let key = if key == "." { None } else { Some(key) };
        ConfigError::Located(Box::new(LocatedError::new(
            source_name,
            text,
            key,
            message,
            pos,
        )))
    })
}

/// serde_norway's message without its own path prefix and position suffix, which the
/// located error prints in its own form.
fn clean_message(raw: &str, key: &str) -> String {
    let mut msg = raw;
    if let Some(i) = msg.rfind(" at line ") {
        if msg[i + 9..]
            .split(" column ")
            .all(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            msg = &msg[..i];
        }
    }
    // serde_norway prefixes its own (shorter) path, e.g. "node: ", to messages.
    if let Some((head, rest)) = msg.split_once(": ") {
        let path_like = head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c));
        if path_like && key.starts_with(head) {
            msg = rest;
        }
    }
    shorten_unknown_field(msg)
}

/// serde lists every accepted key after an unknown one (dozens for a scrape config,
/// including the refused Prometheus sections); name the closest accepted key instead.
fn shorten_unknown_field(msg: &str) -> String {
    let Some((head, list)) = msg.split_once(", expected one of ") else {
        return msg.to_string();
    };
    let Some(unknown) = head
        .strip_prefix("unknown field `")
        .and_then(|r| r.strip_suffix('`'))
    else {
        return msg.to_string();
    };
    let accepted = list
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .filter(|k| !unsupported::REFUSED.contains(k));
    let best = accepted
        .map(|k| (edit_distance(unknown, k), k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 3));
    match best {
        Some((_, k)) => format!("{head}, did you mean `{k}`?"),
        None => head.to_string(),
    }
}

/// Levenshtein distance, for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Places a validation error in the source text by its key path.
fn locate_error(e: ConfigError, text: &str, source_name: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { key, message } => {
            let pos = locate::locate(text, &key);
            ConfigError::Located(Box::new(LocatedError::new(
                source_name,
                text,
                Some(key),
                message,
                pos,
            )))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
