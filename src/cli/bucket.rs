//! `strata tools bucket upload|ls|inspect|verify` (and `compact|downsample|mark|cleanup`, in
//! `bucket_compact`): opens the bucket named by the config's
//! `bucket:` section (the embedded filesystem bucket without `--config`) through
//! `storage::bucket::config::from_config` + `open_bucket`, runs the library tools of `storage::bucket::tools`
//! on a tokio runtime of its own, and prints progress to stderr on long runs. Also owns the
//! content check `verify` plugs in: every block's index and chunk segments are streamed to a
//! temporary directory and parsed with `BlockReader`, down to every sample.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use clap::{Args, Subcommand};
use prometheus_client::registry::Registry;
use serde_json::Value;
use ulid::Ulid;

use super::{CliError, Result};
use crate::config::Config;
use crate::storage::block::BlockReader;
use crate::storage::bucket::blocks::{self, META_FILE};
use crate::storage::bucket::tools::{self as btools, BlockContentCheck};
use crate::storage::bucket::upload::UploadEvent;
use crate::storage::bucket::{open_bucket, validate_key, DynStore, ObjectStore};
use crate::storage::chunkenc::SeriesIterator;

#[derive(Args, Debug, Clone, Default)]
pub struct BucketArgs {
    /// Config file whose `bucket:` section (and `global.external_labels`) is used; without
    /// it, the embedded default (filesystem bucket under ./data/bucket).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum BucketCommand {
    /// Upload the finished blocks of a TSDB dir (Strata's or a Prometheus data dir), labelled
    /// with the config's `global.external_labels` (plus any --label).
    Upload {
        dir: PathBuf,
        #[command(flatten)]
        bucket: BucketArgs,
        /// Extra external label `name=value` (repeatable; overrides the config's).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Table of the blocks in the bucket.
    Ls {
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// One block's meta.json and objects.
    Inspect {
        ulid: String,
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// One compactor pass over the bucket (compaction, HA replica dedup, retention, delayed
    /// deletion, partial-upload cleanup) with the config's `compactor:` section, then exit.
    Compact {
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// Downsample the bucket once, as the compactor does after compacting: raw blocks
    /// spanning 40h or more to 5m, 5m blocks spanning 10d or more to 1h, each block once.
    Downsample {
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// Mark blocks for deletion (deleted after `compactor.delete_delay`), no-compact or
    /// no-downsample.
    Mark {
        #[arg(long, value_enum)]
        kind: super::bucket_compact::MarkKind,
        /// Why, stored in the mark's `details`.
        #[arg(long, default_value = "")]
        details: String,
        /// Block ULIDs.
        ulids: Vec<String>,
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// Delete blocks whose deletion mark is older than `compactor.delete_delay`, and partial
    /// uploads older than 48h.
    Cleanup {
        #[command(flatten)]
        bucket: BucketArgs,
    },
    /// Check every block: listed files exist with their sizes, index and chunks parse.
    Verify {
        #[command(flatten)]
        bucket: BucketArgs,
        /// Only compare files and sizes; do not download and parse index and chunks.
        #[arg(long = "files-only")]
        files_only: bool,
    },
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p).map_err(|e| CliError::Config(e.to_string())),
        None => Ok(Config::embedded_default()),
    }
}

fn open_store(cfg: &Config) -> Result<DynStore> {
    let settings = crate::storage::bucket::config::from_config(&cfg.bucket);
    open_bucket(&settings, &mut Registry::default()).map_err(CliError::Bucket)
}

/// `name=value` pairs from the command line, checked like config label names.
fn parse_labels(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((name, value)) = p.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--label {p:?}: expected name=value"
            )));
        };
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if name.is_empty() || !valid {
            return Err(CliError::Usage(format!(
                "--label {p:?}: {name:?} is not a valid label name"
            )));
        }
        out.insert(name.to_string(), value.to_string());
    }
    Ok(out)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))
}

pub fn run(cmd: BucketCommand, out: &mut dyn Write) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(run_async(cmd, out))
}

