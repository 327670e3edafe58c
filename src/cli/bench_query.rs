//! `strata tools bench query`: PromQL latency of a Strata node side by side with Debian's
//! Prometheus 2.42 on the same blocks. Generates a fleet's worth of series (counters,
//! a classic histogram, gauges) over many days, builds blocks with `promtool`, links the same
//! block directories into a Prometheus data dir and a Strata node's `tsdb/` dir, starts both
//! servers, runs typical dashboard queries against both HTTP APIs in alternation, prints
//! p50/p90 latencies and their ratio, and checks that the answers agree (same series, values
//! equal within 1e-9 relative). Both servers are stopped at the end.

pub(super) mod data;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::{CliError, Result};
use data::DataSpec;

#[derive(Args, Debug, Clone)]
pub struct QueryBenchArgs {
    /// Work directory (blocks, both servers' data, logs). Default: a temporary directory,
    /// removed afterwards; a given directory is kept and its blocks reused by later runs.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    pub jobs: usize,
    /// Targets per job; each target has 21 series.
    #[arg(long, default_value_t = 50)]
    pub instances: usize,
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Scrape interval of the generated data, in seconds.
    #[arg(long = "interval-s", default_value_t = 300)]
    pub interval_s: i64,
    /// Measured runs per query and server.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Unmeasured runs per query and server before the measured ones.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// promtool imports running at once.
    #[arg(long = "import-jobs", default_value_t = 2)]
    pub import_jobs: usize,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus: PathBuf,
    #[arg(long, default_value = "/usr/bin/promtool")]
    pub promtool: PathBuf,
    /// The Strata binary to run as the node (default: this one).
    #[arg(long)]
    pub strata: Option<PathBuf>,
    /// Only queries whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Run the node with metric-usage recording off (`query.record_usage: false`), to
    /// measure what the recording costs against a run with it on.
    #[arg(long = "no-usage-recording")]
    pub no_usage_recording: bool,
}

/// One benchmark query: instant at the evaluation time, or a range ending there.
struct BenchQuery {
    name: &'static str,
    expr: String,
    /// `None` for an instant query, else (range length, step) in seconds.
    range: Option<(i64, i64)>,
}

fn queries(interval_s: i64) -> Vec<BenchQuery> {
    // Grafana's `$__rate_interval`: four scrape intervals.
    let w = format!("{}s", 4 * interval_s);
    let day = 86_400;
    let q = |name, expr: String, range| BenchQuery { name, expr, range };
    let rate_sum = format!("sum by (job, code) (rate(http_requests_total[{w}]))");
    let hq = format!(
        "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[{w}])))"
    );
    let topk = format!("topk(10, sum by (job, instance) (rate(http_requests_total[{w}])))");
    let ratio = format!(
        "sum by (job, instance) (rate(http_requests_total{{code=~\"5..\"}}[{w}])) \
         / on (job, instance) sum by (job, instance) (rate(http_requests_total[{w}]))"
    );
    let group_left =
        format!("rate(http_requests_total[{w}]) * on (job, instance) group_left cpu_usage");
    vec![
        q("rate+sum by", rate_sum.clone(), None),
        q("histogram_quantile", hq.clone(), None),
        q("topk", topk.clone(), None),
        q("join 1:1 ratio", ratio.clone(), None),
        q("join group_left", group_left, None),
        q("rate+sum by 24h", rate_sum, Some((day, interval_s))),
        q("histogram_quantile 24h", hq, Some((day, interval_s))),
        q("topk 24h", topk, Some((day, interval_s))),
        q("join ratio 24h", ratio, Some((day, interval_s))),
        q(
            "rate+sum by 30d@1h",
            "sum by (job) (rate(http_requests_total[1h]))".to_string(),
            Some((30 * day, 3600)),
        ),
        q(
            "max_over_time 30d@1h",
            "max by (job) (max_over_time(memory_bytes[1h]))".to_string(),
            Some((30 * day, 3600)),
        ),
    ]
}

/// Kills and reaps a server when dropped, so an error on the way never leaves one running.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) name: &'static str,
    pub(super) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmark's work directory: `dir` when given (kept), else a fresh temporary one named
