//! Bucket tools behind the CLI (`strata tools bucket ...`): `bucket_ls` (table of blocks),
//! `bucket_inspect` (one block's meta and objects), `bucket_verify` (every file in
//! `thanos.files` exists with its size, plus pluggable content checks) and `upload_dir`
//! (manual upload of a TSDB dir through the shipper's code path). What is a block, a partial
//! upload or a meta.json comes from the block catalogue (`blocks`); the tools show metas as
//! the JSON that is stored, unknown fields included.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use serde_json::Value;
use ulid::Ulid;

use super::blocks::{self, BlockDir, BlocksError};
use super::shipper::scan_blocks;
use super::upload::{upload_block, UploadError, UploadEvent};
use super::{BucketError, ListEntry, ObjectStore};

#[derive(Debug, thiserror::Error)]
pub enum BucketToolError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Shipper(#[from] super::shipper::ShipperError),
    #[error("invalid meta.json of block {ulid}: {reason}")]
    InvalidMeta { ulid: Ulid, reason: String },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, BucketToolError>;

/// One row of `bucket_ls`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSummary {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
    pub resolution: i64,
    pub level: u64,
    pub series: u64,
    pub samples: u64,
    pub size_bytes: u64,
    pub labels: BTreeMap<String, String>,
    /// The marks the block carries: `deletion`, `no-compact`, `no-downsample` (`-` for none
    /// in the table).
    pub marks: Vec<&'static str>,
}

impl BlockSummary {
    fn from_meta(ulid: Ulid, meta: &Value) -> Self {
        let i = |p: &str| meta.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let u = |p: &str| meta.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let labels = meta
            .pointer("/thanos/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let size_bytes = meta
            .pointer("/thanos/files")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| f.get("size_bytes").and_then(Value::as_u64))
                    .sum()
            })
            .unwrap_or(0);
        Self {
            ulid,
            min_time: i("/minTime"),
            max_time: i("/maxTime"),
            resolution: i("/thanos/downsample/resolution"),
            level: u("/compaction/level"),
            series: u("/stats/numSeries"),
            samples: u("/stats/numSamples"),
            size_bytes,
            labels,
            marks: Vec::new(),
        }
    }
}

/// The stored meta.json of `ulid` as JSON; `None` for a partial upload.
async fn fetch_meta(store: &dyn ObjectStore, ulid: Ulid) -> Result<Option<Value>> {
    blocks::read_meta_json(store, ulid)
        .await
        .map_err(|e| match e {
            BlocksError::Bucket(e) => BucketToolError::Bucket(e),
            BlocksError::Invalid { ulid, reason, .. } => {
                BucketToolError::InvalidMeta { ulid, reason }
            }
        })
}

/// The meta.json of a listed block directory; `None` for a partial upload.
async fn dir_meta(store: &dyn ObjectStore, dir: &BlockDir) -> Result<Option<Value>> {
    if dir.is_partial() {
        return Ok(None);
    }
    fetch_meta(store, dir.ulid).await
}

fn fmt_time(ms: i64) -> String {
    if ms < 0 {
        return ms.to_string();
    }
    crate::time::rfc3339_seconds(crate::time::from_unix_ms(ms))
}

fn fmt_duration(ms: i64) -> String {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(ms / 1000)).to_string()
}

fn fmt_labels(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// Writes a table of all complete blocks (sorted by min time) and returns the rows. Blocks
/// without `meta.json` (partial uploads) are listed at the end as such.
pub async fn bucket_ls(store: &dyn ObjectStore, out: &mut dyn Write) -> Result<Vec<BlockSummary>> {
    let mut rows = Vec::new();
    let mut partial = Vec::new();
    for dir in blocks::list_blocks(store).await?.values() {
        match dir_meta(store, dir).await? {
            Some(meta) => {
                let mut row = BlockSummary::from_meta(dir.ulid, &meta);
                if dir.has_deletion_mark {
                    row.marks.push("deletion");
                }
                if dir.has_no_compact_mark {
                    row.marks.push("no-compact");
                }
                if dir.has_no_downsample_mark {
                    row.marks.push("no-downsample");
                }
                rows.push(row);
            }
            None => partial.push(dir.ulid),
        }
    }
    rows.sort_by_key(|r| (r.min_time, r.ulid));
    writeln!(
        out,
        "{:<26}  {:<20}  {:<20}  {:>10}  {:>10}  {:>5}  {:>10}  {:>12}  {:>12}  {:<19}  LABELS",
        "ULID",
        "FROM",
        "UNTIL",
        "RANGE",
        "RESOLUTION",
        "LEVEL",
        "SERIES",
        "SAMPLES",
        "SIZE",
        "MARKS"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<26}  {:<20}  {:<20}  {:>10}  {:>10}  {:>5}  {:>10}  {:>12}  {:>12}  {:<19}  {}",
            r.ulid.to_string(),
            fmt_time(r.min_time),
            fmt_time(r.max_time),
            fmt_duration(r.max_time - r.min_time),
            fmt_duration(r.resolution),
            r.level,
            r.series,
            r.samples,
            r.size_bytes,
            if r.marks.is_empty() {
                "-".to_string()
            } else {
                r.marks.join(",")
            },
            fmt_labels(&r.labels)
        )?;
    }
    for ulid in partial {
        writeln!(out, "{ulid}  (partial upload: no meta.json)")?;
    }
    Ok(rows)
}

/// Everything known about one block in the bucket.
#[derive(Debug, Clone)]
pub struct BlockInspection {
    pub ulid: Ulid,
    /// `None` for a partial upload.
    pub meta: Option<Value>,
    pub objects: Vec<ListEntry>,
}

