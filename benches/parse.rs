//! Parse throughput of a 10k-line exposition body in both formats: streaming entries
//! (borrowed names and values) and collecting full label sets.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use strata::scrape::parser::{parse, Entry, Format, Parser};

/// A node-exporter-like body: families of 20 series with HELP/TYPE, 3 labels each,
/// about 10,000 lines in all. Returns the body and its sample count.
fn body(format: Format) -> (String, u64) {
    let mut s = String::new();
    let mut samples = 0;
    let mut lines = 0;
    let mut family = 0;
    while lines < 10_000 {
        let name = format!("node_family_{family}_total");
        s.push_str(&format!(
            "# HELP {name} Family number {family} of the benchmark body.\n# TYPE {name} counter\n"
        ));
        lines += 2;
        for i in 0..20 {
            let value = (family * 1000 + i) as f64 * 1.5;
            s.push_str(&format!(
                "{name}{{cpu=\"{i}\",mode=\"user\",instance=\"host-{family}:9100\"}} {value}\n"
            ));
            samples += 1;
            lines += 1;
        }
        family += 1;
    }
    if format == Format::OpenMetrics {
        s.push_str("# EOF\n");
    }
    (s, samples)
}

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
