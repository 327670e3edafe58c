//! Sidecar mode of the scraper_shipper (the Thanos sidecar): a node configured with
//! `sidecar: {prometheus_url, prometheus_data_dir}` runs beside an existing Prometheus instead
//! of scraping itself. At start (`connect`) it checks through Prometheus's API that local
//! compaction is off (`storage.tsdb.min-block-duration` == `max-block-duration`, 2h
//! recommended) and that Prometheus has external labels, and refuses to start otherwise, with
//! the reason — the node does not start, as `thanos sidecar` does not. The node's shipper
//! (`storage::bucket::shipper`, unchanged: same order, same `thanos.shipper.json`, blocks shipped
//! once) then points at `prometheus_data_dir` and labels blocks with Prometheus's external
//! labels, re-read every 30 s (`refresh_labels`). Recent, not yet shipped data is served to the
//! QueryPlanner by `source::PrometheusQueryable` (remote read with streamed XOR chunks), offered
//! like the local head among this node's sources and so reachable from other nodes through the
//! StoreAPI. Memory stays flat: uploads stream files from disk, reads decode frames as they
//! arrive.

pub mod prometheus;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use crate::config::SidecarConfig;
use crate::storage::bucket::shipper::Shipper;
use prometheus::PromApi;

/// How often Prometheus's external labels are re-read (`--prometheus.get_config_interval`).
pub const CONFIG_INTERVAL: Duration = Duration::from_secs(30);
/// Timeout of each call to Prometheus's API and of one remote read.
const API_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("sidecar: cannot reach Prometheus: {0}")]
    Http(String),
    #[error("sidecar: Prometheus's flags: {0}")]
    Flags(String),
    #[error(
        "sidecar: Prometheus runs with storage.tsdb.min-block-duration={min} and \
         storage.tsdb.max-block-duration={max}; local compaction must be off for the sidecar \
         to ship its blocks: start Prometheus with both flags equal (2h recommended)"
    )]
    Compaction { min: String, max: String },
    #[error("sidecar: {0}")]
    Config(String),
    #[error(
        "sidecar: no external labels configured on Prometheus server; set global.external_labels \
         so its blocks and series can be told apart (Thanos requires them too)"
    )]
    NoExternalLabels,
    #[error("sidecar: Prometheus data dir {0} is not a directory")]
    DataDir(String),
    #[error("sidecar: {0}")]
    Read(#[from] crate::remote::read::ReadError),
}

pub type Result<T> = std::result::Result<T, SidecarError>;

/// The Prometheus this node runs beside: its API, data dir and current external labels.
pub struct Sidecar {
    /// Control calls (flags, config), made from the node's runtime.
    pub api: PromApi,
    /// Data calls (remote read, labels), made only from the fan-out runtime, so no pooled
    /// connection is shared between two runtimes.
    pub data: PromApi,
    pub data_dir: PathBuf,
    pub block_duration: Duration,
    labels: RwLock<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("prometheus", &self.api.base)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Sidecar {
    /// Prometheus's external labels as last read.
    pub fn external_labels(&self) -> BTreeMap<String, String> {
        self.labels.read().clone()
    }

    /// Oldest block start in Prometheus's data dir (ms), for the StoreAPI `info`.
    pub fn min_time(&self) -> Option<i64> {
        crate::storage::bucket::shipper::scan_blocks(&self.data_dir)
            .ok()?
            .into_iter()
            .flatten()
            .map(|b| b.min_time)
            .min()
    }

    /// Re-reads the external labels every `CONFIG_INTERVAL` and hands them to the shipper,
    /// until `stop`. An empty set or an unreachable Prometheus keeps the last good labels.
    pub fn refresh_labels(self: &Arc<Self>, shipper: Arc<Shipper>, stop: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(CONFIG_INTERVAL) => {}
                }
                match this.api.external_labels().await {
                    Ok(l) if !l.is_empty() => {
                        if *this.labels.read() != l {
                            tracing::info!(labels = ?l, "Prometheus's external labels changed");
                            shipper.set_external_labels(l.clone());
                            *this.labels.write() = l;
                        }
                    }
                    Ok(_) => tracing::warn!("{}", SidecarError::NoExternalLabels),
                    Err(e) => tracing::warn!(error = %e, "re-reading Prometheus's external labels"),
                }
            }
        });
    }
}

/// Resolves a relative data dir against the config file's directory.
fn resolve(base_dir: &Path, dir: &Path) -> PathBuf {
    if dir.is_relative() && !base_dir.as_os_str().is_empty() {
        base_dir.join(dir)
    } else {
        dir.to_path_buf()
    }
}

/// Checks the Prometheus of `cfg` and reads its external labels: the node's start fails with
/// the returned error when Prometheus is unreachable, compacts locally or has no external
/// labels.
pub async fn connect(cfg: &SidecarConfig, base_dir: &Path) -> Result<Sidecar> {
    let data_dir = resolve(base_dir, &cfg.prometheus_data_dir);
    if !data_dir.is_dir() {
        return Err(SidecarError::DataDir(data_dir.display().to_string()));
    }
    let api = PromApi::new(cfg.base_url(), API_TIMEOUT)?;
    let block_duration = prometheus::check_block_durations(&api.flags().await?)?;
    let labels = api.external_labels().await?;
    if labels.is_empty() {
        return Err(SidecarError::NoExternalLabels);
    }
    tracing::info!(prometheus = %api.base, data_dir = %data_dir.display(), labels = ?labels, block = ?block_duration, "sidecar mode: shipping Prometheus's blocks");
    Ok(Sidecar {
        data: PromApi::new(cfg.base_url(), API_TIMEOUT)?,
        api,
        data_dir,
        block_duration,
        labels: RwLock::new(labels),
    })
}
