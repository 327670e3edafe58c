//! The query benchmark's data set: deterministic OpenMetrics text for a fleet of
//! `jobs × instances` targets (request counters by status code, a classic latency histogram,
//! two gauges per target) over many days, turned into TSDB blocks by Prometheus's own
//! `promtool tsdb create-blocks-from openmetrics`, so Strata and Prometheus read byte-identical
//! blocks.
//!
//! promtool 2.42 re-parses its whole input once per 2h block it writes, so the input is written
//! as one small file per 2h window and the files are imported independently (a few at a time).
//! Sample timestamps sit on even milliseconds and the benchmark queries at odd ones, so no range
//! boundary ever lands on a sample (where 2.42's left-closed and Prometheus 3's left-open ranges
//! would legitimately differ).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::{CliError, Result};

const WINDOW_MS: i64 = 2 * 3600 * 1000;
const CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
/// Series per target: counters by code, buckets, `_sum`, `_count`, two gauges.
pub const SERIES_PER_TARGET: usize = CODES.len() + BUCKETS.len() + 2 + 2;

/// Shape of the generated data.
#[derive(Clone, Debug)]
pub struct DataSpec {
    pub jobs: usize,
    pub instances: usize,
    /// First sample (ms), aligned to 2h.
    pub start_ms: i64,
    /// End of the data (ms, exclusive), aligned to 2h.
    pub end_ms: i64,
    pub interval_ms: i64,
}

impl DataSpec {
    pub fn series(&self) -> usize {
        self.jobs * self.instances * SERIES_PER_TARGET
    }

    pub fn samples_per_series(&self) -> i64 {
        (self.end_ms - self.start_ms) / self.interval_ms
    }

    /// Timestamp of scrape `i` of target `target`: on the interval grid plus a per-scrape
    /// jitter of 2..900 ms, always even.
    pub fn ts(&self, target: usize, i: i64) -> i64 {
        let h = mix(target as u64 ^ 0x5bd1_e995, i as u64);
        self.start_ms + i * self.interval_ms + 2 * (1 + (h % 450) as i64)
    }
}

/// A stateless 64-bit hash of two words (splitmix64 finaliser), so every value depends only
/// on (series, scrape) and windows can be generated in any order.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(b.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Scrape-index range `[lo, hi)` whose grid times fall in window `[w, w + 2h)`.
fn scrapes_in(spec: &DataSpec, w: i64) -> (i64, i64) {
    let first = |t: i64| ((t - spec.start_ms).max(0) + spec.interval_ms - 1) / spec.interval_ms;
    let hi = first(w + WINDOW_MS).min(spec.samples_per_series());
    (first(w), hi)
}

fn target_labels(job: usize, inst: usize) -> String {
    format!("job=\"job-{job:02}\",instance=\"host-{job:02}-{inst:03}:9100\"")
}

/// Counters are sums of per-scrape increments: closed form via a running sum is not possible
/// with hashed increments, so a counter's value at scrape `i` is a base plus `i` times a
/// per-series rate plus a bounded hashed wobble (monotone because the wobble is smaller than
/// the per-scrape rate).
fn counter(seed: u64, i: i64) -> f64 {
    let rate = 20 + (seed % 200) as i64;
    let wobble = (mix(seed, i as u64) % 20) as i64;
    (100_000 + seed % 1000) as f64 + (i * rate + wobble) as f64
}