async fn run_async(cmd: BucketCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        BucketCommand::Upload {
            dir,
            bucket,
            labels,
        } => {
            let cfg = load_config(bucket.config.as_deref())?;
            let mut ext = cfg.global.external_labels.clone();
            ext.extend(parse_labels(&labels)?);
            if ext.is_empty() {
                return Err(CliError::Usage(
                    "no external labels: set global.external_labels in the config or pass --label name=value (Thanos refuses unlabelled blocks)".into(),
                ));
            }
            if !dir.is_dir() {
                return Err(CliError::Usage(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            let store = open_store(&cfg)?;
            upload(store.as_ref(), &dir, &ext, out).await
        }
        BucketCommand::Ls { bucket } => {
            let store = open_store(&load_config(bucket.config.as_deref())?)?;
            btools::bucket_ls(store.as_ref(), out).await?;
            Ok(())
        }
        BucketCommand::Inspect { ulid, bucket } => {
            let id = Ulid::from_string(&ulid)
                .map_err(|e| CliError::Usage(format!("{ulid:?} is not a block ULID: {e}")))?;
            let store = open_store(&load_config(bucket.config.as_deref())?)?;
            let inspection = btools::bucket_inspect(store.as_ref(), id).await?;
            write!(out, "{inspection}")?;
            Ok(())
        }
        BucketCommand::Compact { bucket } => {
            let cfg = load_config(bucket.config.as_deref())?;
            let store = open_store(&cfg)?;
            super::bucket_compact::compact(&cfg, store, out).await
        }
        BucketCommand::Downsample { bucket } => {
            let cfg = load_config(bucket.config.as_deref())?;
            let store = open_store(&cfg)?;
            super::bucket_compact::downsample(&cfg, store, out).await
        }
        BucketCommand::Cleanup { bucket } => {
            let cfg = load_config(bucket.config.as_deref())?;
            let store = open_store(&cfg)?;
            super::bucket_compact::cleanup(&cfg, store, out).await
        }
        BucketCommand::Mark {
            kind,
            details,
            ulids,
            bucket,
        } => {
            let store = open_store(&load_config(bucket.config.as_deref())?)?;
            super::bucket_compact::mark(store.as_ref(), kind, &details, &ulids, out).await
        }
        BucketCommand::Verify { bucket, files_only } => {
            let store = open_store(&load_config(bucket.config.as_deref())?)?;
            verify(store.as_ref(), files_only, out).await
        }
    }
}

async fn upload(
    store: &dyn ObjectStore,
    dir: &Path,
    labels: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut bytes = 0u64;
    let mut progress = |ev: &UploadEvent| match ev {
        UploadEvent::FileUploaded {
            ulid,
            rel_path,
            size,
        } => {
            bytes += size;
            eprintln!("uploaded {ulid}/{rel_path} ({size} bytes)");
        }
        UploadEvent::MetaUploaded { ulid } => {
            eprintln!("uploaded {ulid}/{META_FILE}: block complete")
        }
    };
    let report = btools::upload_dir(store, dir, labels, &mut progress).await?;
    for u in &report.uploaded {
        writeln!(out, "uploaded {u}")?;
    }
    for u in &report.already_present {
        writeln!(out, "already in the bucket {u}")?;
    }
    for (u, e) in &report.failed {
        writeln!(out, "failed {u}: {e}")?;
    }
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "{} uploaded, {} already present, {} failed; {bytes} data bytes in {secs:.2}s",
        report.uploaded.len(),
        report.already_present.len(),
        report.failed.len()
    )?;
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} blocks could not be uploaded",
            report.failed.len()
        )))
    }
}

async fn verify(store: &dyn ObjectStore, files_only: bool, out: &mut dyn Write) -> Result<()> {
    let total = blocks::list_blocks(store).await?.len();
    let check = DownloadAndParse::new(total);
    let content: Option<&dyn BlockContentCheck> = if files_only { None } else { Some(&check) };
    let report = btools::bucket_verify(store, out, content).await?;
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "bucket verify found {} problems in {} blocks",
            report.problems.len(),
            report.blocks_checked
        )))
    }
}

/// The content check of `verify`: streams the block's files (as `thanos.files` lists them)
/// into a scratch dir, opens it with `BlockReader` and decodes every chunk, comparing series
/// and sample counts and time bounds with `meta.json`.
pub struct DownloadAndParse {
    scratch: PathBuf,
    done: AtomicUsize,
    total: usize,
}

