//! Criterion benchmark of HA replica deduplication: 2 replicas x 1000 series x 720 samples
//! (3 h at a 15 s interval) of counters, one replica offset by 7 s with value skew and an
//! outage on every tenth series, with and without the counter adjustment; throughput is per
//! input sample (decode + gap-fill merge + re-encode).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::storage::dedup::{dedup_replicas, encode_chunks};
use strata::storage::model::{Labels, Sample, Series};

const SERIES: usize = 1000;
const SAMPLES: i64 = 720;
const INTERVAL: i64 = 15_000;

fn replica_series(replica: &str, offset: i64, skew: i64, series: usize) -> Series {
    let start = 1_700_000_000_000i64;
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|i| start + offset + i * INTERVAL)
        // Every tenth series of replica b is down for 20 minutes in the middle.
        .filter(|t| {
            !(replica == "b"
                && series.is_multiple_of(10)
                && (t - start) / 60_000 % 180 > 80
                && (t - start) / 60_000 % 180 < 100)
        })
        .map(|t| Sample {
            t,
            v: ((t + skew - start) / 1000 * (series as i64 % 7 + 1)) as f64,
        })
        .collect();
    Series {
        labels: Labels::from_pairs([
            ("__name__", "http_requests_total"),
            (
                "instance",
                &format!("10.0.{}.{}:9100", series / 250, series % 250),
            ),
            ("replica", replica),
        ]),
        chunks: encode_chunks(&samples).expect("encode"),
    }
}

fn workload() -> Vec<Series> {
    let mut all = Vec::with_capacity(2 * SERIES);
    for s in 0..SERIES {
        all.push(replica_series("a", 0, 0, s));
        all.push(replica_series("b", 7_000, -3_000, s));
    }
    all
}

fn bench(c: &mut Criterion) {
    let input = workload();
    let samples: usize = input
        .iter()
        .flat_map(|s| s.chunks.iter())
        .map(|c| u16::from_be_bytes([c.data[0], c.data[1]]) as usize)
        .sum();
    let replica_labels = vec!["replica".to_string()];
    let mut g = c.benchmark_group("dedup_2x1000x720");
    g.sample_size(10);
    g.throughput(Throughput::Elements(samples as u64));
    for counter in [false, true] {
        let name = if counter { "counter_adjust" } else { "plain" };
        g.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |series| dedup_replicas(series, &replica_labels, counter).expect("dedup"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