/// after `what` (the bool says it is temporary, to be removed afterwards).
pub(super) fn work_dir(dir: &Option<PathBuf>, what: &str) -> (PathBuf, bool) {
    match dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("strata-bench-{what}-{}", std::process::id())),
            true,
        ),
    }
}

/// The Strata binary to run as the benchmarked node: `given`, else this one.
pub(super) fn strata_binary(given: &Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(|e| {
            CliError::Failed(format!("cannot locate this binary (pass --strata): {e}"))
        }),
    }
}

pub(super) fn free_port() -> Result<u16> {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
    port.map(|a| a.port())
        .map_err(|e| CliError::Failed(format!("cannot pick a free port: {e}")))
}

fn create_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|source| CliError::Open {
        path: p.display().to_string(),
        source,
    })
}

fn log_file(p: &Path) -> Result<std::fs::File> {
    std::fs::File::create(p).map_err(|source| CliError::Open {
        path: p.display().to_string(),
        source,
    })
}

/// Starts `cmd` with its stderr in `log`, killed when the returned handle drops.
pub(super) fn spawn(
    name: &'static str,
    cmd: &mut Command,
    log: &Path,
    base: String,
) -> Result<Server> {
    let err = log_file(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|e| CliError::Failed(format!("cannot start {name}: {e}")))?;
    Ok(Server { child, name, base })
}

fn start_prometheus(bin: &Path, work: &Path) -> Result<Server> {
    let port = free_port()?;
    let cfg = work.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").map_err(|source| CliError::Open {
        path: cfg.display().to_string(),
        source,
    })?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.join("prometheus").display()
        ))
        .arg("--storage.tsdb.retention.time=100y")
        // The blocks stay exactly as promtool wrote them (the same ones Strata reads), and no
        // background compaction competes with the measurement.
        .arg("--storage.tsdb.min-block-duration=2h")
        .arg("--storage.tsdb.max-block-duration=2h")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    spawn(
        "prometheus",
        &mut cmd,
        &work.join("prometheus.log"),
        format!("http://127.0.0.1:{port}"),
    )
}

/// Starts a Strata node from `bin` in `work` (scraper and query roles, a filesystem bucket
/// beside its data), with `extra` appended to its config: the benchmarks' one node set-up.
pub(super) fn start_strata(bin: &Path, work: &Path, extra: &str) -> Result<Server> {
    start_strata_with_roles(bin, work, "scraper_shipper, query_planner", extra)
}

/// [`start_strata`] with the node's `roles` (comma-separated) given.
pub(super) fn start_strata_with_roles(
    bin: &Path,
    work: &Path,
    roles: &str,
    extra: &str,
) -> Result<Server> {
    let (web, gossip, rpc) = (free_port()?, free_port()?, free_port()?);
    let cfg = work.join("strata.yml");
    let yaml = format!(
        "global:\n  scrape_interval: 15s\nnode:\n  id: bench\n  web_listen: 127.0.0.1:{web}\n  \
         gossip_listen: 127.0.0.1:{gossip}\n  rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {}\n  \
         roles: [{roles}]\nbucket:\n  type: filesystem\n  filesystem:\n    dir: {}\n{extra}",
        work.join("strata").display(),
        work.join("strata-bucket").display()
    );
    std::fs::write(&cfg, yaml).map_err(|source| CliError::Open {
        path: cfg.display().to_string(),
        source,
    })?;
    let mut cmd = Command::new(bin);
    cmd.arg("node")
        .arg(format!("--config={}", cfg.display()))
        .arg("--log.level=warn");
    spawn(
        "strata",
        &mut cmd,
        &work.join("strata.log"),
        format!("http://127.0.0.1:{web}"),
    )
}

pub(super) async fn wait_ready(client: &reqwest::Client, s: &mut Server) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let url = format!("{}/-/ready", s.base);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = s.child.try_wait() {
            return Err(CliError::Failed(format!(
                "{} exited with {status} before becoming ready (see its log in the work dir)",
                s.name
            )));
        }
        let ok = client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(CliError::Failed(format!(
        "{} not ready after 180 s",
        s.name
    )))
}

