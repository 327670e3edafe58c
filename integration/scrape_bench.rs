//! Whole-system scrape benchmark (ignored; run by hand, in release):
//! `cargo test --release --test integration scrape_cpu_vs_prometheus -- --ignored --nocapture`.
//! 100 targets × 1k series at a 1s interval, served from one in-process HTTP server, scraped
//! at the same time by the Strata binary (scraper_shipper role only) and by Debian's
//! Prometheus 2.42 with the same scrape config; prints both processes' CPU seconds over the
//! measured window (STRATA_BENCH_SECS, default 60) and their ratio.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::scrape_support::{targets, BodyServer};
use crate::support::{free_port, start_prometheus, wait_until, ChildGuard, TestNode};

const TARGETS: usize = 100;
const SERIES: usize = 1000;

/// A realistic body: a few families with HELP/TYPE, label sets like an app's metrics.
fn body(target: usize) -> String {
    let mut s = String::with_capacity(SERIES * 90);
    let per_family = SERIES / 4;
    for (f, kind) in [
        ("bench_requests_total", "counter"),
        ("bench_bytes_total", "counter"),
        ("bench_inflight", "gauge"),
        ("bench_latency_seconds_sum", "counter"),
    ]
    .iter()
    .enumerate()
    {
        s.push_str(&format!(
            "# HELP {} Benchmark family {f}.\n# TYPE {} {}\n",
            kind.0, kind.0, kind.1
        ));
        for i in 0..per_family {
            let v = (target * 7919 + i * 31 + f) % 100_000;
            s.push_str(&format!(
                "{}{{handler=\"/api/v1/h{}\",method=\"{}\",code=\"{}\"}} {v}\n",
                kind.0,
                i / 5,
                ["get", "post", "put", "delete", "patch"][i % 5],
                200 + (i % 3) * 100
            ));
        }
    }
    s
}

fn scrape_config(addr: &str) -> String {
    let mut y = String::from("scrape_configs:\n  - job_name: bench\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n");
    for i in 0..TARGETS {
        y.push_str(&format!("      - targets: ['{addr}']\n        labels: {{__metrics_path__: '/t{i}', instance: 't{i}'}}\n"));
    }
    y
}

/// utime + stime of a process, in seconds.
fn process_cpu(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = s.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (tick(11) + tick(12)) as f64 / hz
}

async fn all_up(base: &str) -> bool {
    let t = targets(base).await;
    let a = t["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    a.len() == TARGETS && a.iter().all(|x| x["health"] == "up")
}

async fn scalar(base: &str, q: &str) -> f64 {
    let resp = TestNode::client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .expect("query");
    let v: serde_json::Value = resp.json().await.expect("json");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[actix_rt::test]
#[ignore = "benchmark: takes a minute and wants a release build"]
async fn scrape_cpu_vs_prometheus() {
    let secs: u64 = std::env::var("STRATA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = BodyServer::start().await;
    for i in 0..TARGETS {
        server.set(&format!("/t{i}"), "text/plain; version=0.0.4", body(i));
    }
    let yaml = scrape_config(&server.addr.to_string());

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = dir.path().join("strata.yml");
    let node = format!(
        "node:\n  id: bench\n  web_listen: 127.0.0.1:{port}\n  data_dir: {}\n  roles: [scraper_shipper, query_planner]\n",
        dir.path().join("data").display()
    );
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 15s\n{node}{yaml}"),
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["node", "--config"])
        .arg(&cfg)
        .args(["--log.level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start strata");
    let strata_pid = child.id();
    let _strata = ChildGuard {
        child,
        name: "strata",
    };
    let strata = format!("http://127.0.0.1:{port}");
    let prom = start_prometheus(&yaml).await;
    let prom_pid = prom.guard.child.id();

    assert!(
        wait_until(Duration::from_secs(60), || {
            let b = strata.clone();
            async move { all_up(&b).await }
        })
        .await,
        "strata targets not all up"
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            let b = prom.base.clone();
            async move { all_up(&b).await }
        })
        .await,
        "prometheus targets not all up"
    );
    // Let both settle past their first-scrape series creation.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let (s0, p0, t0) = (
        process_cpu(strata_pid),
        process_cpu(prom_pid),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (s1, p1, wall) = (
        process_cpu(strata_pid),
        process_cpu(prom_pid),
        t0.elapsed().as_secs_f64(),
    );
    let (s, p) = (s1 - s0, p1 - p0);
    let q = "sum(scrape_samples_scraped)";
    let (sq, pq) = (scalar(&strata, q).await, scalar(&prom.base, q).await);
    println!("scrape benchmark: {TARGETS} targets x {SERIES} series at 1s for {wall:.1}s");
    println!(
        "  strata     CPU {s:.2}s ({:.1}% of a core), {q} = {sq}",
        100.0 * s / wall
    );
    println!(
        "  prometheus CPU {p:.2}s ({:.1}% of a core), {q} = {pq}",
        100.0 * p / wall
    );
    println!("  ratio strata/prometheus = {:.2}", s / p.max(1e-9));
    assert_eq!(
        sq,
        (TARGETS * SERIES) as f64,
        "strata did not ingest every sample"
    );
    assert_eq!(
        pq,
        (TARGETS * SERIES) as f64,
        "prometheus did not ingest every sample"
    );
}
