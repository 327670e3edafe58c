//! Block shipper (the Thanos sidecar's `shipper`): finds finished local TSDB blocks, uploads
//! the ones not yet in the bucket through `upload::upload_block`, and records them in
//! `<tsdb_dir>/thanos.shipper.json` (`{"version":1,"uploaded":[...]}`, written atomically).
//! A missing or corrupt state file is never trusted: the bucket decides (a block is there when
//! its `meta.json` is, `blocks::block_exists`). Also owns the local-retention decision (delete
//! only shipped + old blocks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::blocks::{self, BlocksError, META_FILE};
use super::filesystem::write_file_atomic_blocking;
use super::upload::{read_local_block, upload_block, LocalBlock, UploadError};
use super::{BucketError, ObjectStore};

pub const STATE_FILE: &str = "thanos.shipper.json";
/// Where blocks are hard-linked before upload so TSDB compaction/retention cannot pull files
/// away mid-upload (same layout as Thanos).
const UPLOAD_STAGING_DIR: &str = "thanos/upload";

#[derive(Debug, thiserror::Error)]
pub enum ShipperError {
    #[error("empty external labels are not allowed")]
    EmptyExternalLabels,
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write shipper state: {0}")]
    State(#[source] BucketError),
}

pub type Result<T> = std::result::Result<T, ShipperError>;

#[derive(Debug, Clone)]
pub struct ShipperConfig {
    pub tsdb_dir: PathBuf,
    pub external_labels: BTreeMap<String, String>,
    /// `thanos.source` written into uploaded metas ("sidecar", "receive", "ruler"...).
    pub source: String,
    /// Also upload blocks with compaction level > 1 (off by default, like the sidecar).
    pub upload_compacted: bool,
}

impl ShipperConfig {
    /// Sidecar defaults: `source = "sidecar"`, only level-1 blocks.
    pub fn sidecar(
        tsdb_dir: impl Into<PathBuf>,
        external_labels: BTreeMap<String, String>,
    ) -> Self {
        Self {
            tsdb_dir: tsdb_dir.into(),
            external_labels,
            source: "sidecar".to_string(),
            upload_compacted: false,
        }
    }
}

/// Outcome of one `sync`. `skipped` covers blocks already shipped, already in the bucket,
/// empty, or compacted (when not uploading compacted blocks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub uploaded: Vec<Ulid>,
    pub skipped: Vec<Ulid>,
    pub failed: Vec<(Ulid, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    uploaded: Vec<Ulid>,
}

/// How the on-disk state was found.
#[derive(Debug)]
pub enum StateRead {
    Ok(BTreeSet<Ulid>),
    Missing,
    Corrupt(String),
}

/// Reads `thanos.shipper.json`. Anything but a well-formed version-1 file is `Corrupt`.
pub fn read_state(tsdb_dir: &Path) -> StateRead {
    let path = tsdb_dir.join(STATE_FILE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return StateRead::Missing,
        Err(e) => return StateRead::Corrupt(format!("{}: {e}", path.display())),
    };
    match serde_json::from_slice::<StateFile>(&raw) {
        Ok(s) if s.version == 1 => StateRead::Ok(s.uploaded.into_iter().collect()),
        Ok(s) => StateRead::Corrupt(format!(
            "{}: unsupported version {}",
            path.display(),
            s.version
        )),
        Err(e) => StateRead::Corrupt(format!("{}: {e}", path.display())),
    }
}

fn write_state(tsdb_dir: &Path, uploaded: &BTreeSet<Ulid>) -> Result<()> {
    let state = StateFile {
        version: 1,
        uploaded: uploaded.iter().copied().collect(),
    };
    let body = serde_json::to_vec_pretty(&state).map_err(|e| {
        ShipperError::State(BucketError::Permanent {
            op: "serialise",
            key: STATE_FILE.into(),
            message: e.to_string(),
        })
    })?;
    write_file_atomic_blocking(&tsdb_dir.join(STATE_FILE), &body).map_err(ShipperError::State)
}

/// Blocks in `tsdb_dir` that are finished: directory name parses as a ULID and `meta.json`
/// exists. Others (`<ulid>.tmp-for-creation`, `wal`, `chunks_head`, blocks still being
/// written) are ignored. Unreadable metas come back as errors so they are reported.
pub fn scan_blocks(
    tsdb_dir: &Path,
) -> Result<Vec<std::result::Result<LocalBlock, (Ulid, String)>>> {
    let io = |e| ShipperError::Io {
        path: tsdb_dir.to_path_buf(),
        source: e,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(tsdb_dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(ulid) = entry
            .file_name()
            .to_str()
            .and_then(|n| Ulid::from_string(n).ok())
        else {
            continue;
        };
        let dir = entry.path();
        if !dir.is_dir() || !dir.join(META_FILE).is_file() {
            continue;
        }
        out.push(read_local_block(&dir).map_err(|e| (ulid, e.to_string())));
    }
    Ok(out)
}

#[derive(Clone, Debug)]
struct ShipperMetrics {
    pending: Gauge,
    oldest_age: Gauge<f64, AtomicU64>,
    uploads: Counter,
    upload_failures: Counter,
}

impl ShipperMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            pending: Gauge::default(),
            oldest_age: Gauge::default(),
            uploads: Counter::default(),
            upload_failures: Counter::default(),
        };
        let sub = registry.sub_registry_with_prefix("strata_shipper");
        sub.register(
            "pending_blocks",
            "Local blocks eligible for upload that are not in the bucket yet",
            m.pending.clone(),
        );
        sub.register(
            "oldest_unshipped_age_seconds",
            "Age of the end (maxTime) of the oldest block not yet shipped; 0 when none",
            m.oldest_age.clone(),
        );
        sub.register("uploads", "Blocks uploaded", m.uploads.clone());
        sub.register(
            "upload_failures",
            "Block uploads that failed (retried on the next sync)",
            m.upload_failures.clone(),
        );
        m
    }
}