/// Runs one query and returns the wall time to the last body byte, and the body.
async fn run_query(
    client: &reqwest::Client,
    base: &str,
    q: &BenchQuery,
    eval_s: f64,
) -> Result<(f64, bytes::Bytes)> {
    let mut form: Vec<(&str, String)> = vec![("query", q.expr.clone())];
    let path = match q.range {
        None => {
            form.push(("time", format!("{eval_s:.3}")));
            "/api/v1/query"
        }
        Some((len, step)) => {
            form.push(("start", format!("{:.3}", eval_s - len as f64)));
            form.push(("end", format!("{eval_s:.3}")));
            form.push(("step", step.to_string()));
            "/api/v1/query_range"
        }
    };
    let t0 = Instant::now();
    let resp = client
        .post(format!("{base}{path}"))
        .form(&form)
        .send()
        .await
        .map_err(|e| CliError::Failed(format!("{base}{path}: {e}")))?;
    let body = resp
        .bytes()
        .await
        .map_err(|e| CliError::Failed(format!("{base}{path}: reading the answer: {e}")))?;
    Ok((t0.elapsed().as_secs_f64() * 1000.0, body))
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// Series of an answer keyed by their label set, with (timestamp, value) points.
fn keyed(data: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let Some(result) = data["result"].as_array() else {
        return out;
    };
    for r in result {
        let mut points = Vec::new();
        let pair = |v: &Value| (v[0].to_string(), v[1].as_str().unwrap_or("").to_string());
        if let Some(v) = r.get("value") {
            points.push(pair(v));
        }
        if let Some(vs) = r["values"].as_array() {
            points.extend(vs.iter().map(pair));
        }
        out.insert(r["metric"].to_string(), points);
    }
    out
}

/// Differences between the two answers, at most a few lines; empty when they agree.
fn compare(q: &BenchQuery, strata: &[u8], prom: &[u8]) -> Vec<String> {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
    let (a, b) = (parse(strata), parse(prom));
    if a["status"] != "success" || b["status"] != "success" {
        return vec![format!(
            "status: strata {} / prometheus {}",
            a["error"], b["error"]
        )];
    }
    let (ka, kb) = (keyed(&a["data"]), keyed(&b["data"]));
    let mut diffs = Vec::new();
    for k in ka.keys().filter(|k| !kb.contains_key(*k)) {
        diffs.push(format!("only in strata: {k}"));
    }
    for k in kb.keys().filter(|k| !ka.contains_key(*k)) {
        diffs.push(format!("only in prometheus: {k}"));
    }
    for (k, pa) in &ka {
        let Some(pb) = kb.get(k) else { continue };
        if pa.len() != pb.len() {
            diffs.push(format!("{k}: {} vs {} points", pa.len(), pb.len()));
            continue;
        }
        if let Some((x, y)) = pa
            .iter()
            .zip(pb)
            .find(|(x, y)| x.0 != y.0 || !close(&x.1, &y.1))
        {
            diffs.push(format!("{k}: strata {x:?} vs prometheus {y:?}"));
        }
    }
    if q.range.is_none() && q.name.starts_with("topk") {
        let order = |d: &Value| {
            d["data"]["result"].as_array().map(|r| {
                r.iter()
                    .map(|x| x["metric"].to_string())
                    .collect::<Vec<_>>()
            })
        };
        if order(&a) != order(&b) {
            diffs.push("result order differs".to_string());
        }
    }
    let total = diffs.len();
    diffs.truncate(5);
    if total > 5 {
        diffs.push(format!("... {} more", total - 5));
    }
    diffs
}

struct Row {
    name: &'static str,
    prom: Vec<f64>,
    strata: Vec<f64>,
    series: usize,
    diffs: Vec<String>,
}

async fn measure(
    args: &QueryBenchArgs,
    prom: &Server,
    strata: &Server,
    eval_s: f64,
) -> Result<Vec<Row>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| CliError::Failed(format!("http client: {e}")))?;
    let mut rows = Vec::new();
    for q in queries(args.interval_s) {
        if args.only.as_deref().is_some_and(|o| !q.name.contains(o)) {
            continue;
        }
        let mut row = Row {
            name: q.name,
            prom: Vec::new(),
            strata: Vec::new(),
            series: 0,
            diffs: Vec::new(),
        };
        let mut last = (bytes::Bytes::new(), bytes::Bytes::new());
        for i in 0..args.warmup + args.runs {
            // Alternate who goes first, so both see the same background load on average.
            let (p, s) = if i % 2 == 0 {
                let p = run_query(&client, &prom.base, &q, eval_s).await?;
                (p, run_query(&client, &strata.base, &q, eval_s).await?)
            } else {
                let s = run_query(&client, &strata.base, &q, eval_s).await?;
                (run_query(&client, &prom.base, &q, eval_s).await?, s)
            };
            if i >= args.warmup {
                row.prom.push(p.0);
                row.strata.push(s.0);
            }
            last = (s.1, p.1);
        }
        row.diffs = compare(&q, &last.0, &last.1);
        row.series = serde_json::from_slice::<Value>(&last.1)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().map(|r| r.len()))
            .unwrap_or(0);
        eprintln!("  {}: done", q.name);
        rows.push(row);
    }
    Ok(rows)
}

