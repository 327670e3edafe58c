//! Reloading the scrape part of the config (`POST /-/reload`, SIGHUP): re-read the config
//! file, take its `global` and `scrape_configs`, and hand them to the manager, which restarts
//! only the jobs that changed. Node, cluster, bucket and TSDB settings need a restart, as
//! their listeners and files are already open; they are kept as they are.

use std::path::PathBuf;
use std::sync::Arc;

use super::manager::{ReloadReport, ScrapeManager};
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("error loading config from {path:?}: {reason}")]
    Load { path: String, reason: String },
    #[error("one or more errors occurred while applying the new configuration: {0}")]
    Apply(String),
}

pub type Result<T> = std::result::Result<T, ReloadError>;

/// Another part of the node that re-reads its share of a reloaded config (the rule files):
/// an error keeps that part as it was and fails the reload.
pub type ReloadHook = Arc<dyn Fn(&Config) -> std::result::Result<(), String> + Send + Sync>;

/// What a reload needs: the file, the manager and the other parts' hooks.
#[derive(Clone)]
pub struct Reloader {
    pub path: Option<PathBuf>,
    pub manager: Arc<ScrapeManager>,
    pub hooks: Vec<ReloadHook>,
}

impl Reloader {
    /// Re-reads the file (or re-applies the current config when there is none).
    pub fn reload(&self) -> Result<ReloadReport> {
        let current = self.manager.config();
        let next = match &self.path {
            None => current,
            Some(path) => {
                let loaded = Config::load(path).map_err(|e| {
                    self.manager.record_failed_reload();
                    ReloadError::Load {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                let hooks: Vec<String> =
                    self.hooks.iter().filter_map(|h| h(&loaded).err()).collect();
                let merged = Arc::new(merge_scrape_sections(&current, loaded));
                if !hooks.is_empty() {
                    // The scrape part still applies; the failed part keeps its old state, and
                    // the reload counts as failed (as Prometheus's does).
                    self.manager.apply_config(merged);
                    self.manager.record_failed_reload();
                    return Err(ReloadError::Apply(hooks.join("; ")));
                }
                merged
            }
        };
        Ok(self.manager.apply_config(next))
    }
}

/// `current` with the scrape-related sections of `loaded`.
pub fn merge_scrape_sections(current: &Config, loaded: Config) -> Config {
    let mut out = current.clone();
    out.global = loaded.global;
    out.scrape_configs = loaded.scrape_configs;
    out.scrape_config_files = loaded.scrape_config_files;
    out.base_dir = loaded.base_dir;
    out
}