impl std::fmt::Display for BlockInspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "block {}", self.ulid)?;
        match &self.meta {
            Some(m) => writeln!(
                f,
                "{}",
                serde_json::to_string_pretty(m).unwrap_or_else(|_| m.to_string())
            )?,
            None => writeln!(f, "meta.json: missing (partial upload)")?,
        }
        writeln!(f, "objects:")?;
        for o in &self.objects {
            writeln!(f, "  {:>12}  {}", o.size, o.key)?;
        }
        Ok(())
    }
}

pub async fn bucket_inspect(store: &dyn ObjectStore, ulid: Ulid) -> Result<BlockInspection> {
    let meta = fetch_meta(store, ulid).await?;
    let objects = store.list(&blocks::block_prefix(ulid), None).await?.objects;
    if meta.is_none() && objects.is_empty() {
        return Err(BucketError::NotFound {
            key: format!("{ulid}/"),
        }
        .into());
    }
    Ok(BlockInspection {
        ulid,
        meta,
        objects,
    })
}

/// Content checks the integrator plugs in (index/chunk parsers). Return `Err(problem)` for
/// each block whose content is wrong.
#[async_trait]
pub trait BlockContentCheck: Send + Sync {
    async fn check(
        &self,
        store: &dyn ObjectStore,
        ulid: Ulid,
        meta: &Value,
    ) -> std::result::Result<(), String>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub blocks_checked: usize,
    pub partial_uploads: Vec<Ulid>,
    pub problems: Vec<(Ulid, String)>,
}

/// Checks every complete block: each file in `thanos.files` exists with its `size_bytes`,
/// then the optional content check. Problems are written to `out` and returned.
pub async fn bucket_verify(
    store: &dyn ObjectStore,
    out: &mut dyn Write,
    content_check: Option<&dyn BlockContentCheck>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for dir in blocks::list_blocks(store).await?.values() {
        let ulid = dir.ulid;
        let meta = match dir_meta(store, dir).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                writeln!(out, "{ulid}: partial upload (no meta.json)")?;
                report.partial_uploads.push(ulid);
                continue;
            }
            Err(BucketToolError::InvalidMeta { reason, .. }) => {
                let p = format!("meta.json is not valid JSON: {reason}");
                writeln!(out, "{ulid}: {p}")?;
                report.problems.push((ulid, p));
                continue;
            }
            Err(e) => return Err(e),
        };
        report.blocks_checked += 1;
        let mut problems = verify_files(dir, &meta);
        if let Some(check) = content_check {
            if let Err(p) = check.check(store, ulid, &meta).await {
                problems.push(format!("content: {p}"));
            }
        }
        for p in problems {
            writeln!(out, "{ulid}: {p}")?;
            report.problems.push((ulid, p));
        }
    }
    writeln!(
        out,
        "verified {} blocks: {} problems, {} partial uploads",
        report.blocks_checked,
        report.problems.len(),
        report.partial_uploads.len()
    )?;
    Ok(report)
}

/// Compares `thanos.files` with the objects the listing found in the block's directory.
fn verify_files(dir: &BlockDir, meta: &Value) -> Vec<String> {
    let ulid = dir.ulid;
    let mut problems = Vec::new();
    if meta.get("ulid").and_then(Value::as_str) != Some(ulid.to_string().as_str()) {
        problems.push("meta.json ulid does not match its directory".to_string());
    }
    let Some(files) = meta.pointer("/thanos/files").and_then(Value::as_array) else {
        problems.push("meta.json has no thanos.files list".to_string());
        return problems;
    };
    let listed: BTreeMap<&str, u64> = dir
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.size))
        .collect();
    for f in files {
        let Some(rel) = f.get("rel_path").and_then(Value::as_str) else {
            problems.push(format!("thanos.files entry without rel_path: {f}"));
            continue;
        };
        let key = blocks::object_key(ulid, rel);
        match (
            listed.get(key.as_str()),
            f.get("size_bytes").and_then(Value::as_u64),
        ) {
            (None, _) => problems.push(format!("missing file {rel}")),
            (Some(actual), Some(expected)) if *actual != expected => problems.push(format!(
                "file {rel} is {actual} bytes, meta.json says {expected}"
            )),
            _ => {}
        }
    }
    problems
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadDirReport {
    pub uploaded: Vec<Ulid>,
    pub already_present: Vec<Ulid>,
    pub failed: Vec<(Ulid, String)>,
}

/// Uploads every finished block of `tsdb_dir` that is not in the bucket yet, with the same
/// code path as the shipper (`thanos.source = "bucket.upload"`). Existing labels in a
/// block's meta are replaced by `external_labels`; empty labels are refused.
pub async fn upload_dir(
    store: &dyn ObjectStore,
    tsdb_dir: &Path,
    external_labels: &BTreeMap<String, String>,
    progress: &mut (dyn FnMut(&UploadEvent) + Send),
) -> Result<UploadDirReport> {
    if external_labels.is_empty() {
        return Err(super::shipper::ShipperError::EmptyExternalLabels.into());
    }
    let mut report = UploadDirReport::default();
    let mut blocks = Vec::new();
    for b in scan_blocks(tsdb_dir)? {
        match b {
            Ok(b) => blocks.push(b),
            Err(f) => report.failed.push(f),
        }
    }
    blocks.sort_by_key(|b| (b.min_time, b.ulid));
    for block in blocks {
        if blocks::block_exists(store, block.ulid).await? {
            report.already_present.push(block.ulid);
            continue;
        }
        match upload_block(store, &block, external_labels, "bucket.upload", progress).await {
            Ok(_) => report.uploaded.push(block.ulid),
            Err(e) => report.failed.push((block.ulid, e.to_string())),
        }
    }
    Ok(report)
}