fn print_table(rows: &mut [Row], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<24} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7}  answers",
        "query", "series", "prom p50", "prom p90", "strata p50", "strata p90", "ratio"
    )?;
    for r in rows.iter_mut() {
        r.prom.sort_by(f64::total_cmp);
        r.strata.sort_by(f64::total_cmp);
        let (pp50, sp50) = (percentile(&r.prom, 0.5), percentile(&r.strata, 0.5));
        writeln!(
            out,
            "{:<24} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>7.2}  {}",
            r.name,
            r.series,
            pp50,
            percentile(&r.prom, 0.9),
            sp50,
            percentile(&r.strata, 0.9),
            sp50 / pp50,
            if r.diffs.is_empty() {
                "agree"
            } else {
                "DIFFER"
            }
        )?;
    }
    writeln!(
        out,
        "(latencies in ms, ratio = strata p50 / prometheus p50)"
    )?;
    for r in rows.iter().filter(|r| !r.diffs.is_empty()) {
        writeln!(out, "mismatches in {}:", r.name)?;
        for d in &r.diffs {
            writeln!(out, "  {d}")?;
        }
    }
    Ok(())
}

pub fn run(args: QueryBenchArgs, out: &mut dyn Write) -> Result<()> {
    let (work, temporary) = work_dir(&args.dir, "query");
    let result = run_in(&args, &work, out);
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn run_in(args: &QueryBenchArgs, work: &Path, out: &mut dyn Write) -> Result<()> {
    if args.jobs == 0 || args.instances == 0 || args.days <= 0 || args.interval_s <= 0 {
        return Err(CliError::Usage(
            "--jobs, --instances, --days and --interval-s must be positive".to_string(),
        ));
    }
    if args.runs == 0 {
        return Err(CliError::Usage("--runs must be positive".to_string()));
    }
    let blocks = work.join("blocks");
    create_dir(&blocks)?;
    let spec = load_or_build(args, work, &blocks)?;
    writeln!(
        out,
        "data: {} series ({} jobs x {} instances x {}), {} days at {}s = {} samples, {} blocks",
        spec.series(),
        args.jobs,
        args.instances,
        data::SERIES_PER_TARGET,
        args.days,
        args.interval_s,
        spec.series() as i64 * spec.samples_per_series(),
        data::block_dirs(&blocks)?.len()
    )?;
    out.flush()?;

    // Fresh server dirs each run: both start from exactly the promtool blocks.
    let (prom_dir, strata_tsdb) = (work.join("prometheus"), work.join("strata").join("tsdb"));
    for d in [&prom_dir, &work.join("strata")] {
        let _ = std::fs::remove_dir_all(d);
    }
    create_dir(&prom_dir)?;
    create_dir(&strata_tsdb)?;
    data::link_blocks(&blocks, &prom_dir)?;
    data::link_blocks(&blocks, &strata_tsdb)?;
    // The node reads its local TSDB as a scraper_shipper; these blocks count as shipped
    // already (as after a sidecar's earlier uploads), so no upload competes with the queries.
    data::mark_shipped(&strata_tsdb)?;

    let strata_bin = strata_binary(&args.strata)?;
    let rt = super::bucket::runtime()?;
    rt.block_on(async {
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        let mut prom = start_prometheus(&args.prometheus, work)?;
        let extra = if args.no_usage_recording {
            "tsdb:\n  retention: 100y\nquery:\n  record_usage: false\n"
        } else {
            "tsdb:\n  retention: 100y\n"
        };
        let mut strata = start_strata(&strata_bin, work, extra)?;
        wait_ready(&client, &mut prom).await?;
        wait_ready(&client, &mut strata).await?;
        eprintln!(
            "both servers ready after {:.1}s; measuring",
            t0.elapsed().as_secs_f64()
        );
        // An odd millisecond, a little after the last scrape: no range boundary hits a sample.
        let eval_ms = spec.end_ms - spec.interval_ms + 61_517;
        let mut rows = measure(args, &prom, &strata, eval_ms as f64 / 1000.0).await?;
        writeln!(
            out,
            "runs: {} measured (+{} warm-up) per query and server, evaluation time {}.{:03}",
            args.runs,
            args.warmup,
            eval_ms / 1000,
            eval_ms % 1000
        )?;
        print_table(&mut rows, out)?;
        drop(strata);
        drop(prom);
        Ok(())
    })
}

/// The data spec of `work`, building its blocks first unless a previous run with the same
/// shape left them there (recorded in `spec.txt`).
pub(super) fn load_or_build(args: &QueryBenchArgs, work: &Path, blocks: &Path) -> Result<DataSpec> {
    let shape = format!(
        "jobs={} instances={} days={} interval_s={}",
        args.jobs, args.instances, args.days, args.interval_s
    );
    let spec_file = work.join("spec.txt");
    if let Ok(text) = std::fs::read_to_string(&spec_file) {
        let mut lines = text.lines();
        if lines.next() == Some(shape.as_str()) {
            let end_ms = lines.next().and_then(|l| l.trim().parse::<i64>().ok());
            if let Some(end_ms) = end_ms {
                eprintln!("reusing the blocks in {}", blocks.display());
                return Ok(spec_for(args, end_ms));
            }
        }
    }
    let _ = std::fs::remove_dir_all(blocks);
    create_dir(blocks)?;
    let now_ms = crate::time::now_ms();
    // Ends at the last full 2h boundary, so the newest block is complete.
    let end_ms = now_ms / 7_200_000 * 7_200_000;
    let spec = spec_for(args, end_ms);
    let t0 = Instant::now();
    eprintln!(
        "generating {} series x {} samples and importing with {}",
        spec.series(),
        spec.samples_per_series(),
        args.promtool.display()
    );
    let windows = data::build_blocks(&spec, &args.promtool, work, blocks, args.import_jobs)?;
    eprintln!(
        "imported {windows} windows in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    std::fs::write(&spec_file, format!("{shape}\n{end_ms}\n")).map_err(|source| {
        CliError::Open {
            path: spec_file.display().to_string(),
            source,
        }
    })?;
    Ok(spec)
}

fn spec_for(args: &QueryBenchArgs, end_ms: i64) -> DataSpec {
    DataSpec {
        jobs: args.jobs,
        instances: args.instances,
        start_ms: end_ms - args.days * 86_400_000,
        end_ms,
        interval_ms: args.interval_s * 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_uses_a_relative_tolerance() {
        assert!(close("1e12", "1.0000000000001e12"));
        assert!(!close("1", "1.001"));
        assert!(close("NaN", "NaN"));
        assert!(!close("NaN", "1"));
    }

    #[test]
    fn percentiles_pick_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.9), 5.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn compare_reports_missing_series_and_value_differences() {
        let q = BenchQuery {
            name: "x",
            expr: "x".into(),
            range: None,
        };
        let a = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1.5,"2"]}]}}"#;
        let b = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1.5,"2.5"]},{"metric":{"a":"2"},"value":[1.5,"1"]}]}}"#;
        let d = compare(&q, a, b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(compare(&q, a, a).is_empty());
    }
}
