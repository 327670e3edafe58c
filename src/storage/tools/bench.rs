//! Storage-efficiency measurement: deterministic synthetic OpenMetrics workloads (counters,
//! gauges, jittered scrape timestamps) and bytes-per-sample of the blocks built from them, so
//! our blocks can be compared with promtool's on identical input (`cli::import` imports the
//! text; `cli::import::bench_block_bytes_per_sample` does both steps).

use std::fmt::Write as _;
use std::path::Path;

use super::Result;
use crate::storage::block::{list_blocks, BlockReader};

/// Kind of synthetic series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Monotonic integer counters, exact 15s scrape interval.
    Counter,
    /// Random-walk gauges with two decimals, exact 15s interval.
    Gauge,
    /// Counters with ±50 ms scrape jitter.
    JitteredCounter,
}

/// Bytes per sample of the blocks in a directory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BytesPerSample {
    pub samples: u64,
    pub chunk_bytes: u64,
    pub index_bytes: u64,
    /// Chunk segment bytes per sample.
    pub chunk_bps: f64,
    /// (chunks + index) bytes per sample.
    pub total_bps: f64,
}

/// A tiny deterministic PRNG (xorshift64*) so workloads are reproducible without seeding APIs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// OpenMetrics text for `series` series × `samples` samples, starting at `start_ms`.
pub fn synth_openmetrics(kind: Workload, series: usize, samples: usize, start_ms: i64) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let name = match kind {
        Workload::Counter | Workload::JitteredCounter => "synthetic_requests_total",
        Workload::Gauge => "synthetic_temperature",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# TYPE {name} {}",
        if kind == Workload::Gauge {
            "gauge"
        } else {
            "counter"
        }
    );
    for s in 0..series {
        let mut value: f64 = if kind == Workload::Gauge { 20.0 } else { 0.0 };
        for i in 0..samples {
            let mut t = start_ms + i as i64 * 15_000;
            if kind == Workload::JitteredCounter {
                t += rng.below(101) as i64 - 50;
            }
            match kind {
                Workload::Gauge => {
                    value += (rng.below(201) as f64 - 100.0) / 100.0;
                    value = (value * 100.0).round() / 100.0;
                }
                _ => value += rng.below(20) as f64,
            }
            let _ = writeln!(
                out,
                "{name}{{instance=\"host-{s}:9100\",job=\"node\"}} {value} {}.{:03}",
                t.div_euclid(1000),
                t.rem_euclid(1000)
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Measures every block under `dir`.
pub fn block_bytes_per_sample(dir: &Path) -> Result<BytesPerSample> {
    let mut r = BytesPerSample::default();
    for d in list_blocks(dir)? {
        let b = BlockReader::open(&d)?;
        r.samples += b.meta().stats.num_samples;
        r.chunk_bytes += b.chunk_reader().size();
        r.index_bytes += b.index().size();
    }
    if r.samples > 0 {
        r.chunk_bps = r.chunk_bytes as f64 / r.samples as f64;
        r.total_bps = (r.chunk_bytes + r.index_bytes) as f64 / r.samples as f64;
    }
    Ok(r)
}
