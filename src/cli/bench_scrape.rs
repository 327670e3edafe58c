//! `strata tools bench scrape`: the cost of scraping. Part one is parse throughput in
//! samples/s of a 10k-line exposition body in the text format and in OpenMetrics, both for
//! a first read (every line parsed in full) and for the steady state a scrape loop sees (every
//! series text already known from the previous body, see `Parser::next_known`). Part two runs
//! a Strata node and Debian's Prometheus 2.42 side by side with the same scrape config over
//! targets served from this process (fixed bodies of a few families with HELP/TYPE, label
//! sets like an application's), waits until both have every target up, and compares the CPU
//! seconds (utime + stime from `/proc/<pid>/stat`) each process spends over the measured
//! window; it also reports how many series each stored, which must agree. The integration
//! test `scrape_bench` runs part two at a small scale through [`cpu_comparison`].

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::bench_query::{free_port, spawn, start_strata, strata_binary, work_dir, Server};
use super::{CliError, Result};
use crate::scrape::parser::{Entry, Format, Parser};

#[derive(Args, Debug, Clone)]
pub struct ScrapeBenchArgs {
    /// Work directory (configs, both servers' data and logs). Default: a temporary directory,
    /// removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub targets: usize,
    /// Series per target.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Scrape interval (and timeout) in seconds.
    #[arg(long = "interval-s", default_value_t = 1)]
    pub interval_s: u64,
    /// Length of the measured window in seconds.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Seconds to wait after every target is up before measuring (first-scrape series
    /// creation is not what this measures).
    #[arg(long = "settle-secs", default_value_t = 5)]
    pub settle_secs: u64,
    /// Only the parse throughput; no servers.
    #[arg(long = "parse-only")]
    pub parse_only: bool,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus: PathBuf,
    /// The Strata binary to run as the node (default: this one).
    #[arg(long)]
    pub strata: Option<PathBuf>,
}

/// Parse throughput of one format.
#[derive(Clone, Debug)]
pub struct ParseReport {
    pub format: Format,
    pub lines: usize,
    pub samples: u64,
    /// Every line parsed in full (names, labels, values).
    pub full_samples_per_sec: f64,
    /// Every series text known from the previous body, as in a steady scrape.
    pub known_samples_per_sec: f64,
}

/// A node-exporter-like body of about 10,000 lines: families of 20 series with HELP and
/// TYPE, three labels each (`# EOF` ends the OpenMetrics one). Returns it and its sample
/// count; `benches/parse.rs` measures the same body.
pub fn parse_body(format: Format) -> (String, u64) {
    let mut s = String::new();
    let (mut samples, mut lines, mut family) = (0u64, 0usize, 0usize);
    while lines < 10_000 {
        let name = format!("node_family_{family}_total");
        s.push_str(&format!(
            "# HELP {name} Family number {family} of the benchmark body.\n# TYPE {name} counter\n"
        ));
        lines += 2;
        for i in 0..20 {
            let value = (family * 1000 + i) as f64 * 1.5;
            s.push_str(&format!(
                "{name}{{cpu=\"{i}\",mode=\"user\",instance=\"host-{family}:9100\"}} {value}\n"
            ));
            samples += 1;
            lines += 1;
        }
        family += 1;
    }
    if format == Format::OpenMetrics {
        s.push_str("# EOF\n");
    }
    (s, samples)
}

/// Parses `body` in full; returns the samples read.
fn parse_full(body: &[u8], format: Format) -> Result<u64> {
    let mut p = Parser::new(body, format);
    let mut n = 0;
    while let Some(e) = p
        .next_entry()
        .map_err(|e| CliError::Failed(e.to_string()))?
    {
        if let Entry::Sample(s) = e {
            n += 1;
            std::hint::black_box(&s);
        }
    }
    Ok(n)
}

/// Parses `body` the way a scrape loop does once it knows the target: the series text
/// expected next is tried first, the full parser reads what does not match.
fn parse_known(body: &[u8], format: Format, known: &[Vec<u8>]) -> Result<u64> {
    let mut p = Parser::new(body, format);
    let (mut n, mut next) = (0u64, 0usize);
    let fail = |e: crate::scrape::parser::ParseError| CliError::Failed(e.to_string());
    loop {
        if let Some(series) = known.get(next) {
            if let Some(v) = p.next_known(series).map_err(fail)? {
                std::hint::black_box(v);
                n += 1;
                next += 1;
                continue;
            }
        }
        match p.next_entry().map_err(fail)? {
            None => return Ok(n),
            Some(Entry::Sample(s)) => {
                std::hint::black_box(&s);
                n += 1;
                next += 1;
            }
            Some(_) => {}
        }
    }
}

