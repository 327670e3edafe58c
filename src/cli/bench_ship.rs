//! `strata tools bench ship`: upload throughput and CPU cost of the node's shipping path.
//! Writes synthetic finished blocks (incompressible chunk segments, a small index, a level-1
//! meta.json) into a scratch TSDB dir, ships them with the same `Shipper` a node runs (hard-link
//! staging, chunks, index, meta.json last, state file) to the configured bucket, reports MB/s
//! and CPU seconds per GB of this process, then deletes the uploaded blocks again
//! (meta.json first) so a real bucket is left as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use prometheus_client::registry::Registry;
use ulid::Ulid;

use super::bucket::BucketArgs;
use super::{CliError, Result};
use crate::config::Config;
use crate::storage::bucket::blocks::{self, META_FILE};
use crate::storage::bucket::open_bucket;
use crate::storage::bucket::shipper::{Shipper, ShipperConfig};
use crate::storage::db::bench::cpu_seconds;

#[derive(Args, Debug, Clone)]
pub struct ShipBenchArgs {
    #[command(flatten)]
    pub bucket: BucketArgs,
    /// Total size of the synthetic blocks in MiB.
    #[arg(long = "size-mb", default_value_t = 256)]
    pub size_mb: u64,
    /// Number of blocks the size is split over.
    #[arg(long, default_value_t = 2)]
    pub blocks: u64,
    /// Scratch TSDB dir (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the uploaded blocks in the bucket instead of deleting them afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Chunk segments are cut at 512 MiB like Prometheus's.
const SEGMENT_BYTES: u64 = 512 * 1024 * 1024;
const INDEX_BYTES: u64 = 4 * 1024 * 1024;

/// Fast incompressible filler (xorshift64*), so nothing on the path can compress it away.
fn fill(buf: &mut [u8], state: &mut u64) {
    for word in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        word.copy_from_slice(&v[..word.len()]);
    }
}

fn write_file(path: &Path, size: u64, state: &mut u64) -> Result<()> {
    let io = |source| CliError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        fill(&mut buf[..n], state);
        f.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    f.flush().map_err(io)?;
    Ok(())
}

/// One synthetic level-1 block of about `bytes` bytes; returns its ULID.
fn make_block(tsdb: &Path, min_time: i64, bytes: u64, state: &mut u64) -> Result<Ulid> {
    let ulid = Ulid::new();
    let dir = tsdb.join(ulid.to_string());
    let chunks = dir.join("chunks");
    std::fs::create_dir_all(&chunks).map_err(|source| CliError::Open {
        path: chunks.display().to_string(),
        source,
    })?;
    let mut left = bytes.saturating_sub(INDEX_BYTES).max(1);
    let mut seg = 1;
    while left > 0 {
        let n = left.min(SEGMENT_BYTES);
        write_file(&chunks.join(format!("{seg:06}")), n, state)?;
        left -= n;
        seg += 1;
    }
    write_file(&dir.join("index"), INDEX_BYTES.min(bytes), state)?;
    let meta = serde_json::json!({
        "ulid": ulid.to_string(),
        "minTime": min_time,
        "maxTime": min_time + 7_200_000,
        "stats": {"numSamples": bytes, "numSeries": 1, "numChunks": 1},
        "compaction": {"level": 1, "sources": [ulid.to_string()]},
        "version": 1
    });
    let path = dir.join(META_FILE);
    let body = serde_json::to_vec_pretty(&meta).map_err(|e| CliError::Failed(e.to_string()))?;
    std::fs::write(&path, body).map_err(|source| CliError::Open {
        path: path.display().to_string(),
        source,
    })?;
    Ok(ulid)
}

pub fn run(args: ShipBenchArgs, out: &mut dyn Write) -> Result<()> {
    let cfg = match &args.bucket.config {
        Some(p) => Config::load(p).map_err(|e| CliError::Config(e.to_string()))?,
        None => Config::embedded_default(),
    };
    let (dir, scratch) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("strata-bench-ship-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Open {
        path: dir.display().to_string(),
        source,
    })?;
    let result = run_in(&args, &cfg, &dir, out);
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(args: &ShipBenchArgs, cfg: &Config, dir: &Path, out: &mut dyn Write) -> Result<()> {
    let blocks = args.blocks.max(1);
    let per_block = (args.size_mb.max(1) << 20) / blocks;
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    eprintln!(
        "writing {blocks} synthetic blocks of {} MiB to {}",
        per_block >> 20,
        dir.display()
    );
    let base = 1_000_000_000_000i64;
    let mut ids = Vec::new();
    for i in 0..blocks {
        ids.push(make_block(
            dir,
            base + i as i64 * 7_200_000,
            per_block,
            &mut state,
        )?);
    }
    let bytes: u64 = ids.iter().map(|u| dir_size(&dir.join(u.to_string()))).sum();

    let rt = super::bucket::runtime()?;
    rt.block_on(async {
        let mut registry = Registry::default();
        let store = open_bucket(
            &crate::storage::bucket::config::from_config(&cfg.bucket),
            &mut registry,
        )?;
        let mut labels = cfg.shipping_labels();
        labels.insert("bench".into(), "ship".into());
        let shipper = Shipper::new(
            ShipperConfig {
                tsdb_dir: dir.to_path_buf(),
                external_labels: labels,
                source: "sidecar".into(),
                upload_compacted: false,
            },
            store.clone(),
            &mut registry,
        );
        eprintln!(
            "shipping {:.1} MiB to the {} bucket",
            bytes as f64 / 1048576.0,
            store.backend()
        );
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let report = shipper
            .sync()
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let shipped = report.uploaded.len();
        if !args.keep {
            for u in &ids {
                blocks::delete_block(store.as_ref(), *u).await?;
            }
        }
        if !report.failed.is_empty() || shipped != ids.len() {
            return Err(CliError::Failed(format!(
                "shipped {shipped} of {} blocks: {:?}",
                ids.len(),
                report.failed
            )));
        }
        let mb = bytes as f64 / 1e6;
        let gb = bytes as f64 / 1e9;
        writeln!(
            out,
            "backend={} blocks={shipped} bytes={bytes}",
            store.backend()
        )?;
        writeln!(
            out,
            "upload: {wall:.2}s wall, {:.1} MB/s",
            mb / wall.max(1e-9)
        )?;
        writeln!(
            out,
            "cpu: {cpu:.2} CPU s, {:.2} CPU s per GB",
            cpu / gb.max(1e-9)
        )?;
        Ok(())
    })
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => total += dir_size(&e.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_not_constant_and_blocks_have_the_asked_size() {
        let mut s = 42u64;
        let mut a = [0u8; 64];
        fill(&mut a, &mut s);
        assert!(a.windows(8).any(|w| w != &a[..8]));
        let dir =
            std::env::temp_dir().join(format!("strata-bench-ship-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let u = make_block(&dir, 0, 6 << 20, &mut s).unwrap();
        let size = dir_size(&dir.join(u.to_string()));
        assert!((6 << 20..(6 << 20) + 4096).contains(&size), "{size}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
