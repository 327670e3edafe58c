//! The side-by-side scrape benchmark of `strata tools bench scrape`, through the same code
//! (`strata::cli::bench_scrape::cpu_comparison`): targets served in-process, scraped at the
//! same time by the Strata binary and by Debian's Prometheus 2.42 with the same config.
//! `small_scale_scrape_stores_what_prometheus_stores` runs it briefly and checks both stored
//! the same series (no timing assertions). The full benchmark is ignored; run it by hand, in
//! release: `STRATA_BENCH_SECS=60 cargo test --release --test integration
//! scrape_cpu_vs_prometheus -- --ignored --nocapture` (100 targets × 1k series at 1 s).

use std::path::PathBuf;
use std::time::Duration;

use strata::cli::bench_scrape::{cpu_comparison, print_cpu, CpuOptions, CpuReport};
use strata_testing::require_binary;

fn options(targets: usize, series: usize, measure: Duration, work: PathBuf) -> CpuOptions {
    CpuOptions {
        targets,
        series,
        interval: Duration::from_secs(1),
        measure,
        settle: Duration::from_secs(5),
        prometheus: PathBuf::from(require_binary("prometheus")),
        strata: PathBuf::from(env!("CARGO_BIN_EXE_strata")),
        work,
    }
}

fn check_same_series(opts: &CpuOptions, r: &CpuReport) {
    // Per target: its series plus the five report series (up, scrape_*).
    let expected = (opts.targets * (opts.series + 5)) as f64;
    assert_eq!(r.prometheus_series, expected, "prometheus series: {r:?}");
    assert_eq!(r.strata_series, r.prometheus_series, "stored series: {r:?}");
    assert_eq!(
        r.strata_samples_scraped,
        (opts.targets * opts.series) as f64,
        "strata did not ingest every sample: {r:?}"
    );
    assert_eq!(
        r.strata_samples_scraped, r.prometheus_samples_scraped,
        "{r:?}"
    );
}

#[actix_rt::test]
async fn small_scale_scrape_stores_what_prometheus_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(5, 200, Duration::from_secs(2), dir.path().to_path_buf());
    let r = cpu_comparison(&opts).await.expect("benchmark run");
    let mut out = Vec::new();
    print_cpu(&opts, &r, &mut out).expect("print");
    println!("{}", String::from_utf8_lossy(&out));
    check_same_series(&opts, &r);
}

#[actix_rt::test]
#[ignore = "benchmark: takes a minute and wants a release build"]
async fn scrape_cpu_vs_prometheus() {
    let secs: u64 = std::env::var("STRATA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(
        100,
        1000,
        Duration::from_secs(secs),
        dir.path().to_path_buf(),
    );
    let r = cpu_comparison(&opts).await.expect("benchmark run");
    let mut out = Vec::new();
    print_cpu(&opts, &r, &mut out).expect("print");
    println!("{}", String::from_utf8_lossy(&out));
    check_same_series(&opts, &r);
}
