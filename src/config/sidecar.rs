//! The `sidecar:` section: run this node's scraper_shipper beside an existing Prometheus
//! (Thanos sidecar mode). `prometheus_url` is the Prometheus the node checks (block durations),
//! reads external labels from and remote-reads recent data from; `prometheus_data_dir` is its
//! `--storage.tsdb.path`, whose cut blocks the node's shipper uploads. A node in sidecar mode
//! does not scrape itself, so `scrape_configs` must be empty.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarConfig {
    /// Base URL of the Prometheus beside the node, e.g. `http://127.0.0.1:9090`.
    pub prometheus_url: String,
    /// Prometheus's TSDB directory (`--storage.tsdb.path`); relative paths are resolved
    /// against the config file's directory.
    pub prometheus_data_dir: PathBuf,
}

impl SidecarConfig {
    pub fn validate(&self, scrape_jobs: usize) -> Result<()> {
        let url = self.prometheus_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "sidecar.prometheus_url",
                format!("must be an http:// or https:// URL, got {url:?}"),
            ));
        }
        if self.prometheus_data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "sidecar.prometheus_data_dir",
                "must name Prometheus's --storage.tsdb.path",
            ));
        }
        if scrape_jobs > 0 {
            return Err(ConfigError::invalid(
                "sidecar",
                "a node in sidecar mode does not scrape: the Prometheus beside it does; remove scrape_configs",
            ));
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.prometheus_url.trim().trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_section_is_checked() {
        let ok = SidecarConfig {
            prometheus_url: "http://127.0.0.1:9090/".into(),
            prometheus_data_dir: "/prom".into(),
        };
        assert!(ok.validate(0).is_ok());
        assert_eq!(ok.base_url(), "http://127.0.0.1:9090");
        assert!(ok.validate(1).is_err());
        let bad = SidecarConfig {
            prometheus_url: "127.0.0.1:9090".into(),
            ..ok.clone()
        };
        assert!(bad.validate(0).is_err());
    }
}
