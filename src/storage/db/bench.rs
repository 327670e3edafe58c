//! `strata tools bench tsdb`: the write benchmark with the workload shape of
//! `promtool tsdb bench write` (shards of 1000 series appended by one worker per core, one
//! commit per shard and scrape, scrapes 30 s apart, rounds of 100 scrapes), followed by cutting
//! the head into blocks to measure their size per sample.

use std::path::Path;
use std::time::Instant;

use super::{Db, DbOptions, Result};
use crate::storage::model::{Label, Labels};

/// promtool's scrape interval in the benchmark.
const TIME_DELTA_MS: i64 = 30_000;
const SHARD_SIZE: usize = 1000;
const SCRAPES_PER_ROUND: usize = 100;

#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub series: usize,
    pub scrapes: usize,
    pub samples: u64,
    pub ingest_seconds: f64,
    pub samples_per_sec: f64,
    /// CPU time (user + system, all threads) the process spent during ingestion, and the
    /// rate per CPU second: unlike wall-clock rates, these hardly depend on other load.
    pub ingest_cpu_seconds: f64,
    pub samples_per_cpu_sec: f64,
    /// Bytes of the blocks cut after ingestion (index + chunks + meta) per sample they hold.
    pub bytes_per_sample: f64,
    pub block_samples: u64,
    /// Growth of the process RSS during ingestion divided by the series count (includes the
    /// chunks of all ingested samples, which stay in the head until cut).
    pub rss_bytes_per_series: f64,
}

/// Label sets shaped like real node/kubernetes series: 8 labels, unique per index.
pub fn bench_labels(n: usize) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            Labels::new(vec![
                Label::new("__name__", format!("bench_metric_{}", i % 50)),
                Label::new("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                Label::new("job", format!("job-{}", i % 10)),
                Label::new("namespace", format!("ns-{}", i % 20)),
                Label::new("pod", format!("pod-{}-7f9c8d", i / 10)),
                Label::new("container", format!("c-{}", i % 7)),
                Label::new("mode", format!("mode-{}", i % 8)),
                Label::new("series_id", i.to_string()),
            ])
        })
        .collect()
}

/// Writes the `bench_labels(n)` label sets as promtool's benchmark input (one JSON object of
/// labels per line), so `promtool tsdb bench write --metrics=N <file>` runs the same series.
pub fn write_promtool_series_file(path: &Path, n: usize) -> std::io::Result<()> {
    let mut out = String::new();
    for labels in bench_labels(n) {
        let map: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|l| {
                (
                    l.name.to_string(),
                    serde_json::Value::String(l.value.to_string()),
                )
            })
            .collect();
        out.push_str(&serde_json::Value::Object(map).to_string());
        out.push('\n');
    }
    std::fs::write(path, out)
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time of this process so far in seconds (Linux `/proc/self/stat`, utime + stime at
/// the usual 100 ticks per second), 0 elsewhere.
pub fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name, which may itself contain spaces.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (tick(11) + tick(12)) as f64 / 100.0
}

type Shard<'a> = (&'a [Labels], &'a mut [u64], &'a mut [i64]);

fn ingest_shard(
    db: &Db,
    labels: &[Labels],
    refs: &mut [u64],
    values: &mut [i64],
    scrapes: usize,
    base_t: i64,
) -> Result<u64> {
    let mut total = 0u64;
    let mut ts = base_t;
    for _ in 0..scrapes {
        ts += TIME_DELTA_MS;
        let mut app = db.appender();
        for ((l, r), v) in labels.iter().zip(refs.iter_mut()).zip(values.iter_mut()) {
            *v += 1000;
            *r = app.append(*r, l, ts, *v as f64)?;
            total += 1;
        }
        app.commit()?;
    }
    Ok(total)
}

/// Runs the benchmark in `dir` (which should be empty) with `series` series and `scrapes`
/// scrapes. The WAL is written without per-commit fsync, as Prometheus does.
pub fn bench_write(dir: &Path, series: usize, scrapes: usize) -> Result<BenchReport> {
    bench_write_with(dir, series, scrapes, false)
}

/// `bench_write` choosing whether every commit fsyncs the WAL.
pub fn bench_write_with(
    dir: &Path,
    series: usize,
    scrapes: usize,
    wal_fsync: bool,
) -> Result<BenchReport> {
    let opts = DbOptions {
        wal_fsync,
        ..DbOptions::default()
    };
    let db = Db::open(dir, opts)?;
    let labels = bench_labels(series);
    let mut refs = vec![0u64; series];
    let mut values = vec![123_456_789i64; series];
    let rss_before = rss_bytes();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut total = 0u64;
    let mut i = 0;
    while i < scrapes {
        let n = SCRAPES_PER_ROUND.min(scrapes - i);
        let base_t = TIME_DELTA_MS * i as i64;
        // Shards are spread over one worker per core, the way Go runs promtool's goroutines
        // on GOMAXPROCS threads; each worker ingests its shards one after the other.
        let mut groups: Vec<Vec<Shard<'_>>> = (0..workers).map(|_| Vec::new()).collect();
        let shards = labels
            .chunks(SHARD_SIZE)
            .zip(refs.chunks_mut(SHARD_SIZE))
            .zip(values.chunks_mut(SHARD_SIZE));
        for (k, ((l, r), v)) in shards.enumerate() {
            groups[k % workers].push((l, r, v));
        }
        let results: Vec<Result<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|group| {
                    let db = &db;
                    scope.spawn(move || {
                        let mut total = 0;
                        for (l, r, v) in group {
                            total += ingest_shard(db, l, r, v, n, base_t)?;
                        }
                        Ok(total)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Ok(0)))
                .collect()
        });
        for r in results {
            total += r?;
        }
        i += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let rss_after = rss_bytes();

    db.cut_blocks(i64::MAX)?;
    let mut bytes = 0u64;
    let mut block_samples = 0u64;
    for b in db.list_blocks() {
        bytes += dir_size(&b.dir);
        block_samples += b.meta.stats.num_samples;
    }
    db.close()?;
    Ok(BenchReport {
        series,
        scrapes,
        samples: total,
        ingest_seconds: secs,
        samples_per_sec: if secs > 0.0 { total as f64 / secs } else { 0.0 },
        ingest_cpu_seconds: cpu,
        samples_per_cpu_sec: if cpu > 0.0 { total as f64 / cpu } else { 0.0 },
        bytes_per_sample: if block_samples > 0 {
            bytes as f64 / block_samples as f64
        } else {
            0.0
        },
        block_samples,
        rss_bytes_per_series: rss_after.saturating_sub(rss_before) as f64 / series.max(1) as f64,
    })
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => total += dir_size(&e.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}