/// Appends the OpenMetrics text of one 2h window to `out`.
pub fn window_text(spec: &DataSpec, w: i64, out: &mut String) {
    let (lo, hi) = scrapes_in(spec, w);
    let targets = spec.jobs * spec.instances;
    let each = |out: &mut String, f: &dyn Fn(&mut String, usize, &str)| {
        for t in 0..targets {
            let labels = target_labels(t / spec.instances, t % spec.instances);
            f(out, t, &labels);
        }
    };
    // Writing into a String cannot fail.
    out.push_str("# TYPE http_requests counter\n");
    each(out, &|out, t, labels| {
        for (c, code) in CODES.iter().enumerate() {
            let seed = mix(t as u64, c as u64 + 1);
            // Error codes grow more slowly than successes.
            let scale = if c < 2 { 1.0 } else { 0.05 };
            for i in lo..hi {
                let v = (counter(seed, i) * scale).floor();
                let ts = spec.ts(t, i);
                let _ = writeln!(
                    out,
                    "http_requests_total{{{labels},code=\"{code}\"}} {v} {}.{:03}",
                    ts / 1000,
                    ts % 1000
                );
            }
        }
    });
    out.push_str("# TYPE request_duration_seconds histogram\n");
    each(out, &|out, t, labels| {
        let seed = mix(t as u64, 99);
        for (b, le) in BUCKETS.iter().enumerate() {
            for i in lo..hi {
                let v = bucket(seed, b, i);
                let ts = spec.ts(t, i);
                let _ = writeln!(
                    out,
                    "request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {v} {}.{:03}",
                    ts / 1000,
                    ts % 1000
                );
            }
        }
        for i in lo..hi {
            let ts = spec.ts(t, i);
            let count = bucket(seed, BUCKETS.len() - 1, i);
            let _ = writeln!(
                out,
                "request_duration_seconds_sum{{{labels}}} {} {}.{:03}",
                count * 0.125,
                ts / 1000,
                ts % 1000
            );
            let _ = writeln!(
                out,
                "request_duration_seconds_count{{{labels}}} {count} {}.{:03}",
                ts / 1000,
                ts % 1000
            );
        }
    });
    out.push_str("# TYPE cpu_usage gauge\n");
    each(out, &|out, t, labels| {
        for i in lo..hi {
            let v = (mix(t as u64 + 7, i as u64) % 1_000_000) as f64 / 1e6;
            let ts = spec.ts(t, i);
            let _ = writeln!(
                out,
                "cpu_usage{{{labels}}} {v} {}.{:03}",
                ts / 1000,
                ts % 1000
            );
        }
    });
    out.push_str("# TYPE memory_bytes gauge\n");
    each(out, &|out, t, labels| {
        for i in lo..hi {
            let v = 1e9 + (mix(t as u64 + 11, i as u64) % 1_000_000) as f64 * 1000.0;
            let ts = spec.ts(t, i);
            let _ = writeln!(
                out,
                "memory_bytes{{{labels}}} {v} {}.{:03}",
                ts / 1000,
                ts % 1000
            );
        }
    });
    out.push_str("# EOF\n");
}

/// Cumulative count of bucket `b` at scrape `i`: per-bucket shares of a common counter, so
/// buckets are monotone in `le` and in time.
fn bucket(seed: u64, b: usize, i: i64) -> f64 {
    let total = counter(seed, i);
    // Cumulative share of observations at or below bucket b (last bucket: all of them).
    let share = [
        0.02, 0.05, 0.12, 0.25, 0.45, 0.65, 0.80, 0.90, 0.96, 0.985, 0.995, 1.0,
    ];
    let s = share.get(b).copied().unwrap_or(1.0);
    (total * s).floor()
}

