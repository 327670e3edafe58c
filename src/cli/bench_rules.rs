//! `strata tools bench rules`: the cost of rule evaluation, side by side with Debian's
//! Prometheus 2.42. Serves a live fleet of targets from this process (the query benchmark's
//! series shapes, counters growing with wall time), has a Strata node (scraper, query and
//! rule roles) and Prometheus scrape the same targets, and measures each process's CPU
//! seconds (utime + stime from `/proc/<pid>/stat`) twice: over a window with no rules
//! (scraping alone), then over a window after both loaded the same rule file (1,000 recording
//! and 200 alerting rules by default, at a 15 s interval). The rule evaluation's CPU is the
//! difference. It also reports each server's group evaluation times (`evaluationTime` of
//! `/api/v1/rules`, sampled through the window), missed iterations, and how many recorded
//! series and alerts each holds, which must agree.

mod workload;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench_query::{
    free_port, percentile, spawn, start_strata_with_roles, strata_binary, work_dir, Server,
};
use super::bench_scrape::{get_json, process_cpu, scalar, wait_all_up, write_file, BodyServer};
use super::{CliError, Result};

#[derive(Args, Debug, Clone)]
pub struct RulesBenchArgs {
    /// Work directory (configs, rule file, both servers' data and logs). Default: a temporary
    /// directory, removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    pub jobs: usize,
    /// Targets per job; each target has 21 series.
    #[arg(long, default_value_t = 50)]
    pub instances: usize,
    #[arg(long, default_value_t = 1000)]
    pub recording: usize,
    #[arg(long, default_value_t = 200)]
    pub alerting: usize,
    #[arg(long = "rules-per-group", default_value_t = 20)]
    pub rules_per_group: usize,
    /// Scrape and evaluation interval, in seconds.
    #[arg(long = "interval-s", default_value_t = 15)]
    pub interval_s: u64,
    /// Seconds of the scraping-only window.
    #[arg(long = "baseline-secs", default_value_t = 60)]
    pub baseline_secs: u64,
    /// Seconds of the window with rules.
    #[arg(long, default_value_t = 120)]
    pub secs: u64,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus: PathBuf,
    /// The Strata binary to run as the node (default: this one).
    #[arg(long)]
    pub strata: Option<PathBuf>,
}

fn start_prometheus(bin: &Path, work: &Path, config: &str) -> Result<Server> {
    let port = free_port()?;
    let cfg = work.join("prometheus.yml");
    write_file(&cfg, config)?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.join("prometheus").display()
        ))
        .arg("--web.enable-lifecycle")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    spawn(
        "prometheus",
        &mut cmd,
        &work.join("prometheus.log"),
        format!("http://127.0.0.1:{port}"),
    )
}

/// The per-group `evaluationTime` seconds of `/api/v1/rules`, and how many groups have been
/// evaluated at all.
async fn group_times(client: &reqwest::Client, s: &Server) -> (Vec<f64>, usize) {
    let url = format!("{}/api/v1/rules", s.base);
    let Some(v) = get_json(client, &url, &[]).await else {
        return (Vec::new(), 0);
    };
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    let evaluated = groups
        .iter()
        .filter(|g| g["lastEvaluation"] != "0001-01-01T00:00:00Z")
        .count();
    let times = groups
        .iter()
        .filter_map(|g| g["evaluationTime"].as_f64())
        .collect();
    (times, evaluated)
}

async fn reload(client: &reqwest::Client, s: &Server) -> Result<()> {
    let resp = client
        .post(format!("{}/-/reload", s.base))
        .send()
        .await
        .map_err(|e| CliError::Failed(format!("{} reload: {e}", s.name)))?;
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(CliError::Failed(format!(
            "{} reload failed: {text}",
            s.name
        )));
    }
    Ok(())
}

/// One server's figures.
#[derive(Clone, Debug, Default)]
struct ServerFigures {
    baseline_cpu_per_s: f64,
    rules_cpu_per_s: f64,
    /// Every sampled group evaluation time, seconds.
    group_secs: Vec<f64>,
    missed: f64,
    recorded_series: f64,
    alerts: f64,
}