pub struct Shipper {
    cfg: ShipperConfig,
    labels: Mutex<BTreeMap<String, String>>,
    store: Arc<dyn ObjectStore>,
    metrics: ShipperMetrics,
    shipped: Mutex<BTreeSet<Ulid>>,
    sync_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("tsdb_dir", &self.cfg.tsdb_dir)
            .finish_non_exhaustive()
    }
}

impl Shipper {
    /// Registers `strata_shipper_*` metrics. The shipped set starts from the state file if
    /// it is valid; otherwise empty until the first sync consults the bucket.
    pub fn new(cfg: ShipperConfig, store: Arc<dyn ObjectStore>, registry: &mut Registry) -> Self {
        let shipped = match read_state(&cfg.tsdb_dir) {
            StateRead::Ok(set) => set,
            _ => BTreeSet::new(),
        };
        Self {
            metrics: ShipperMetrics::register(registry),
            labels: Mutex::new(cfg.external_labels.clone()),
            cfg,
            store,
            shipped: Mutex::new(shipped),
            sync_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Replaces the external labels used for the next uploads (they are re-read from the
    /// config periodically, like the sidecar does with Prometheus' config).
    /// Age of the oldest block cut but not shipped (0 when none), as the last sync saw it.
    pub fn oldest_unshipped_age_seconds(&self) -> f64 {
        self.metrics.oldest_age.get()
    }

    pub fn set_external_labels(&self, labels: BTreeMap<String, String>) {
        if let Ok(mut g) = self.labels.lock() {
            *g = labels;
        }
    }

    fn external_labels(&self) -> BTreeMap<String, String> {
        self.labels.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// ULIDs known to be in the bucket (for local retention).
    pub fn shipped_ulids(&self) -> BTreeSet<Ulid> {
        self.shipped.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn set_shipped(&self, set: &BTreeSet<Ulid>) {
        if let Ok(mut g) = self.shipped.lock() {
            g.clone_from(set);
        }
    }

    /// One shipping pass. Per-block failures land in `SyncReport::failed` and are retried on
    /// the next call; only configuration and local state errors fail the whole call.
    pub async fn sync(&self) -> Result<SyncReport> {
        let _guard = self.sync_lock.lock().await;
        let labels = self.external_labels();
        if labels.is_empty() {
            return Err(ShipperError::EmptyExternalLabels);
        }
        let tsdb_dir = self.cfg.tsdb_dir.clone();
        // Leftovers of a crash mid-upload; only this shipper (under sync_lock) writes here.
        let _ = std::fs::remove_dir_all(tsdb_dir.join(UPLOAD_STAGING_DIR));
        let mut shipped = match read_state(&tsdb_dir) {
            StateRead::Ok(set) => set,
            StateRead::Missing => BTreeSet::new(),
            StateRead::Corrupt(reason) => {
                tracing::warn!(%reason, "shipper state is corrupt; rebuilding it from the bucket");
                BTreeSet::new()
            }
        };
        let mut report = SyncReport::default();
        let mut blocks = Vec::new();
        for scanned in scan_blocks(&tsdb_dir)? {
            match scanned {
                Ok(b) => blocks.push(b),
                Err((ulid, reason)) => report.failed.push((ulid, reason)),
            }
        }
        blocks.sort_by_key(|b| (b.min_time, b.ulid));
        let local: BTreeSet<Ulid> = blocks.iter().map(|b| b.ulid).collect();
        let mut pending: Vec<&LocalBlock> = Vec::new();
        let mut bucket_ranges: Option<Vec<(Ulid, i64, i64)>> = None;

        for block in &blocks {
            if shipped.contains(&block.ulid)
                || block.num_samples == Some(0)
                || (block.level > 1 && !self.cfg.upload_compacted)
            {
                report.skipped.push(block.ulid);
                continue;
            }
            if block.level > 1 {
                // Like Thanos: a compacted block must not overlap what this stream already
                // has in the bucket, or the compactor would halt on the overlap.
                if bucket_ranges.is_none() {
                    match bucket_blocks_with_labels(self.store.as_ref(), &labels).await {
                        Ok(r) => bucket_ranges = Some(r),
                        Err(e) => {
                            report.failed.push((block.ulid, e.to_string()));
                            pending.push(block);
                            continue;
                        }
                    }
                }
                let overlap =
                    bucket_ranges
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .find(|(u, min, max)| {
                            *u != block.ulid && *min < block.max_time && block.min_time < *max
                        });
                if let Some((other, _, _)) = overlap {
                    let reason = format!(
                        "shipping compacted block {} is blocked: it overlaps bucket block {other}",
                        block.ulid
                    );
                    tracing::error!(%reason);
                    report.failed.push((block.ulid, reason));
                    pending.push(block);
                    continue;
                }
            }
            match self.ship_one(block, &labels).await {
                Ok(true) => {
                    shipped.insert(block.ulid);
                    report.uploaded.push(block.ulid);
                    if let Some(ranges) = bucket_ranges.as_mut() {
                        ranges.push((block.ulid, block.min_time, block.max_time));
                    }
                    self.metrics.uploads.inc();
                }
                Ok(false) => {
                    shipped.insert(block.ulid);
                    report.skipped.push(block.ulid);
                }
                Err(e) => {
                    tracing::warn!(block = %block.ulid, error = %e, "block upload failed; will retry next sync");
                    self.metrics.upload_failures.inc();
                    report.failed.push((block.ulid, e.to_string()));
                    pending.push(block);
                    continue;
                }
            }
            // Persist after every block so a crash never re-uploads finished ones.
            shipped.retain(|u| local.contains(u));
            write_state(&tsdb_dir, &shipped)?;
            self.set_shipped(&shipped);
        }
        shipped.retain(|u| local.contains(u));
        write_state(&tsdb_dir, &shipped)?;
        self.set_shipped(&shipped);
        self.update_lag(&pending);
        Ok(report)
    }

    fn update_lag(&self, pending: &[&LocalBlock]) {
        self.metrics.pending.set(pending.len() as i64);
        let now_ms = crate::time::unix_ms(SystemTime::now());
        let oldest = pending.iter().map(|b| b.max_time).min();
        let age_s = oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
        self.metrics.oldest_age.set(age_s);
        if let Some(first) = pending.first() {
            tracing::warn!(
                pending_blocks = pending.len(),
                oldest_block = %first.ulid,
                behind = %humantime::format_duration(Duration::from_secs(age_s as u64)),
                "shipper is behind: local blocks are not in the bucket yet"
            );
        }
    }

    /// `Ok(true)` = uploaded now, `Ok(false)` = already in the bucket.
    async fn ship_one(
        &self,
        block: &LocalBlock,
        labels: &BTreeMap<String, String>,
    ) -> std::result::Result<bool, UploadError> {
        if blocks::block_exists(self.store.as_ref(), block.ulid).await? {
            return Ok(false);
        }
        let staging = self
            .cfg
            .tsdb_dir
            .join(UPLOAD_STAGING_DIR)
            .join(block.ulid.to_string());
        let staged_dir = staging.clone();
        let src = block.dir.clone();
        tokio::task::spawn_blocking(move || stage_block(&src, &staged_dir))
            .await
            .map_err(|e| UploadError::Io {
                path: staging.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let staged = LocalBlock {
            dir: staging.clone(),
            ..block.clone()
        };
        let result = upload_block(
            self.store.as_ref(),
            &staged,
            labels,
            &self.cfg.source,
            &mut |_| {},
        )
        .await;
        let _ = std::fs::remove_dir_all(&staging);
        result.map(|_| true)
    }
}

/// `(ulid, minTime, maxTime)` of every complete bucket block whose `thanos.labels` equal
/// `labels`.
async fn bucket_blocks_with_labels(
    store: &dyn ObjectStore,
    labels: &BTreeMap<String, String>,
) -> std::result::Result<Vec<(Ulid, i64, i64)>, BucketError> {
    let mut out = Vec::new();
    for dir in blocks::list_blocks(store).await?.into_values() {
        if dir.is_partial() {
            continue;
        }
        let meta = match blocks::read_meta_json(store, dir.ulid).await {
            Ok(Some(meta)) => meta,
            Ok(None) => continue,
            Err(BlocksError::Bucket(e)) => return Err(e),
            Err(BlocksError::Invalid { .. }) => {
                tracing::warn!(block = %dir.ulid, "unparseable meta.json in bucket; ignored for overlap check");
                continue;
            }
        };
        let ulid = dir.ulid;
        let same_labels = meta
            .pointer("/thanos/labels")
            .and_then(|l| serde_json::from_value::<BTreeMap<String, String>>(l.clone()).ok())
            .is_some_and(|l| &l == labels);
        let min = meta.get("minTime").and_then(serde_json::Value::as_i64);
        let max = meta.get("maxTime").and_then(serde_json::Value::as_i64);
        if let (true, Some(min), Some(max)) = (same_labels, min, max) {
            out.push((ulid, min, max));
        }
    }
    Ok(out)
}

/// Hard-links (or copies, across filesystems) a block into the staging dir.
fn stage_block(src: &Path, dst: &Path) -> std::result::Result<(), UploadError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| UploadError::Io { path: p, source }
    };
    if dst.exists() {
        std::fs::remove_dir_all(dst).map_err(io(dst))?;
    }
    link_tree(src, dst).map_err(io(src))
}

fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ft.is_dir() {
            link_tree(&entry.path(), &to)?;
        } else if ft.is_file() && std::fs::hard_link(entry.path(), &to).is_err() {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Local retention decision: a block may be deleted when its data ended more than
/// `retention` ago AND (if shipping is enabled) it is in the bucket. Returns the deletable
/// ULIDs in input order.
pub fn blocks_to_delete(
    blocks: &[(Ulid, i64)],
    shipped: &BTreeSet<Ulid>,
    shipping_enabled: bool,
    now_ms: i64,
    retention: Duration,
) -> Vec<Ulid> {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(retention_ms);
    blocks
        .iter()
        .filter(|(ulid, max_time)| {
            *max_time < cutoff && (!shipping_enabled || shipped.contains(ulid))
        })
        .map(|(ulid, _)| *ulid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_requires_shipped_and_old() {
        let (a, b, c) = (Ulid::new(), Ulid::new(), Ulid::new());
        let shipped = BTreeSet::from([a, b]);
        let blocks = [(a, 1_000), (b, 9_000), (c, 1_000)];
        let del = blocks_to_delete(&blocks, &shipped, true, 10_000, Duration::from_secs(5));
        assert_eq!(del, vec![a]);
        let del = blocks_to_delete(&blocks, &shipped, false, 10_000, Duration::from_secs(5));
        assert_eq!(del, vec![a, c]);
    }

    #[test]
    fn state_file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_state(dir.path()), StateRead::Missing));
        let set = BTreeSet::from([Ulid::new(), Ulid::new()]);
        write_state(dir.path(), &set).unwrap();
        match read_state(dir.path()) {
            StateRead::Ok(read) => assert_eq!(read, set),
            other => panic!("{other:?}"),
        }
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(raw["version"], 1);
        std::fs::write(
            dir.path().join(STATE_FILE),
            b"{\"version\":1,\"uploaded\":[\"x",
        )
        .unwrap();
        assert!(matches!(read_state(dir.path()), StateRead::Corrupt(_)));
        std::fs::write(
            dir.path().join(STATE_FILE),
            b"{\"version\":2,\"uploaded\":[]}",
        )
        .unwrap();
        assert!(matches!(read_state(dir.path()), StateRead::Corrupt(_)));
    }
}
