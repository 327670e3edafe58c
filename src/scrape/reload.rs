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
}

pub type Result<T> = std::result::Result<T, ReloadError>;

/// What a reload needs: the file and the manager.
#[derive(Clone)]
pub struct Reloader {
    pub path: Option<PathBuf>,
    pub manager: Arc<ScrapeManager>,
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
                Arc::new(merge_scrape_sections(&current, loaded))
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
