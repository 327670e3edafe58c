//! Criterion benchmarks of the XOR chunk codec: encode and decode throughput for a counter
//! (regular 15s interval), a noisy gauge, and jittered timestamps, 120 samples per chunk
//! (the size Prometheus cuts), reported per element = per sample.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata::storage::chunkenc::{decode_all, SeriesIterator, XorAppender, XorIterator};

fn workload(kind: &str) -> Vec<(i64, f64)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = 0.0f64;
    (0..120i64)
        .map(|i| {
            let mut t = 1_700_000_000_000 + i * 15_000;
            match kind {
                "counter" => v += (rnd() % 20) as f64,
                "gauge" => v = 20.0 + (rnd() % 10_000) as f64 / 1000.0,
                _ => {
                    t += (rnd() % 101) as i64 - 50;
                    v += (rnd() % 20) as f64;
                }
            }
            (t, v)
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> XorAppender {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("xor");
    for kind in ["counter", "gauge", "jitter"] {
        let samples = workload(kind);
        let chunk = encode(&samples);
        g.throughput(Throughput::Elements(samples.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", kind), &samples, |b, s| {
            b.iter(|| black_box(encode(black_box(s)).bytes().len()))
        });
        g.bench_with_input(
            BenchmarkId::new("decode", kind),
            chunk.bytes(),
            |b, data| {
                b.iter(|| {
                    let mut it =
                        XorIterator::new(black_box(data)).unwrap_or_else(|e| panic!("{e}"));
                    let mut sum = 0.0;
                    while let Ok(Some(s)) = it.next() {
                        sum += s.v;
                    }
                    black_box(sum)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("decode_all", kind),
            chunk.bytes(),
            |b, data| {
                b.iter(|| black_box(decode_all(black_box(data)).map(|v| v.len()).unwrap_or(0)))
            },
        );
        let chunks: Vec<_> = (0..10)
            .filter_map(|k| {
                let shifted: Vec<(i64, f64)> = samples
                    .iter()
                    .map(|&(t, v)| (t + k * 1_800_000, v))
                    .collect();
                encode(&shifted).to_encoded()
            })
            .collect();
        g.throughput(Throughput::Elements(samples.len() as u64 * 10));
        g.bench_with_input(
            BenchmarkId::new("series_iter_10_chunks", kind),
            &chunks,
            |b, ch| {
                b.iter(|| {
                    let mut it = SeriesIterator::new(ch.clone());
                    let mut n = 0;
                    while let Ok(Some(_)) = it.next() {
                        n += 1;
                    }
                    black_box(n)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
