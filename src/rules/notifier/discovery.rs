//! The Alertmanager sets: one per `alerting.alertmanagers[]` entry. Targets come from
//! `static_configs` and `file_sd_configs` (files polled by modification time and fully re-read
//! every `refresh_interval`; a file that fails to read keeps its previous targets), are
//! relabeled over `__address__`, `__scheme__` and `__alerts_path__` like Prometheus's
//! `alertmanagerFromGroup`, and become URLs `scheme://address` + `path.Join("/", path_prefix,
//! "/api/v2/alerts")`, duplicates merged. Each set owns its HTTP client (TLS, redirects) and
//! its authentication; credential files are re-read per request like Prometheus does.
//! The file reading duplicates a little of `scrape::file_sd`, which `rules` may not import.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::payload::RelabelFn;
use super::{NotifierError, Result};
use crate::config::AuthHeader;
use crate::config::{AlertmanagerApiVersion, AlertmanagerConfig};
use crate::storage::model::{Label, Labels};

const ADDRESS_LABEL: &str = "__address__";
const SCHEME_LABEL: &str = "__scheme__";
const PATH_LABEL: &str = "__alerts_path__";

/// One target group: addresses and the labels they share.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What the sending task needs of one set: a snapshot replaced whole on every change.
#[derive(Debug, Clone)]
pub struct SetView {
    pub client: reqwest::Client,
    pub timeout: Duration,
    pub auth: AuthHeader,
    pub config_dir: PathBuf,
    /// The URLs alerts are POSTed to, each once.
    pub active: Vec<String>,
    /// The URLs relabeling dropped (shown by `/api/v1/alertmanagers`).
    pub dropped: Vec<String>,
}

/// Refuses what Strata cannot send to: `api_version: v1` (Alertmanager 0.25 and Prometheus
/// 3 speak v2 only) and inconsistent HTTP client settings.
pub fn check_config(index: usize, cfg: &AlertmanagerConfig) -> Result<()> {
    if cfg.api_version == AlertmanagerApiVersion::V1 {
        return Err(NotifierError::ApiV1Unsupported { index });
    }
    cfg.http_client()
        .check()
        .map_err(|reason| NotifierError::HttpClient { index, reason })
}

/// Go's `path.Join("/", prefix, "/api/v2/alerts")`.
pub fn alerts_path(prefix: &str) -> String {
    clean_rooted(&format!("/{prefix}/api/v2/alerts"))
}