/// Runs `f` for at least `min` and returns its calls per second.
fn rate(min: Duration, mut f: impl FnMut() -> Result<u64>) -> Result<f64> {
    let t0 = Instant::now();
    let mut items = 0u64;
    while t0.elapsed() < min {
        items += f()?;
    }
    Ok(items as f64 / t0.elapsed().as_secs_f64())
}

/// Part one: parse throughput of both formats, each measured for about `min` per mode.
pub fn parse_throughput(min: Duration) -> Result<Vec<ParseReport>> {
    let mut out = Vec::new();
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let (body, samples) = parse_body(format);
        let body = body.as_bytes();
        let mut known = Vec::new();
        let mut p = Parser::new(body, format);
        while let Some(e) = p
            .next_entry()
            .map_err(|e| CliError::Failed(e.to_string()))?
        {
            if let (Entry::Sample(_), Some(series)) = (e, p.last_series()) {
                known.push(series.to_vec());
            }
        }
        // Warm caches and the allocator before timing.
        parse_full(body, format)?;
        let full = rate(min, || parse_full(body, format))?;
        let steady = rate(min, || parse_known(body, format, &known))?;
        out.push(ParseReport {
            format,
            lines: body.iter().filter(|&&b| b == b'\n').count(),
            samples,
            full_samples_per_sec: full,
            known_samples_per_sec: steady,
        });
    }
    Ok(out)
}

/// What part two runs.
#[derive(Clone, Debug)]
pub struct CpuOptions {
    pub targets: usize,
    pub series: usize,
    pub interval: Duration,
    pub measure: Duration,
    pub settle: Duration,
    pub prometheus: PathBuf,
    pub strata: PathBuf,
    /// Configs, data and logs of both servers.
    pub work: PathBuf,
}

/// Part two's result.
#[derive(Clone, Debug)]
pub struct CpuReport {
    /// Wall seconds of the measured window.
    pub wall_secs: f64,
    pub strata_cpu_secs: f64,
    pub prometheus_cpu_secs: f64,
    /// `count({job="bench"})` on each server after the window.
    pub strata_series: f64,
    pub prometheus_series: f64,
    /// `sum(scrape_samples_scraped)` on each server after the window.
    pub strata_samples_scraped: f64,
    pub prometheus_samples_scraped: f64,
}

impl CpuReport {
    pub fn ratio(&self) -> f64 {
        self.strata_cpu_secs / self.prometheus_cpu_secs.max(1e-9)
    }
}

/// One target's body: four families (counters and a gauge) with HELP/TYPE, `series`
/// samples with handler/method/code labels like an application's request metrics.
pub fn target_body(target: usize, series: usize) -> String {
    let mut s = String::with_capacity(series * 90);
    let per_family = series.div_ceil(4);
    let families = [
        ("bench_requests_total", "counter"),
        ("bench_bytes_total", "counter"),
        ("bench_inflight", "gauge"),
        ("bench_latency_seconds_sum", "counter"),
    ];
    let mut left = series;
    for (f, (name, kind)) in families.iter().enumerate() {
        s.push_str(&format!(
            "# HELP {name} Benchmark family {f}.\n# TYPE {name} {kind}\n"
        ));
        for i in 0..per_family.min(left) {
            let v = (target * 7919 + i * 31 + f) % 100_000;
            s.push_str(&format!(
                "{name}{{handler=\"/api/v1/h{}\",method=\"{}\",code=\"{}\"}} {v}\n",
                i / 5,
                ["get", "post", "put", "delete", "patch"][i % 5],
                200 + (i % 3) * 100
            ));
        }
        left = left.saturating_sub(per_family);
    }
    s
}

/// Both servers' `scrape_configs`: one job, every target a path of the body server.
fn scrape_config(addr: &str, opts: &CpuOptions) -> String {
    let secs = opts.interval.as_secs_f64();
    let mut y = format!(
        "scrape_configs:\n  - job_name: bench\n    scrape_interval: {secs}s\n    scrape_timeout: {secs}s\n    static_configs:\n"
    );
    for i in 0..opts.targets {
        y.push_str(&format!(
            "      - targets: ['{addr}']\n        labels: {{__metrics_path__: '/t{i}', instance: 't{i}'}}\n"
        ));
    }
    y
}

/// What a target server answers for a path: the body, or `None` for a 404.
pub(super) type Bodies = Arc<dyn Fn(&str) -> Option<bytes::Bytes> + Send + Sync>;

/// Serves the bodies `bodies` gives per path over HTTP/1.1 keep-alive until dropped.
pub(super) struct BodyServer {
    pub(super) addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BodyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BodyServer {
    pub(super) async fn start(bodies: Bodies) -> Result<BodyServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen for the targets: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(format!("target server address: {e}")))?;
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_conn(sock, bodies.clone()));
            }
        });
        Ok(BodyServer { addr, task })
    }
}

