//! Store gateway figures: generates (once) a FilesystemStore bucket of synthetic blocks, then
//! reports the RSS of this process holding a `BucketStore` over it, the time until every
//! block's index header is built, and cold/warm query latency next to the same queries on
//! local `BlockReader`s.
//!
//! `cargo run --release --example store_bench -- [BUCKET_DIR] [BLOCKS] [SERIES]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata::storage::block::{list_blocks, BlockReader};
use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::DynStore;
use strata::storage::model::{MatchOp, Matcher, Queryable, SelectHints};
use strata::storage::store::synth::{write_block, SynthSpec};
use strata::storage::store::SelectOptions;
use strata::storage::store::{BucketStore, StoreConfig};

const H2: i64 = 2 * 3600 * 1000;
const RUNS: usize = 7;

fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory with its anonymous (heap) and file-backed (mapped header pages) parts.
fn rss() -> String {
    format!(
        "{} (anon {}, file {})",
        mib(rss_kib("VmRSS")),
        mib(rss_kib("RssAnon")),
        mib(rss_kib("RssFile"))
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn generate(dir: &PathBuf, blocks: usize, series: usize) -> anyhow::Result<()> {
    let have = list_blocks(dir).map(|v| v.len()).unwrap_or(0);
    if have >= blocks {
        println!("bucket {} already holds {have} blocks", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let start = Instant::now();
    let threads = 2;
    let mut handles = Vec::new();
    for t in 0..threads {
        let dir = dir.clone();
        handles.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for i in (have + t..blocks).step_by(threads) {
                let mut spec = SynthSpec::new(series, i as i64 * H2);
                spec.chunk_variants = 64;
                spec.seed = i as u64;
                spec.id_label = true;
                spec.external_labels =
                    BTreeMap::from([("cluster".to_string(), "bench".to_string())]);
                write_block(&dir, &spec)?;
            }
            Ok(())
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("generator thread panicked"))??;
    }
    println!(
        "generated {} blocks x {series} series in {:.1?}",
        blocks - have,
        start.elapsed()
    );
    Ok(())
}

fn queries(blocks: usize) -> Vec<(&'static str, Vec<Matcher>, i64, i64)> {
    let end = blocks as i64 * H2;
    vec![
        (
            "one series, last 24h",
            vec![
                Matcher::equal("__name__", "metric_007"),
                Matcher::equal("instance", "host-00010:9100"),
            ],
            end - 12 * H2,
            end,
        ),
        (
            "metric_007 (200 series/block), last 24h",
            vec![Matcher::equal("__name__", "metric_007")],
            end - 12 * H2,
            end,
        ),
        (
            "job=~api, zone=z3, one 2h block",
            vec![
                Matcher::new(MatchOp::RegexMatch, "job", "api").expect("valid regex"),
                Matcher::equal("zone", "z3"),
            ],
            end - H2,
            end - 1,
        ),
        (
            "one series, all 200 blocks",
            vec![
                Matcher::equal("__name__", "metric_001"),
                Matcher::equal("instance", "host-00003:9100"),
            ],
            0,
            end,
        ),
    ]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or("/tmp/strata-store-bench/bucket".into()),
    );
    let blocks: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let series: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    generate(&dir, blocks, series)?;
    let cache_dir = dir.with_file_name("store-cache");
    let _ = std::fs::remove_dir_all(&cache_dir);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rss0 = rss_kib("VmRSS");
    let bucket: DynStore = Arc::new(FilesystemStore::new(&dir)?);
    let mut cfg = StoreConfig::new(&cache_dir, "bench");
    cfg.cache_bytes = 64 << 20;
    // Released by the explicit `release_idle` call below, not by a timer.
    cfg.idle_timeout = std::time::Duration::ZERO;
    let store = BucketStore::new(bucket, cfg)?;
    let t = Instant::now();
    let report = rt.block_on(store.sync(&|_| true))?;
    let ready = t.elapsed();
    let rss_ready = rss();
    println!(
        "ready: {} blocks serving, {} failed, in {ready:.2?}; RSS before {} after {}",
        report.serving,
        report.failed.len(),
        mib(rss0),
        rss_ready
    );
    let t = Instant::now();
    let store2 = BucketStore::new(
        Arc::new(FilesystemStore::new(&dir)?),
        StoreConfig::new(&cache_dir, "bench"),
    )?;
    rt.block_on(store2.sync(&|_| true))?;
    println!("restart with cached headers ready in {:.2?}", t.elapsed());
    drop(store2);

    let qs = queries(blocks);
    let mut rows = Vec::new();
    for (name, m, mint, maxt) in &qs {
        let opts = SelectOptions::default();
        let t = Instant::now();
        let cold = rt.block_on(store.select(m, *mint, *maxt, &opts))?;
        let cold_t = t.elapsed();
        // Warm: the median of several runs (the machine is shared, single runs are noisy).
        let mut warm_runs = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let warm = rt.block_on(store.select(m, *mint, *maxt, &opts))?;
            warm_runs.push(t.elapsed());
            assert_eq!(cold.series, warm.series);
        }
        let warm_t = median(warm_runs);
        rows.push((name, cold.series.len(), cold.chunk_bytes, cold_t, warm_t));
    }
    let st = store.stats();
    let rss_q = rss();
    println!(
        "after queries: RSS {} (peak {}), headers open {}, header heap {} KiB, cache {} KiB in {} entries, bucket GETs {} ({} KiB)",
        rss_q,
        mib(rss_kib("VmHWM")),
        st.headers_open,
        st.header_heap_bytes / 1024,
        st.cache.used_bytes / 1024,
        st.cache.entries,
        st.bucket_requests,
        st.bucket_bytes / 1024
    );

    let released = store.release_idle();
    println!("released {released} idle headers: RSS {}", rss());

    // The same queries on local BlockReaders (mmap'd index and chunks, full postings table).
    let t = Instant::now();
    let mut readers = Vec::new();
    for d in list_blocks(&dir)? {
        readers.push(BlockReader::open(&d)?);
    }
    let open_t = t.elapsed();
    println!(
        "local: opened {} BlockReaders in {open_t:.2?}; RSS now {}",
        readers.len(),
        rss()
    );
    println!(
        "{:<42} {:>7} {:>10} {:>11} {:>11} {:>11}",
        "query", "series*", "chunk KiB", "store cold", "store warm", "local"
    );
    for ((name, n, bytes, cold_t, warm_t), (_, m, mint, maxt)) in rows.iter().zip(&qs) {
        // Local matchers exclude the external label; series counts match the store's.
        let mut local_runs = Vec::new();
        let mut local = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            local = 0;
            for r in &readers {
                local += r.select(m, *mint, *maxt, &SelectHints::default())?.len();
            }
            local_runs.push(t.elapsed());
        }
        let local_t = median(local_runs);
        println!(
            "{:<42} {:>7} {:>10} {:>11.2?} {:>11.2?} {:>11.2?}",
            name,
            format!("{n}/{local}"),
            bytes / 1024,
            cold_t,
            warm_t,
            local_t
        );
    }
    println!("* series: merged across blocks by the store / summed over local blocks");
    Ok(())
}
