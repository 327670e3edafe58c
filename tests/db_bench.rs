//! Runs `bench_write` (the `strata tools bench tsdb` workload, shaped like
//! `promtool tsdb bench write`). Ignored by default because it is a benchmark:
//! (Compare: `write_promtool_series_file` + `promtool tsdb bench write --metrics=10000 --scrapes=3000 <file>`.)
//! `STRATA_BENCH_SERIES=10000 STRATA_BENCH_SCRAPES=3000 [STRATA_BENCH_FSYNC=1] cargo test --release --test db_bench -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use strata::storage::db::bench::{bench_write, bench_write_with, write_promtool_series_file};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore]
fn bench_write_report() {
    let series = env_or("STRATA_BENCH_SERIES", 10_000);
    let scrapes = env_or("STRATA_BENCH_SCRAPES", 3000);
    let dir = tempfile::tempdir().unwrap();
    let fsync = std::env::var("STRATA_BENCH_FSYNC").is_ok_and(|v| v == "1");
    let r = bench_write_with(dir.path(), series, scrapes, fsync).unwrap();
    println!("wal_fsync: {fsync}\n{r:#?}");
    assert_eq!(r.samples, (series * scrapes) as u64);
    assert!(r.block_samples > 0 || scrapes < 400);
}

#[test]
fn bench_write_small_run_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    // 1500 series → two shards, one of them partial; 700 scrapes of 30 s span 5h50m.
    let r = bench_write(dir.path(), 1500, 700).unwrap();
    assert_eq!(r.samples, 1500 * 700);
    // Cut while the head spans more than 3h: [0,2h) and [2h,4h) are persisted.
    assert_eq!(r.block_samples, 1500 * (2 * 240 - 1));
    assert!(
        r.bytes_per_sample > 0.5 && r.bytes_per_sample < 4.0,
        "{}",
        r.bytes_per_sample
    );
}

#[test]
fn promtool_input_file_has_one_label_set_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("series.json");
    write_promtool_series_file(&p, 25).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25);
    let v: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(v["series_id"], "3");
    assert_eq!(v["__name__"], "bench_metric_3");
    assert_eq!(v.as_object().unwrap().len(), 8);
}