/// Reads from `sock` into `buf` until it holds a whole HTTP request head; returns the head's
/// length, or `None` when the peer closed or failed first. Bytes after the head stay in `buf`.
pub async fn read_request_head(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<usize> {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

async fn serve_conn(mut sock: tokio::net::TcpStream, bodies: Bodies) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some(head_end) = read_request_head(&mut sock, &mut buf).await else {
            return;
        };
        let path = std::str::from_utf8(&buf[..head_end])
            .ok()
            .and_then(|h| h.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_string();
        buf.drain(..head_end);
        let ok = match bodies(&path) {
            None => sock
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_ok(),
            Some(body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                sock.write_all(head.as_bytes()).await.is_ok() && sock.write_all(&body).await.is_ok()
            }
        };
        if !ok {
            return;
        }
    }
}

pub(super) fn write_file(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).map_err(|source| CliError::Open {
        path: p.display().to_string(),
        source,
    })
}

fn start_prometheus(opts: &CpuOptions, scrape: &str) -> Result<Server> {
    let port = free_port()?;
    let cfg = opts.work.join("prometheus.yml");
    write_file(&cfg, &format!("global:\n  scrape_interval: 15s\n{scrape}"))?;
    let mut cmd = Command::new(&opts.prometheus);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            opts.work.join("prometheus").display()
        ))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    spawn(
        "prometheus",
        &mut cmd,
        &opts.work.join("prometheus.log"),
        format!("http://127.0.0.1:{port}"),
    )
}

/// utime + stime of a process, in seconds.
pub(super) fn process_cpu(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let s = std::fs::read_to_string(&path).map_err(|source| CliError::Open {
        path: path.clone(),
        source,
    })?;
    // The command name may hold spaces and parentheses; the fields follow the last ')'.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| CliError::Failed(format!("{path}: unexpected format")))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime, in USER_HZ ticks (100 per second on Linux).
    Ok((tick(11) + tick(12)) as f64 / 100.0)
}

pub(super) async fn get_json(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, &str)],
) -> Option<Value> {
    let resp = client.get(url).query(query).send().await.ok()?;
    resp.json().await.ok()
}

/// Has the server every target up?
async fn all_up(client: &reqwest::Client, s: &Server, targets: usize) -> bool {
    let url = format!("{}/api/v1/targets", s.base);
    let Some(v) = get_json(client, &url, &[]).await else {
        return false;
    };
    let active = v["data"]["activeTargets"].as_array();
    active.is_some_and(|a| a.len() == targets && a.iter().all(|x| x["health"] == "up"))
}

pub(super) async fn wait_all_up(
    client: &reqwest::Client,
    s: &mut Server,
    targets: usize,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = s.child.try_wait() {
            return Err(CliError::Failed(format!(
                "{} exited with {status} before scraping (see its log in the work dir)",
                s.name
            )));
        }
        if all_up(client, s, targets).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(CliError::Failed(format!(
        "{} did not have all {targets} targets up within 180 s",
        s.name
    )))
}

/// A scalar instant query's value (NaN when the answer has none).
pub(super) async fn scalar(client: &reqwest::Client, s: &Server, q: &str) -> f64 {
    let url = format!("{}/api/v1/query", s.base);
    get_json(client, &url, &[("query", q)])
        .await
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(String::from)
        })
        .and_then(|x| x.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Part two: serves the targets, runs both servers over them and measures their CPU.
pub async fn cpu_comparison(opts: &CpuOptions) -> Result<CpuReport> {
    if opts.targets == 0 || opts.series == 0 || opts.interval.is_zero() {
        return Err(CliError::Usage(
            "--targets, --series and --interval-s must be positive".to_string(),
        ));
    }
    std::fs::create_dir_all(&opts.work).map_err(|source| CliError::Open {
        path: opts.work.display().to_string(),
        source,
    })?;
    let bodies: HashMap<String, bytes::Bytes> = (0..opts.targets)
        .map(|i| (format!("/t{i}"), target_body(i, opts.series).into()))
        .collect();
    let server = BodyServer::start(Arc::new(move |path: &str| bodies.get(path).cloned())).await?;
    let scrape = scrape_config(&server.addr.to_string(), opts);
    let mut strata = start_strata(&opts.strata, &opts.work, &scrape)?;
    let mut prom = start_prometheus(opts, &scrape)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::Failed(format!("http client: {e}")))?;
    wait_all_up(&client, &mut strata, opts.targets).await?;
    wait_all_up(&client, &mut prom, opts.targets).await?;
    tokio::time::sleep(opts.settle).await;

    let (s0, p0) = (
        process_cpu(strata.child.id())?,
        process_cpu(prom.child.id())?,
    );
    let t0 = Instant::now();
    tokio::time::sleep(opts.measure).await;
    let (s1, p1) = (
        process_cpu(strata.child.id())?,
        process_cpu(prom.child.id())?,
    );
    let wall_secs = t0.elapsed().as_secs_f64();

    let (series, scraped) = ("count({job=\"bench\"})", "sum(scrape_samples_scraped)");
    let report = CpuReport {
        wall_secs,
        strata_cpu_secs: s1 - s0,
        prometheus_cpu_secs: p1 - p0,
        strata_series: scalar(&client, &strata, series).await,
        prometheus_series: scalar(&client, &prom, series).await,
        strata_samples_scraped: scalar(&client, &strata, scraped).await,
        prometheus_samples_scraped: scalar(&client, &prom, scraped).await,
    };
    drop(strata);
    drop(prom);
    drop(server);
    Ok(report)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::PrometheusText => "text 0.0.4",
        Format::OpenMetrics => "OpenMetrics",
    }
}

