//! Parse throughput of a 10k-line exposition body in both formats (the body
//! `strata tools bench scrape` measures): streaming entries (borrowed names and values),
//! collecting full label sets, and the steady state of a scrape loop, where every series text
//! is known from the previous body and only values are read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use strata::cli::bench_scrape::parse_body as body;
use strata::scrape::parser::{parse, Entry, Format, Parser};

fn bench(c: &mut Criterion) {
    for (label, format) in [
        ("text", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
    ] {
        let (text, samples) = body(format);
        let mut group = c.benchmark_group(format!("parse_{label}_10k_lines"));
        group.throughput(Throughput::Elements(samples));
        group.bench_function("stream_entries", |b| {
            b.iter(|| {
                let mut n = 0u64;
                for e in Parser::new(black_box(text.as_bytes()), format) {
                    if let Ok(Entry::Sample(s)) = e {
                        n += s.labels.len() as u64;
                    }
                }
                n
            })
        });
        let mut known: Vec<Vec<u8>> = Vec::new();
        let mut p = Parser::new(text.as_bytes(), format);
        while let Ok(Some(e)) = p.next_entry() {
            if let (Entry::Sample(_), Some(series)) = (e, p.last_series()) {
                known.push(series.to_vec());
            }
        }
        group.bench_function("known_series", |b| {
            b.iter(|| {
                let mut p = Parser::new(black_box(text.as_bytes()), format);
                let (mut n, mut next) = (0u64, 0usize);
                loop {
                    if let Some(series) = known.get(next) {
                        if let Ok(Some((v, _))) = p.next_known(series) {
                            n += v.to_bits() & 1;
                            next += 1;
                            continue;
                        }
                    }
                    match p.next_entry() {
                        Ok(Some(Entry::Sample(_))) => next += 1,
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
                n
            })
        });
        group.bench_function("collect_labels", |b| {
            b.iter(|| {
                parse(black_box(text.as_bytes()), format)
                    .map(|e| e.samples.len())
                    .unwrap_or(0)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
