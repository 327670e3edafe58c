//! `strata tools bucket compact|downsample|mark|cleanup`: the Compactor's code run once from
//! the command line over the config's bucket. `compact` runs one full pass (compaction,
//! vertical dedup of HA replicas, downsampling unless `compactor.downsample: false`,
//! retention, delayed deletion, partial-upload cleanup) with progress on stderr and a summary
//! table on stdout; `downsample` runs only the downsampling step (every eligible block, one
//! progress line per block); `mark` puts Thanos deletion, no-compact or no-downsample marks on
//! blocks by hand; `cleanup` runs only the deletion side of a pass (due deletion marks,
//! abandoned partial uploads). Like Thanos's `compact --wait=false` and `tools bucket
//! downsample|mark|cleanup`.

use std::io::Write;
use std::time::SystemTime;

use ulid::Ulid;

use super::{CliError, Result};
use crate::config::Config;
use crate::storage::bucket::blocks;
use crate::storage::bucket::{DynStore, ObjectStore};
use crate::storage::compactor::exec::{
    run_cleanup, run_downsample, run_pass, AlwaysOwn, PassReport, Progress,
};
use crate::storage::compactor::settings::settings_from_config;

/// What `mark --kind` takes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    Deletion,
    NoCompact,
    NoDownsample,
}

/// `300000` ms as `5m`, `3600000` as `1h`.
fn resolution_name(ms: i64) -> String {
    match ms {
        0 => "raw".to_string(),
        300_000 => "5m".to_string(),
        3_600_000 => "1h".to_string(),
        other => format!("{other}ms"),
    }
}

/// A progress line for stderr, or `None` for events too frequent to print.
fn progress_line(p: &Progress) -> Option<String> {
    Some(match p {
        Progress::Listing => "listing the bucket".to_string(),
        Progress::Planned { streams } => format!("{streams} stream(s) to look at"),
        Progress::StreamStart { stream, plan } => format!("stream {stream}: plan {plan}"),
        Progress::Downloading {
            block,
            bytes,
            total,
        } => {
            if *bytes != *total {
                return None;
            }
            format!("  downloaded {block} ({total} bytes)")
        }
        // The executor reports a merge about once a second.
        Progress::Merging { series } => format!("  merged {series} series"),
        Progress::Downsampling { block, resolution } => {
            format!("downsampling {block} to {}", resolution_name(*resolution))
        }
        Progress::Downsampled {
            block,
            into,
            resolution,
            series,
        } => format!(
            "  downsampled {block} into {into} ({}, {series} series)",
            resolution_name(*resolution)
        ),
        Progress::Uploading { block } => format!("  uploading {block}"),
        Progress::Marked { block, what } => format!("  marked {block}: {what}"),
        Progress::Deleted { block } => format!("  deleted {block}"),
        Progress::Done => "pass done".to_string(),
    })
}

fn print_progress(p: Progress) {
    if let Some(line) = progress_line(&p) {
        eprintln!("{line}");
    }
}

/// The summary of a pass as a two-column table.
pub fn write_summary(report: &PassReport, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: [(&str, String); 16] = [
        ("streams", report.streams.to_string()),
        ("vertical compactions", report.vertical_plans.to_string()),
        ("level compactions", report.level_plans.to_string()),
        ("blocks written", report.blocks_written.len().to_string()),
        (
            "inputs marked for deletion",
            report.inputs_marked.len().to_string(),
        ),
        (
            "blocks marked no-compact",
            report.no_compact_marked.len().to_string(),
        ),
        ("blocks downsampled", report.downsampled.len().to_string()),
        (
            "blocks marked no-downsample",
            report.no_downsample_marked.len().to_string(),
        ),
        ("retention marks", report.retention_marked.len().to_string()),
        (
            "duplicates marked",
            report.duplicates_marked.len().to_string(),
        ),
        ("blocks deleted", report.deleted.len().to_string()),
        (
            "partial uploads deleted",
            report.partial_uploads_deleted.len().to_string(),
        ),
        (
            "invalid files skipped",
            report.invalid_files.len().to_string(),
        ),
        ("bytes downloaded", report.bytes_downloaded.to_string()),
        ("bytes uploaded", report.bytes_uploaded.to_string()),
        ("seconds", format!("{:.2}", report.duration_seconds)),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<28} {value:>14}")?;
    }
    for b in &report.blocks_written {
        writeln!(
            out,
            "written {} level {} {:?} from {} source(s), stream {}",
            b.ulid, b.level, b.kind, b.sources, b.stream
        )?;
    }
    for d in &report.downsampled {
        writeln!(
            out,
            "downsampled {} into {} ({}, {} series, {} samples)",
            d.source,
            d.ulid,
            resolution_name(d.resolution),
            d.num_series,
            d.num_samples
        )?;
    }
    for m in &report.no_downsample_marked {
        writeln!(
            out,
            "no-downsample {} ({}): {}",
            m.ulid, m.reason, m.details
        )?;
    }
    for m in &report.no_compact_marked {
        writeln!(out, "no-compact {} ({}): {}", m.ulid, m.reason, m.details)?;
    }
    for f in &report.invalid_files {
        writeln!(out, "skipped {}/{}: {}", f.ulid, f.file, f.reason)?;
    }
    for e in &report.errors {
        writeln!(out, "error (retried next pass): {e}")?;
    }
    Ok(())
}

