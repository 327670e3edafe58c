//! Runs `bench_write` (the `strata tools bench tsdb` workload, shaped like
//! `promtool tsdb bench write`). Ignored by default because it is a benchmark:
//! `STRATA_BENCH_SERIES=10000 STRATA_BENCH_SCRAPES=3000 cargo test --release --test db_bench -- --ignored --nocapture`

use strata::storage::db::bench::bench_write;

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
    let r = bench_write(dir.path(), series, scrapes).unwrap();
    println!("{r:#?}");
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
