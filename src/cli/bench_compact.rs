//! `strata tools bench compact`: the bucket compactor's throughput and peak memory, side by
//! side with Prometheus 2.42 compacting the same blocks in its own data dir.
//!
//! The data: four 2h blocks of `--series` series (node-exporter-shaped labels plus a unique id
//! label, a sample every 15 s, XOR chunks written by Strata's block writer, so Prometheus reads
//! them as its own) in one aligned range, and a fifth, newer block, because both planners leave
//! the newest block alone. Strata runs `strata tools bucket compact` as a child process over a
//! filesystem bucket holding the five blocks, twice: with its default levels (2h → 8h: one
//! compaction of the four) and with Prometheus's levels (2h → 6h → 18h: three blocks into a 6h
//! one, then that and the fourth into 8h — what Prometheus itself does). Prometheus is started
//! on a data dir holding the same five blocks; its first compaction cycle runs a minute after
//! start, and its own `prometheus_tsdb_compaction_duration_seconds` says how long compacting
//! took. Peak RSS is the process's `VmHWM`; MB/s is the input blocks' size over the time spent
//! compacting. Progress goes to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use super::bench_query::{free_port, spawn};
use super::{CliError, Result};
use crate::storage::store::synth::{write_block, SynthSpec};

const HOUR_MS: i64 = 3_600_000;

#[derive(Args, Debug, Clone)]
pub struct CompactBenchArgs {
    /// Series per block.
    #[arg(long, default_value_t = 100_000)]
    pub series: usize,
    /// Work dir (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The Prometheus binary to compare with.
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus: PathBuf,
    /// Only measure Strata.
    #[arg(long)]
    pub skip_prometheus: bool,
}

/// One measured run.
struct Measured {
    name: String,
    compactions: u64,
    /// Size of the blocks that were compacted.
    input_bytes: u64,
    seconds: f64,
    peak_rss_bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Open {
        path: path.display().to_string(),
        source,
    }
}

/// `VmHWM` (peak resident set) of a live process, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            n += dir_bytes(&p);
        } else {
            n += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    n
}

/// Hard-links (or copies, across file systems) the block directory `from` into `to`.
fn link_block(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to.join("chunks")).map_err(io_err(to))?;
    for sub in ["", "chunks"] {
        let src_dir = from.join(sub);
        for e in std::fs::read_dir(&src_dir)
            .map_err(io_err(&src_dir))?
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                continue;
            }
            let dest = to.join(sub).join(e.file_name());
            if std::fs::hard_link(&p, &dest).is_err() {
                std::fs::copy(&p, &dest).map_err(io_err(&dest))?;
            }
        }
    }
    Ok(())
}

/// Writes the five blocks; returns their directories (oldest first) and the four inputs' size.
fn write_blocks(args: &CompactBenchArgs, dir: &Path) -> Result<(Vec<PathBuf>, u64)> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    // Aligned to a day, so the range is whole for both 8h (Strata) and 6h/18h (Prometheus).
    let day = 24 * HOUR_MS;
    let base = (crate::time::now_ms() - 2 * day) / day * day;
    let mut out = Vec::new();
    let mut input_bytes = 0;
    for k in 0..5 {
        eprintln!("writing block {}/5 ({} series)", k + 1, args.series);
        let mut spec = SynthSpec::new(args.series, base + k * 2 * HOUR_MS);
        spec.id_label = true;
        spec.seed = 7 + k as u64;
        spec.chunk_variants = args.series.clamp(1, 4096);
        spec.external_labels = [("cluster", "bench"), ("replica", "r1")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let meta = write_block(dir, &spec).map_err(|e| CliError::Failed(e.to_string()))?;
        let path = dir.join(meta.ulid.to_string());
        if k < 4 {
            input_bytes += dir_bytes(&path);
        }
        out.push(path);
    }
    Ok((out, input_bytes))
}