pub fn print_parse(reports: &[ParseReport], out: &mut dyn Write) -> Result<()> {
    for r in reports {
        writeln!(
            out,
            "parse {:<12} {} lines, {} samples: full {:>6.2} M samples/s, known series {:>6.2} M samples/s",
            format_name(r.format),
            r.lines,
            r.samples,
            r.full_samples_per_sec / 1e6,
            r.known_samples_per_sec / 1e6
        )?;
    }
    Ok(())
}

pub fn print_cpu(opts: &CpuOptions, r: &CpuReport, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "scrape: {} targets x {} series every {:?}, measured {:.1}s",
        opts.targets, opts.series, opts.interval, r.wall_secs
    )?;
    let pct = |cpu: f64| 100.0 * cpu / r.wall_secs.max(1e-9);
    writeln!(
        out,
        "  strata     CPU {:>7.2}s ({:>5.1}% of a core)  series {}  samples scraped {}",
        r.strata_cpu_secs,
        pct(r.strata_cpu_secs),
        r.strata_series,
        r.strata_samples_scraped
    )?;
    writeln!(
        out,
        "  prometheus CPU {:>7.2}s ({:>5.1}% of a core)  series {}  samples scraped {}",
        r.prometheus_cpu_secs,
        pct(r.prometheus_cpu_secs),
        r.prometheus_series,
        r.prometheus_samples_scraped
    )?;
    writeln!(out, "  ratio strata/prometheus = {:.2}", r.ratio())?;
    if r.strata_series != r.prometheus_series {
        writeln!(
            out,
            "  WARNING: the servers stored different numbers of series"
        )?;
    }
    Ok(())
}

pub fn run(args: ScrapeBenchArgs, out: &mut dyn Write) -> Result<()> {
    let parse = parse_throughput(Duration::from_secs(1))?;
    print_parse(&parse, out)?;
    out.flush()?;
    if args.parse_only {
        return Ok(());
    }
    let (work, temporary) = work_dir(&args.dir, "scrape");
    let strata = strata_binary(&args.strata)?;
    let opts = CpuOptions {
        targets: args.targets,
        series: args.series,
        interval: Duration::from_secs(args.interval_s),
        measure: Duration::from_secs(args.secs),
        settle: Duration::from_secs(args.settle_secs),
        prometheus: args.prometheus.clone(),
        strata,
        work: work.clone(),
    };
    let rt = super::bucket::runtime()?;
    let result = rt.block_on(cpu_comparison(&opts));
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    print_cpu(&opts, &result?, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_asked_sizes_and_parse() {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            let (body, samples) = parse_body(format);
            assert_eq!(parse_full(body.as_bytes(), format).ok(), Some(samples));
        }
        for series in [1, 7, 1000] {
            let body = target_body(3, series);
            let n = parse_full(body.as_bytes(), Format::PrometheusText).ok();
            assert_eq!(n, Some(series as u64));
        }
    }

    #[test]
    fn known_series_parse_counts_like_the_full_parse() {
        let reports = parse_throughput(Duration::from_millis(1)).expect("parse");
        assert_eq!(reports.len(), 2);
        assert!(reports.iter().all(|r| r.known_samples_per_sec > 0.0));
        let (body, samples) = parse_body(Format::PrometheusText);
        let known = vec![
            b"node_family_0_total{cpu=\"0\",mode=\"user\",instance=\"host-0:9100\"} ".to_vec(),
        ];
        let n = parse_known(body.as_bytes(), Format::PrometheusText, &known).expect("parse");
        assert_eq!(n, samples);
    }
}