fn cpu_of(s: &Server) -> Result<f64> {
    process_cpu(s.child.id())
}

/// Both servers' CPU per wall second over `window`.
async fn cpu_window(servers: &[&Server; 2], window: Duration) -> Result<[f64; 2]> {
    let before = [cpu_of(servers[0])?, cpu_of(servers[1])?];
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let after = [cpu_of(servers[0])?, cpu_of(servers[1])?];
    let wall = t0.elapsed().as_secs_f64();
    Ok([(after[0] - before[0]) / wall, (after[1] - before[1]) / wall])
}

async fn measure(
    args: &RulesBenchArgs,
    work: &Path,
    strata_bin: &Path,
) -> Result<[ServerFigures; 2]> {
    let targets = args.jobs * args.instances;
    let groups = workload::group_count(args.recording, args.alerting, args.rules_per_group);
    // Bodies made at request time, so counters grow with wall time.
    let server = BodyServer::start(Arc::new(|path: &str| {
        let (job, inst) = workload::parse_target_path(path)?;
        let now_s = crate::time::now_ms().max(0) as u64 / 1000;
        Some(workload::target_body(job, inst, now_s).into())
    }))
    .await?;
    let scrape = workload::scrape_configs(
        &server.addr.to_string(),
        args.jobs,
        args.instances,
        args.interval_s,
    );
    // The glob matches nothing until the rule file is written, so both start without rules.
    let rules_glob = work.join("rules").join("*.yml");
    std::fs::create_dir_all(work.join("rules")).map_err(|source| CliError::Open {
        path: work.join("rules").display().to_string(),
        source,
    })?;
    let config = format!(
        "global:\n  scrape_interval: {i}s\n  evaluation_interval: {i}s\nrule_files: ['{}']\n{scrape}",
        rules_glob.display(),
        i = args.interval_s
    );
    let mut strata = start_strata_with_roles(
        strata_bin,
        work,
        "scraper_shipper, query_planner, rule_evaluator",
        &format!("rule_files: ['{}']\n{scrape}", rules_glob.display()),
    )?;
    let mut prom = start_prometheus(&args.prometheus, work, &config)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| CliError::Failed(format!("http client: {e}")))?;
    wait_all_up(&client, &mut strata, targets).await?;
    wait_all_up(&client, &mut prom, targets).await?;
    eprintln!(
        "both servers scrape all {targets} targets; measuring scraping alone for {}s",
        args.baseline_secs
    );
    // Two scrape rounds first: series creation is not what the baseline measures.
    tokio::time::sleep(Duration::from_secs(2 * args.interval_s)).await;
    let baseline = cpu_window(&[&strata, &prom], Duration::from_secs(args.baseline_secs)).await?;

    let text = workload::rule_file(
        args.recording,
        args.alerting,
        args.rules_per_group,
        args.jobs,
        args.interval_s,
    );
    write_file(&work.join("rules").join("bench.yml"), &text)?;
    reload(&client, &strata).await?;
    reload(&client, &prom).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, s) = group_times(&client, &strata).await;
        let (_, p) = group_times(&client, &prom).await;
        eprintln!("groups evaluated: strata {s}/{groups}, prometheus {p}/{groups}");
        if s == groups && p == groups {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "not every group evaluated within 180 s (strata {s}, prometheus {p} of {groups})"
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // One more interval, so the `*_over_time` windows and alert states settle.
    tokio::time::sleep(Duration::from_secs(args.interval_s)).await;
    eprintln!(
        "every group evaluated on both; measuring with rules for {}s",
        args.secs
    );
    let mut figures = [ServerFigures::default(), ServerFigures::default()];
    let sampler = async {
        // Group times sampled once an interval through the window.
        let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let rounds = (args.secs / args.interval_s.max(1)).max(1);
        for _ in 0..rounds {
            tokio::time::sleep(Duration::from_secs(args.interval_s)).await;
            samples[0].extend(group_times(&client, &strata).await.0);
            samples[1].extend(group_times(&client, &prom).await.0);
        }
        samples
    };
    let pair = [&strata, &prom];
    let (cpu, samples) = tokio::join!(cpu_window(&pair, Duration::from_secs(args.secs)), sampler);
    let cpu = cpu?;
    let queries = [(
        "sum(strata_rule_group_iterations_missed_total)",
        "sum(prometheus_rule_group_iterations_missed_total)",
    )];
    for (i, s) in [&strata, &prom].into_iter().enumerate() {
        figures[i].baseline_cpu_per_s = baseline[i];
        figures[i].rules_cpu_per_s = cpu[i];
        figures[i].group_secs = samples[i].clone();
        figures[i].recorded_series = scalar(&client, s, "count({__name__=~\"bench:.+\"})").await;
        figures[i].alerts = scalar(&client, s, "count(ALERTS)").await;
    }
    figures[0].missed = missed(&client, &strata, queries[0].0).await;
    figures[1].missed = missed(&client, &prom, queries[0].1).await;
    drop(strata);
    drop(prom);
    drop(server);
    Ok(figures)
}

