//! `strata tools bench downsample`: what downsampling buys a long-range dashboard. Builds the
//! query benchmark's data set (promtool blocks; by default 2,100 series over 30 days at a 60 s
//! interval), uploads it to a filesystem bucket, compacts and downsamples it with this binary's
//! `tools bucket compact` until a pass changes nothing, starts a StoreShard + QueryPlanner node
//! over the bucket and runs range queries of up to 30 days at a 1 h step with
//! `max_source_resolution=0s` (raw), `auto` (step/5, so the 5m blocks) and `1h`, over two
//! windows: the newest days (raw, 5m and 1h blocks mixed, as compaction leaves them) and the
//! longest stretch wholly covered by 1h blocks (a query "over downsampled data"). It reports
//! the chunk bytes each query read (cached or not), the median latency of the warm runs, the
//! resolutions the node says it read, and how far the downsampled answers are from raw.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::bench_query::{
    load_or_build, percentile, start_strata_with_roles, strata_binary, wait_ready, work_dir,
    QueryBenchArgs,
};
use super::bench_scrape::write_file;
use super::{CliError, Result};

#[derive(Args, Debug, Clone)]
pub struct DownsampleBenchArgs {
    /// Work directory (blocks, bucket, node data, logs). Default: a temporary directory,
    /// removed afterwards; a given directory keeps its blocks and its compacted bucket for
    /// later runs.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Targets per job; each target has 21 series.
    #[arg(long, default_value_t = 25)]
    pub instances: usize,
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Scrape interval of the generated data, in seconds.
    #[arg(long = "interval-s", default_value_t = 60)]
    pub interval_s: i64,
    /// Measured (warm) runs per query and variant.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    #[arg(long = "import-jobs", default_value_t = 2)]
    pub import_jobs: usize,
    #[arg(long, default_value = "/usr/bin/promtool")]
    pub promtool: PathBuf,
    /// The Strata binary to run (default: this one).
    #[arg(long)]
    pub strata: Option<PathBuf>,
}

const QUERIES: [(&str, &str); 5] = [
    ("rate sum", "sum by (job) (rate(http_requests_total[1h]))"),
    // A rate range of two windows or more may read 1h data (Thanos caps shorter ones to 5m).
    (
        "rate sum 2h",
        "sum by (job) (rate(http_requests_total[2h]))",
    ),
    (
        "max_over_time",
        "max by (job) (max_over_time(memory_bytes[1h]))",
    ),
    (
        "min_over_time",
        "min by (job) (min_over_time(cpu_usage[1h]))",
    ),
    (
        "p99 latency",
        "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[1h])))",
    ),
];