/// Go's `path.Clean` for a path starting with `/`.
fn clean_rooted(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn url_of(labels: &Labels) -> String {
    format!(
        "{}://{}{}",
        labels.get(SCHEME_LABEL).unwrap_or(""),
        labels.get(ADDRESS_LABEL).unwrap_or(""),
        labels.get(PATH_LABEL).unwrap_or("")
    )
}

/// The active and dropped URLs of the groups (`alertmanagerFromGroup` then `sync`'s merging
/// of duplicate URLs). An address that is not `host:port` after relabeling is skipped with a
/// warning rather than failing the whole set.
pub fn resolve(
    groups: &[Group],
    cfg: &AlertmanagerConfig,
    relabel: RelabelFn,
) -> (Vec<String>, Vec<String>) {
    let mut active: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let path = alerts_path(&cfg.path_prefix);
    for g in groups {
        for t in &g.targets {
            let mut pairs = vec![
                Label::new(ADDRESS_LABEL, t.as_str()),
                Label::new(SCHEME_LABEL, cfg.scheme.to_string()),
                Label::new(PATH_LABEL, path.as_str()),
            ];
            for (k, v) in &g.labels {
                if k != ADDRESS_LABEL {
                    pairs.push(Label::new(k.as_str(), v.as_str()));
                }
            }
            // Target labels win over group labels; `Labels::new` keeps the last of a name.
            pairs.rotate_left(3);
            let discovered = Labels::new(pairs);
            let Some(lset) = relabel(&discovered, &cfg.relabel_configs) else {
                dropped.push(url_of(&discovered));
                continue;
            };
            let addr = lset.get(ADDRESS_LABEL).unwrap_or("");
            if addr.is_empty() || addr.contains('/') {
                tracing::warn!(address = addr, "notifier: not a valid Alertmanager address");
                continue;
            }
            let url = url_of(&lset);
            if !active.contains(&url) {
                active.push(url);
            }
        }
    }
    (active, dropped)
}

/// One `alertmanagers[]` entry with its discovery state.
pub struct AmSet {
    cfg: AlertmanagerConfig,
    client: reqwest::Client,
    config_dir: PathBuf,
    static_groups: Vec<Group>,
    files: FilePoller,
}

impl AmSet {
    /// Checks the entry, builds its client and reads its files once, so the set is complete
    /// before the first alert (Prometheus 2.42 drops alerts sent before SD syncs).
    pub fn new(index: usize, cfg: &AlertmanagerConfig, config_dir: &Path) -> Result<AmSet> {
        check_config(index, cfg)?;
        let client = build_client(cfg, config_dir)
            .map_err(|reason| NotifierError::HttpClient { index, reason })?;
        let static_groups = cfg
            .static_configs
            .iter()
            .map(|s| Group {
                targets: s.targets.clone(),
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect(),
            })
            .collect();
        let mut patterns = Vec::new();
        let mut refresh = Duration::MAX;
        for f in &cfg.file_sd_configs {
            refresh = refresh.min(f.refresh_interval.as_std());
            for p in &f.files {
                patterns.push(config_dir.join(p));
            }
        }
        let mut files = FilePoller::new(patterns, refresh);
        files.poll();
        Ok(AmSet {
            cfg: cfg.clone(),
            client,
            config_dir: config_dir.to_path_buf(),
            static_groups,
            files,
        })
    }

    /// Re-reads changed files; true when the targets may have changed.
    pub fn poll(&mut self) -> bool {
        self.files.poll()
    }

    pub fn view(&self, relabel: RelabelFn) -> SetView {
        let mut groups = self.static_groups.clone();
        groups.extend(self.files.groups());
        let (active, dropped) = resolve(&groups, &self.cfg, relabel);
        SetView {
            client: self.client.clone(),
            timeout: self.cfg.timeout.as_std(),
            auth: self.cfg.http_client().auth_header(),
            config_dir: self.config_dir.clone(),
            active,
            dropped,
        }
    }
}

/// File SD: the groups of every file the patterns match, re-read when a file appears,
/// disappears or changes its modification time, and all of them every `refresh`.
struct FilePoller {
    patterns: Vec<PathBuf>,
    refresh: Duration,
    last_full: Option<Instant>,
    files: BTreeMap<PathBuf, (Option<SystemTime>, Vec<Group>)>,
}

impl FilePoller {
    fn new(patterns: Vec<PathBuf>, refresh: Duration) -> Self {
        FilePoller {
            patterns,
            refresh,
            last_full: None,
            files: BTreeMap::new(),
        }
    }

    fn groups(&self) -> Vec<Group> {
        self.files
            .values()
            .flat_map(|(_, g)| g.iter().cloned())
            .collect()
    }

    fn matching(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.patterns {
            match glob::glob(&p.display().to_string()) {
                Ok(paths) => out.extend(paths.flatten()),
                Err(e) => tracing::warn!(error = %e, "notifier file_sd: bad pattern"),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn poll(&mut self) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let full = self.last_full.is_none_or(|t| t.elapsed() >= self.refresh);
        if full {
            self.last_full = Some(Instant::now());
        }
        let paths = self.matching();
        let before = self.files.len();
        self.files.retain(|p, _| paths.contains(p));
        let mut changed = self.files.len() != before;
        for p in paths {
            let mtime = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            let known = self.files.get(&p).map(|(m, _)| *m);
            if !full && known == Some(mtime) {
                continue;
            }
            match read_groups(&p) {
                Ok(groups) => {
                    let old = self.files.insert(p, (mtime, groups.clone()));
                    changed |= old.is_none_or(|(_, g)| g != groups);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notifier file_sd: keeping the previous targets");
                    self.files.entry(p).or_insert((None, Vec::new())).0 = mtime;
                }
            }
        }
        changed
    }
}

fn read_groups(path: &Path) -> std::result::Result<Vec<Group>, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {name}: {e}"))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let mut groups: Vec<Group> = if is_json {
        serde_json::from_str(&text).map_err(|e| format!("parsing {name}: {e}"))?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_norway::from_str(&text).map_err(|e| format!("parsing {name}: {e}"))?
    };
    for g in &mut groups {
        if let Some(t) = g.targets.iter().find(|t| t.contains('/')) {
            return Err(format!("{name}: {t:?} is not a valid hostname"));
        }
        g.labels.insert("__meta_filepath".to_string(), name.clone());
    }
    Ok(groups)
}

/// The set's HTTP client: TLS settings, redirects, no proxy from the environment, Strata's
/// User-Agent. Relative file names are relative to the config file's directory.
fn build_client(
    cfg: &AlertmanagerConfig,
    dir: &Path,
) -> std::result::Result<reqwest::Client, String> {
    crate::httpclient::build_client(
        &cfg.tls_config,
        cfg.follow_redirects,
        super::USER_AGENT,
        |p| dir.join(p),
    )
}

/// Adds basic auth or the `Authorization` header; credential files are read per request.
pub fn apply_auth(
    req: reqwest::RequestBuilder,
    auth: &AuthHeader,
    dir: &Path,
) -> std::result::Result<reqwest::RequestBuilder, String> {
    crate::httpclient::apply_auth(req, auth, |p| dir.join(p)).map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