/// One full compactor pass; fails (non-zero exit) when the pass hit transient errors.
pub async fn compact(cfg: &Config, store: DynStore, out: &mut dyn Write) -> Result<()> {
    let settings = settings_from_config(cfg, cfg.node.data_dir.join("compactor"));
    let report = run_pass_on(store, &settings, false).await?;
    summarize(&report, out)
}

/// Only the downsampling step, over every stream; fails (non-zero exit) when it hit
/// transient errors.
pub async fn downsample(cfg: &Config, store: DynStore, out: &mut dyn Write) -> Result<()> {
    let settings = settings_from_config(cfg, cfg.node.data_dir.join("compactor"));
    let now = SystemTime::now();
    let report = run_downsample(store, &settings, &AlwaysOwn, None, &print_progress, now)
        .await
        .map_err(|e| CliError::Usage(format!("downsampling pass: {e}")))?;
    summarize(&report, out)
}

/// Prints the pass's summary; an error (non-zero exit) when it hit transient errors.
fn summarize(report: &PassReport, out: &mut dyn Write) -> Result<()> {
    write_summary(report, out)?;
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "the pass hit {} error(s); run it again",
            report.errors.len()
        )))
    }
}

/// Only the deletion side of a pass: due deletion marks and abandoned partial uploads.
pub async fn cleanup(cfg: &Config, store: DynStore, out: &mut dyn Write) -> Result<()> {
    let settings = settings_from_config(cfg, cfg.node.data_dir.join("compactor"));
    let report = run_pass_on(store, &settings, true).await?;
    write_summary(&report, out)?;
    Ok(())
}

async fn run_pass_on(
    store: DynStore,
    settings: &crate::storage::compactor::exec::CompactorSettings,
    cleanup_only: bool,
) -> Result<PassReport> {
    let now = SystemTime::now();
    let res = if cleanup_only {
        run_cleanup(store, settings, None, &print_progress, now).await
    } else {
        run_pass(store, settings, &AlwaysOwn, None, &print_progress, now).await
    };
    res.map_err(|e| CliError::Usage(format!("compactor pass: {e}")))
}

/// Puts a deletion, no-compact or no-downsample mark (reason `manual`) on each block; blocks
/// must exist.
pub async fn mark(
    store: &dyn ObjectStore,
    kind: MarkKind,
    details: &str,
    ulids: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    if ulids.is_empty() {
        return Err(CliError::Usage("name at least one block ULID".into()));
    }
    let mut ids = Vec::new();
    for u in ulids {
        ids.push(
            Ulid::from_string(u)
                .map_err(|e| CliError::Usage(format!("{u:?} is not a block ULID: {e}")))?,
        );
    }
    let now = SystemTime::now();
    for id in ids {
        if !blocks::block_exists(store, id)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?
        {
            return Err(CliError::Usage(format!("no block {id} in the bucket")));
        }
        let what = match kind {
            MarkKind::Deletion => blocks::ManualMark::Deletion,
            MarkKind::NoCompact => blocks::ManualMark::NoCompact,
            MarkKind::NoDownsample => blocks::ManualMark::NoDownsample,
        };
        let written = blocks::put_manual_mark(store, id, what, details, now)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let what = what.as_str();
        if written {
            writeln!(out, "marked {id} for {what}")?;
        } else {
            writeln!(out, "{id} already has a {what} mark")?;
        }
    }
    Ok(())
}