fn run_cli(bin: &Path, args: &[&str], log: &Path) -> Result<String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run {}: {e}", bin.display())))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| CliError::Open {
            path: log.display().to_string(),
            source,
        })?;
    let _ = f.write_all(&out.stderr);
    if !out.status.success() {
        return Err(CliError::Failed(format!(
            "strata {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Uploads the blocks and compacts (and downsamples) the bucket until a pass changes nothing,
/// unless a previous run with the same data left it so (recorded in `bucket.done`).
fn prepare_bucket(bin: &Path, work: &Path, blocks: &Path, shape: &str) -> Result<()> {
    let bucket = work.join("strata-bucket");
    let done = work.join("bucket.done");
    if std::fs::read_to_string(&done).ok().as_deref() == Some(shape) {
        eprintln!("reusing the compacted bucket in {}", bucket.display());
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&bucket);
    let cfg = work.join("bucket.yml");
    write_file(
        &cfg,
        &format!(
            "global:\n  external_labels: {{cluster: bench}}\nbucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\ncompactor: {{consistency_delay: 0s}}\n",
            bucket.display()
        ),
    )?;
    let cfg = cfg.display().to_string();
    let log = work.join("bucket-tools.log");
    let t0 = Instant::now();
    let blocks = blocks.display().to_string();
    run_cli(
        bin,
        &["tools", "bucket", "upload", &blocks, "--config", &cfg],
        &log,
    )?;
    eprintln!("uploaded in {:.1}s", t0.elapsed().as_secs_f64());
    let mut before = run_cli(bin, &["tools", "bucket", "ls", "--config", &cfg], &log)?;
    for pass in 1..=12 {
        let t = Instant::now();
        run_cli(bin, &["tools", "bucket", "compact", "--config", &cfg], &log)?;
        let after = run_cli(bin, &["tools", "bucket", "ls", "--config", &cfg], &log)?;
        eprintln!(
            "compaction pass {pass}: {:.1}s, {} blocks listed",
            t.elapsed().as_secs_f64(),
            after.lines().count().saturating_sub(1)
        );
        if after == before {
            break;
        }
        before = after;
    }
    eprintln!(
        "bucket ready after {:.1}s:\n{before}",
        t0.elapsed().as_secs_f64()
    );
    write_file(&done, shape)
}

/// One run: wall ms, the answer, and the resolution header.
async fn run(
    client: &reqwest::Client,
    base: &str,
    expr: &str,
    (start, end): (i64, i64),
    resolution: &str,
) -> Result<(f64, Value, String)> {
    let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let form = [
        ("query", expr.to_string()),
        ("start", secs(start)),
        ("end", secs(end)),
        ("step", "3600".to_string()),
        ("max_source_resolution", resolution.to_string()),
    ];
    let t0 = Instant::now();
    let resp = client
        .post(format!("{base}/api/v1/query_range"))
        .form(&form)
        .send()
        .await
        .map_err(|e| CliError::Failed(format!("query: {e}")))?;
    let header: Vec<String> = resp
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-strata-resolution"))
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
        .collect();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| CliError::Failed(format!("query answer: {e}")))?;
    if body["status"] != "success" {
        return Err(CliError::Failed(format!("query failed: {body}")));
    }
    Ok((t0.elapsed().as_secs_f64() * 1000.0, body, header.join("; ")))
}

/// `strata_store_chunk_bytes_touched` of the node: chunk bytes queries read, cached or not.
async fn bytes_read(client: &reqwest::Client, base: &str) -> f64 {
    let Ok(resp) = client.get(format!("{base}/metrics")).send().await else {
        return f64::NAN;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("strata_store_chunk_bytes_touched"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The largest relative difference between two range answers over the points both have, and
/// how many points the first has that the second lacks.
fn difference(raw: &Value, down: &Value) -> (f64, usize) {
    let points = |v: &Value| -> BTreeMap<(String, String), f64> {
        let mut out = BTreeMap::new();
        for s in v["data"]["result"].as_array().into_iter().flatten() {
            let key = s["metric"].to_string();
            for p in s["values"].as_array().into_iter().flatten() {
                let v = p[1]
                    .as_str()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(f64::NAN);
                out.insert((key.clone(), p[0].to_string()), v);
            }
        }
        out
    };
    let (a, b) = (points(raw), points(down));
    let mut worst: f64 = 0.0;
    let mut missing = 0;
    for (k, x) in &a {
        match b.get(k) {
            Some(y) if x.is_finite() && y.is_finite() => {
                let rel = (x - y).abs() / x.abs().max(1e-12);
                worst = worst.max(rel);
            }
            Some(_) => {}
            None => missing += 1,
        }
    }
    (worst, missing)
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Up to 30 days, ending on the last millisecond of an hour, that the bucket's 1h blocks
/// (not marked for deletion) cover without a gap: where a query at `1h` reads only them.
fn one_hour_window(bucket: &Path) -> Option<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for entry in std::fs::read_dir(bucket).ok()?.flatten() {
        let dir = entry.path();
        if dir.join("deletion-mark.json").exists() {
            continue;
        }
        let Ok(text) = std::fs::read(dir.join("meta.json")) else {
            continue;
        };
        let Ok(meta) = serde_json::from_slice::<crate::storage::block::BlockMeta>(&text) else {
            continue;
        };
        if meta.resolution() == HOUR_MS {
            spans.push((meta.min_time, meta.max_time));
        }
    }
    spans.sort_unstable();
    // The newest gap-free run of 1h blocks. A block ends one millisecond after its last
    // sample, so neighbours leave a gap of up to a scrape interval: under an hour is no gap.
    let mut run: Option<(i64, i64)> = None;
    for (a, b) in spans {
        run = match run {
            Some((s, e)) if a <= e + HOUR_MS => Some((s, e.max(b))),
            _ => Some((a, b)),
        };
    }
    let (from, to) = run?;
    let end = to / HOUR_MS * HOUR_MS - 1;
    // The first step's 1h range must lie inside the run too.
    let first = (from + HOUR_MS - 1) / HOUR_MS * HOUR_MS + HOUR_MS - 1;
    let start = first.max(end - 30 * DAY_MS);
    (end - start >= DAY_MS).then_some((start, end))
}

/// The query table over one window: every query at raw, auto and 1h resolution.
async fn table(
    client: &reqwest::Client,
    base: &str,
    (start, end): (i64, i64),
    runs: usize,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(
        out,
        "{:<14} {:>6} {:>12} {:>7} {:>10} {:>8} {:>9} {:>8}  resolutions read",
        "query", "res", "chunk bytes", "fewer", "warm p50", "speedup", "max diff", "missing"
    )?;
    for (name, expr) in QUERIES {
        let mut raw_answer = Value::Null;
        let mut raw_stats = (f64::NAN, f64::NAN);
        for res in ["0s", "auto", "1h"] {
            let b0 = bytes_read(client, base).await;
            let (_, answer, header) = run(client, base, expr, (start, end), res).await?;
            let read = bytes_read(client, base).await - b0;
            let mut times = Vec::new();
            for _ in 0..runs {
                times.push(run(client, base, expr, (start, end), res).await?.0);
            }
            times.sort_by(|a, b| a.total_cmp(b));
            let p50 = percentile(&times, 0.5);
            let (fewer, speedup, diff, missing) = if res == "0s" {
                raw_answer = answer;
                raw_stats = (read, p50);
                let dash = || String::from("-");
                (dash(), dash(), dash(), dash())
            } else {
                let (d, m) = difference(&raw_answer, &answer);
                (
                    format!("{:.1}x", raw_stats.0 / read),
                    format!("{:.1}x", raw_stats.1 / p50),
                    format!("{:.2}%", d * 100.0),
                    m.to_string(),
                )
            };
            writeln!(
                out,
                "{:<14} {:>6} {:>12.0} {:>7} {:>8.1}ms {:>8} {:>9} {:>8}  {}",
                name, res, read, fewer, p50, speedup, diff, missing, header
            )?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn run_bench(args: DownsampleBenchArgs, out: &mut dyn Write) -> Result<()> {
    if args.jobs == 0 || args.instances == 0 || args.days <= 0 || args.interval_s <= 0 {
        return Err(CliError::Usage(
            "--jobs, --instances, --days and --interval-s must be positive".to_string(),
        ));
    }
    let (work, temporary) = work_dir(&args.dir, "downsample");
    let result = bench_in(&args, &work, out);
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn bench_in(args: &DownsampleBenchArgs, work: &Path, out: &mut dyn Write) -> Result<()> {
    let bin = strata_binary(&args.strata)?;
    let blocks = work.join("blocks");
    std::fs::create_dir_all(&blocks).map_err(|source| CliError::Open {
        path: blocks.display().to_string(),
        source,
    })?;
    let query_args = QueryBenchArgs {
        dir: Some(work.to_path_buf()),
        jobs: args.jobs,
        instances: args.instances,
        days: args.days,
        interval_s: args.interval_s,
        runs: args.runs,
        warmup: 0,
        import_jobs: args.import_jobs,
        prometheus: PathBuf::from("/usr/bin/prometheus"),
        promtool: args.promtool.clone(),
        strata: None,
        only: None,
        no_usage_recording: false,
    };
    let spec = load_or_build(&query_args, work, &blocks)?;
    let shape = format!(
        "jobs={} instances={} days={} interval_s={} end={}",
        args.jobs, args.instances, args.days, args.interval_s, spec.end_ms
    );
    prepare_bucket(&bin, work, &blocks, &shape)?;
    let _ = std::fs::remove_dir_all(work.join("strata"));
    let rt = super::bucket::runtime()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| CliError::Failed(format!("http client: {e}")))?;
        let mut node = start_strata_with_roles(&bin, work, "store_shard, query_planner", "")?;
        wait_ready(&client, &mut node).await?;
        // The store serves what it has synced; wait until a query over the whole range answers.
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Steps on the last millisecond of an hour, where 5m and 1h windows end: a range
        // that is a multiple of 1h then covers whole windows at every resolution, and the
        // raw samples in it are exactly those the windows aggregate.
        let end = spec.end_ms / HOUR_MS * HOUR_MS - HOUR_MS - 1;
        let days = (args.days - 1).min(30);
        writeln!(
            out,
            "data: {} series, {} days at {}s; queries at a 1h step",
            spec.series(),
            args.days,
            args.interval_s,
        )?;
        let mut windows = vec![(
            format!("the newest {days} days (raw, 5m and 1h blocks)"),
            end - days * DAY_MS,
            end,
        )];
        match one_hour_window(&work.join("strata-bucket")) {
            Some((start, end)) => windows.push((
                format!(
                    "{:.1} days wholly covered by 1h blocks",
                    (end - start) as f64 / DAY_MS as f64
                ),
                start,
                end,
            )),
            None => writeln!(out, "(no day wholly covered by 1h blocks: use more --days)")?,
        }
        for (label, start, end) in windows {
            writeln!(out, "\nwindow: {label}")?;
            table(&client, &node.base, (start, end), args.runs, out).await?;
        }
        drop(node);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_finds_the_worst_point_and_missing_ones() {
        let raw = serde_json::json!({"data": {"result": [
            {"metric": {"a": "1"}, "values": [[1, "100"], [2, "200"], [3, "300"]]}]}});
        let down = serde_json::json!({"data": {"result": [
            {"metric": {"a": "1"}, "values": [[1, "101"], [2, "200"]]}]}});
        let (worst, missing) = difference(&raw, &down);
        assert!((worst - 0.01).abs() < 1e-12, "{worst}");
        assert_eq!(missing, 1);
    }
}