/// Waits for `child`, sampling its peak RSS; fails if it exits unsuccessfully.
fn wait_sampling(mut child: Child, what: &str) -> Result<(f64, u64, std::process::Output)> {
    let t0 = Instant::now();
    let mut peak = 0;
    loop {
        if let Some(p) = peak_rss(child.id()) {
            peak = peak.max(p);
        }
        if child
            .try_wait()
            .map_err(|e| CliError::Failed(format!("{what}: {e}")))?
            .is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = t0.elapsed().as_secs_f64();
    let output = child
        .wait_with_output()
        .map_err(|e| CliError::Failed(format!("{what}: {e}")))?;
    if !output.status.success() {
        return Err(CliError::Failed(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok((secs, peak, output))
}

/// A row of `bucket compact`'s summary table.
fn summary_row(out: &str, name: &str) -> Option<f64> {
    out.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// One `strata tools bucket compact` pass over a fresh bucket of the five blocks.
fn run_strata(work: &Path, blocks: &[PathBuf], name: &str, ranges: &str) -> Result<Measured> {
    let dir = work.join(name.replace([' ', '(', ')', '→'], "_"));
    let bucket = dir.join("bucket");
    for b in blocks {
        let Some(file) = b.file_name() else { continue };
        link_block(b, &bucket.join(file))?;
    }
    let cfg = dir.join("strata.yml");
    let yaml = format!(
        "global:\n  external_labels: {{cluster: bench, replica: r1}}\nnode:\n  data_dir: {}\n\
         compactor:\n  consistency_delay: 0s\n{ranges}bucket:\n  type: filesystem\n  filesystem:\n    dir: {}\n",
        dir.join("data").display(),
        bucket.display()
    );
    std::fs::write(&cfg, yaml).map_err(io_err(&cfg))?;
    eprintln!("strata ({name}): compacting");
    let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
    let child = Command::new(exe)
        .args(["tools", "bucket", "compact", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::Failed(format!("cannot start strata: {e}")))?;
    let (wall, peak, output) = wait_sampling(child, "strata tools bucket compact")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let written = summary_row(&text, "blocks written").unwrap_or(0.0) as u64;
    let seconds = summary_row(&text, "seconds").unwrap_or(wall);
    let input_bytes = summary_row(&text, "bytes downloaded").unwrap_or(0.0) as u64;
    eprintln!("strata ({name}): {written} compaction(s) in {seconds:.2} s (process {wall:.2} s)");
    Ok(Measured {
        name: format!("strata ({name})"),
        compactions: written,
        input_bytes,
        seconds,
        peak_rss_bytes: peak,
    })
}

/// The size of the blocks (among `blocks`) that the compacted blocks in `data` list as parents.
fn compacted_input_bytes(data: &Path, blocks: &[PathBuf]) -> u64 {
    let Ok(entries) = std::fs::read_dir(data) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(meta) = crate::storage::block::BlockMeta::read(&e.path()) else {
            continue;
        };
        for p in &meta.compaction.parents {
            let name = p.ulid.to_string();
            if let Some(b) = blocks.iter().find(|b| b.ends_with(&name)) {
                total += dir_bytes(b);
            }
        }
    }
    total
}

/// A sample value from Prometheus's own /metrics text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

async fn run_prometheus(bin: &Path, work: &Path, blocks: &[PathBuf]) -> Result<Measured> {
    let dir = work.join("prometheus");
    let data = dir.join("data");
    for b in blocks {
        let Some(file) = b.file_name() else { continue };
        link_block(b, &data.join(file))?;
    }
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").map_err(io_err(&cfg))?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg("--storage.tsdb.min-block-duration=2h")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let server = spawn(
        "prometheus",
        &mut cmd,
        &dir.join("prometheus.log"),
        format!("http://127.0.0.1:{port}"),
    )?;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    eprintln!("prometheus: waiting for its compaction cycle (it starts a minute after start)");
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut last_count = 0.0;
    let mut settled_since: Option<Instant> = None;
    loop {
        if Instant::now() > deadline {
            return Err(CliError::Failed(
                "Prometheus did not finish compacting within 15 minutes".to_string(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        let count = metric(&text, "prometheus_tsdb_compactions_total").unwrap_or(0.0);
        if count != last_count {
            eprintln!("prometheus: {count} compaction(s) so far");
            last_count = count;
            settled_since = Some(Instant::now());
        }
        // Compactions follow each other at once within a cycle; 20 s without a new one means
        // the cycle is over.
        if count > 0.0 && settled_since.is_some_and(|t| t.elapsed() > Duration::from_secs(20)) {
            let seconds =
                metric(&text, "prometheus_tsdb_compaction_duration_seconds_sum").unwrap_or(0.0);
            let peak = peak_rss(server.child.id()).unwrap_or(0);
            return Ok(Measured {
                name: "prometheus 2.42".to_string(),
                compactions: count as u64,
                input_bytes: compacted_input_bytes(&data, blocks),
                seconds,
                peak_rss_bytes: peak,
            });
        }
    }
}

pub fn run(args: CompactBenchArgs, out: &mut dyn Write) -> Result<()> {
    if args.series == 0 {
        return Err(CliError::Usage("--series must be positive".to_string()));
    }
    let (work, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("strata-bench-compact-{}", std::process::id())),
            true,
        ),
    };
    let result = run_in(&args, &work, out);
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn run_in(args: &CompactBenchArgs, work: &Path, out: &mut dyn Write) -> Result<()> {
    let (blocks, input_bytes) = write_blocks(args, &work.join("blocks"))?;
    let mut rows = vec![
        run_strata(work, &blocks, "8h levels", "")?,
        run_strata(
            work,
            &blocks,
            "Prometheus's levels",
            "  block_ranges: [2h, 6h, 18h]\n",
        )?,
    ];
    if !args.skip_prometheus {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        rows.push(rt.block_on(run_prometheus(&args.prometheus, work, &blocks))?);
    }
    writeln!(
        out,
        "input: 4 blocks x {} series, 2h at 15 s each, {:.1} MB (plus a newer fifth block)",
        args.series,
        input_bytes as f64 / 1e6
    )?;
    writeln!(
        out,
        "{:<32} {:>11} {:>10} {:>9} {:>9} {:>13}",
        "", "compactions", "input MB", "seconds", "MB/s", "peak RSS MiB"
    )?;
    for r in &rows {
        let mb = r.input_bytes as f64 / 1e6;
        let rate = if r.seconds > 0.0 { mb / r.seconds } else { 0.0 };
        writeln!(
            out,
            "{:<32} {:>11} {:>10.1} {:>9.2} {:>9.1} {:>13.1}",
            r.name,
            r.compactions,
            mb,
            r.seconds,
            rate,
            r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_metric_lines_and_summary_rows() {
        let text = "# HELP x\nprometheus_tsdb_compactions_total 2\n\
                    prometheus_tsdb_compaction_duration_seconds_sum 1.5\n\
                    prometheus_tsdb_compaction_duration_seconds_bucket{le=\"1\"} 1\n";
        assert_eq!(metric(text, "prometheus_tsdb_compactions_total"), Some(2.0));
        assert_eq!(
            metric(text, "prometheus_tsdb_compaction_duration_seconds_sum"),
            Some(1.5)
        );
        assert_eq!(metric(text, "prometheus_tsdb_compaction_duration"), None);
        let summary = "blocks written                            2\nseconds    3.25\n";
        assert_eq!(summary_row(summary, "blocks written"), Some(2.0));
        assert_eq!(summary_row(summary, "seconds"), Some(3.25));
    }

    #[test]
    fn peak_rss_of_this_process_is_positive() {
        assert!(peak_rss(std::process::id()).is_some_and(|b| b > 0));
    }
}