impl DownloadAndParse {
    pub fn new(total: usize) -> Self {
        let scratch = std::env::temp_dir().join(format!("strata-verify-{}", std::process::id()));
        DownloadAndParse {
            scratch,
            done: AtomicUsize::new(0),
            total,
        }
    }
}

impl Drop for DownloadAndParse {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[async_trait]
impl BlockContentCheck for DownloadAndParse {
    async fn check(
        &self,
        store: &dyn ObjectStore,
        ulid: Ulid,
        meta: &Value,
    ) -> std::result::Result<(), String> {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("[{n}/{}] verifying {ulid}", self.total);
        let dir = self.scratch.join(ulid.to_string());
        let result = download_and_parse(store, ulid, meta, &dir).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        result
    }
}

async fn download_and_parse(
    store: &dyn ObjectStore,
    ulid: Ulid,
    meta: &Value,
    dir: &Path,
) -> std::result::Result<(), String> {
    let files = meta
        .pointer("/thanos/files")
        .and_then(Value::as_array)
        .ok_or("meta.json has no thanos.files list")?;
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()));
    mkdir(&dir.join("chunks"))?;
    for f in files {
        let Some(rel) = f.get("rel_path").and_then(Value::as_str) else {
            continue;
        };
        if rel == META_FILE {
            continue;
        }
        let key = blocks::object_key(ulid, rel);
        // A rel_path like `../x` must never make us write outside the scratch dir.
        validate_key(&key).map_err(|e| e.to_string())?;
        store
            .get_to_file(&key, &dir.join(rel))
            .await
            .map_err(|e| format!("downloading {rel}: {e}"))?;
    }
    let body = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(META_FILE), body).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || parse_block(&dir))
        .await
        .map_err(|e| format!("parse task failed: {e}"))?
}

/// Reads every series and sample of a local block and checks them against its meta.
pub fn parse_block(dir: &Path) -> std::result::Result<(), String> {
    let block = BlockReader::open(dir).map_err(|e| e.to_string())?;
    let meta = block.meta().clone();
    let mut cursor = block
        .cursor(&[], i64::MIN, i64::MAX, false)
        .map_err(|e| e.to_string())?;
    let (mut series, mut samples) = (0u64, 0u64);
    while let Some(s) = cursor.next().map_err(|e| e.to_string())? {
        series += 1;
        let mut it = SeriesIterator::new(s.chunks);
        while let Some(sample) = it
            .next()
            .map_err(|e| format!("series {:?}: {e}", s.labels))?
        {
            if sample.t < meta.min_time || sample.t >= meta.max_time {
                return Err(format!(
                    "series {:?} has a sample at {} outside the block range [{}, {})",
                    s.labels, sample.t, meta.min_time, meta.max_time
                ));
            }
            samples += 1;
        }
    }
    if meta.stats.num_series != 0 && series != meta.stats.num_series {
        return Err(format!(
            "index has {series} series, meta.json says {}",
            meta.stats.num_series
        ));
    }
    if meta.stats.num_samples != 0 && samples != meta.stats.num_samples {
        return Err(format!(
            "chunks hold {samples} samples, meta.json says {}",
            meta.stats.num_samples
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_parsed_and_checked() {
        let l = parse_labels(&["cluster=eu1".into(), "a_b=x=y".into()]).unwrap();
        assert_eq!(l["cluster"], "eu1");
        assert_eq!(l["a_b"], "x=y");
        for bad in ["novalue", "1x=y", "a-b=c", "=v"] {
            assert!(parse_labels(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn inspect_refuses_keys_that_are_not_ulids() {
        let rt = runtime().unwrap();
        let mut out = Vec::new();
        for bad in ["../etc", "/abs/01H", "01H/../x"] {
            let err = rt
                .block_on(run_async(
                    BucketCommand::Inspect {
                        ulid: bad.into(),
                        bucket: BucketArgs::default(),
                    },
                    &mut out,
                ))
                .unwrap_err();
            assert!(
                err.to_string().contains("is not a block ULID"),
                "{bad}: {err}"
            );
        }
    }
}