/// Writes every 2h window of `spec` as OpenMetrics and imports it with promtool into
/// `blocks_dir`, `parallel` windows at a time. Returns the number of windows imported.
pub fn build_blocks(
    spec: &DataSpec,
    promtool: &Path,
    work: &Path,
    blocks_dir: &Path,
    parallel: usize,
) -> Result<usize> {
    let windows: Vec<i64> = (0..)
        .map(|k| spec.start_ms + k * WINDOW_MS)
        .take_while(|w| *w < spec.end_ms)
        .collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = windows.len();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel.max(1))
            .map(|worker| {
                let (windows, next, done) = (&windows, &next, &done);
                s.spawn(move || -> Result<()> {
                    let file = work.join(format!("window-{worker}.om"));
                    let mut text = String::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&w) = windows.get(k) else {
                            return Ok(());
                        };
                        text.clear();
                        window_text(spec, w, &mut text);
                        write_file(&file, text.as_bytes())?;
                        import(promtool, &file, blocks_dir)?;
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % 24 == 0 || n == total {
                            eprintln!("  imported {n}/{total} 2h windows");
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::Failed("import worker panicked".into())))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    for worker in 0..parallel.max(1) {
        let _ = std::fs::remove_file(work.join(format!("window-{worker}.om")));
    }
    Ok(total)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| CliError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    Ok(())
}

fn import(promtool: &Path, file: &Path, blocks_dir: &Path) -> Result<()> {
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(file)
        .arg(blocks_dir)
        .output()
        .map_err(|source| CliError::Open {
            path: promtool.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(CliError::Failed(format!(
            "promtool create-blocks-from {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Block directories (ULID-named, with a meta.json) directly under `dir`.
pub fn block_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| CliError::Open {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        let is_ulid = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.parse::<ulid::Ulid>().is_ok());
        if is_ulid && p.join("meta.json").is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Records every block of `tsdb` as uploaded in the shipper's state file.
pub fn mark_shipped(tsdb: &Path) -> Result<()> {
    let mut uploaded = Vec::new();
    for b in block_dirs(tsdb)? {
        if let Some(name) = b.file_name().and_then(|n| n.to_str()) {
            uploaded.push(name.to_string());
        }
    }
    let state = serde_json::json!({ "version": 1, "uploaded": uploaded });
    let path = tsdb.join(crate::storage::bucket::shipper::STATE_FILE);
    write_file(&path, state.to_string().as_bytes())
}

/// Mirrors every block of `from` into `to` with hard links (blocks are immutable; both
/// servers only ever delete whole files), copying when linking is not possible.
pub fn link_blocks(from: &Path, to: &Path) -> Result<usize> {
    let blocks = block_dirs(from)?;
    for b in &blocks {
        let Some(name) = b.file_name() else { continue };
        link_tree(b, &to.join(name))?;
    }
    Ok(blocks.len())
}

fn link_tree(from: &Path, to: &Path) -> Result<()> {
    let io = |p: &Path, source| CliError::Open {
        path: p.display().to_string(),
        source,
    };
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let e = e.map_err(|e| io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            link_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DataSpec {
        DataSpec {
            jobs: 2,
            instances: 3,
            start_ms: 1_700_006_400_000,
            end_ms: 1_700_006_400_000 + 2 * WINDOW_MS,
            interval_ms: 300_000,
        }
    }

    #[test]
    fn windows_partition_the_scrapes_and_stay_inside_their_window() {
        let s = spec();
        let (a, b) = (
            scrapes_in(&s, s.start_ms),
            scrapes_in(&s, s.start_ms + WINDOW_MS),
        );
        assert_eq!(a, (0, 24));
        assert_eq!(b, (24, 48));
        for t in 0..6 {
            assert!(s.ts(t, 23) < s.start_ms + WINDOW_MS);
            assert!(s.ts(t, 24) >= s.start_ms + WINDOW_MS);
            assert_eq!(s.ts(t, 5) % 2, 0);
        }
    }

    #[test]
    fn counters_and_buckets_are_monotone() {
        for i in 0..500 {
            assert!(counter(42, i + 1) > counter(42, i));
            for b in 1..BUCKETS.len() {
                assert!(bucket(7, b, i) >= bucket(7, b - 1, i));
                assert!(bucket(7, b, i + 1) >= bucket(7, b, i));
            }
        }
    }

    #[test]
    fn window_text_has_every_series_once_per_scrape() {
        let s = spec();
        let mut text = String::new();
        window_text(&s, s.start_ms, &mut text);
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, s.series() * 24);
        assert!(text.ends_with("# EOF\n"));
    }
}