/// A server's own missed-iteration total, read from its `/metrics` (Strata does not scrape
/// itself here).
async fn missed(client: &reqwest::Client, s: &Server, q: &str) -> f64 {
    let name = q
        .trim_start_matches("sum(")
        .trim_end_matches(')')
        .to_string();
    let Ok(resp) = client.get(format!("{}/metrics", s.base)).send().await else {
        return f64::NAN;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(&name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

fn print_report(args: &RulesBenchArgs, f: &[ServerFigures; 2], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "workload: {} targets x {} series, {} recording + {} alerting rules in groups of {}, {}s interval",
        args.jobs * args.instances,
        workload::SERIES_PER_TARGET,
        args.recording,
        args.alerting,
        args.rules_per_group,
        args.interval_s
    )?;
    writeln!(
        out,
        "{:<11} {:>13} {:>13} {:>11} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7}",
        "server",
        "cpu/s scrape",
        "cpu/s +rules",
        "cpu/s rules",
        "grp p50",
        "grp p90",
        "grp max",
        "missed",
        "recorded",
        "alerts"
    )?;
    for (name, x) in [("strata", &f[0]), ("prometheus", &f[1])] {
        let mut g = x.group_secs.clone();
        g.sort_by(|a, b| a.total_cmp(b));
        writeln!(
            out,
            "{:<11} {:>13.3} {:>13.3} {:>11.3} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7} {:>9} {:>7}",
            name,
            x.baseline_cpu_per_s,
            x.rules_cpu_per_s,
            x.rules_cpu_per_s - x.baseline_cpu_per_s,
            percentile(&g, 0.5) * 1000.0,
            percentile(&g, 0.9) * 1000.0,
            percentile(&g, 1.0) * 1000.0,
            x.missed,
            x.recorded_series,
            x.alerts
        )?;
    }
    let ratio = (f[0].rules_cpu_per_s - f[0].baseline_cpu_per_s)
        / (f[1].rules_cpu_per_s - f[1].baseline_cpu_per_s);
    writeln!(
        out,
        "rule evaluation CPU, strata / prometheus: {ratio:.2} (cpu/s = CPU seconds per wall second; grp = a group's evaluationTime)"
    )?;
    if f[0].recorded_series != f[1].recorded_series {
        writeln!(
            out,
            "WARNING: the servers hold different numbers of recorded series"
        )?;
    }
    Ok(())
}

pub fn run(args: RulesBenchArgs, out: &mut dyn Write) -> Result<()> {
    if args.jobs == 0 || args.instances == 0 || args.interval_s == 0 || args.secs == 0 {
        return Err(CliError::Usage(
            "--jobs, --instances, --interval-s and --secs must be positive".to_string(),
        ));
    }
    let (work, temporary) = work_dir(&args.dir, "rules");
    // A kept work dir starts over: no data, and no rule file until the rules window.
    for d in [
        work.join("prometheus"),
        work.join("strata"),
        work.join("rules"),
    ] {
        let _ = std::fs::remove_dir_all(d);
    }
    let strata_bin = strata_binary(&args.strata)?;
    let rt = super::bucket::runtime()?;
    let result = rt.block_on(measure(&args, &work, &strata_bin));
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    print_report(&args, &result?, out)
}
