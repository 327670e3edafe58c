//! The cost metric-usage recording adds to every query: the walk over a parsed query and the
//! update of the per-metric counters, for queries of the shapes the query benchmark runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed bench
use criterion::{criterion_group, criterion_main, Criterion};
use strata::query::usage::{Source, Usage};

fn bench(c: &mut Criterion) {
    let queries = [
        "up",
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))",
        "sum by (job) (rate(a_total{code=~\"5..\"}[5m])) / on (job) group_left (team) sum by (job, team) (rate(b_total[5m]))",
    ];
    let usage = Usage::new(0, None);
    for q in queries {
        let expr = promql_parser::parser::parse(q).expect("query parses");
        let source = Source::Dashboard { uid: "d".into() };
        c.bench_function(&format!("record {} bytes", q.len()), |b| {
            b.iter(|| usage.record(&expr, &source, 1))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
