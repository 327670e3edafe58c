//! Steady-state cost of one scrape's append: a 1k-series body parsed, matched against the
//! target's scrape cache, appended to the head and committed (WAL included), as a scrape loop
//! does every interval. Throughput is in samples. `100_targets_steady` scrapes 100 such
//! targets in turn (the shape of `strata tools bench scrape`), so the head and the caches
//! are larger than the CPU caches, as in a real scraper.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::cli::bench_scrape::target_body;
use strata::config::Config;
use strata::scrape::append::{AppendCtx, ScrapeCache};
use strata::scrape::parser::Format;
use strata::storage::db::{Db, DbOptions};
use strata::storage::model::Labels;

fn body(series: usize) -> String {
    let mut s = String::new();
    s.push_str("# HELP bench_requests_total Requests.\n# TYPE bench_requests_total counter\n");
    for i in 0..series {
        s.push_str(&format!(
            "bench_requests_total{{handler=\"/api/v1/h{}\",method=\"{}\",code=\"{}\"}} {}\n",
            i / 5,
            ["get", "post", "put", "delete", "patch"][i % 5],
            200 + (i % 3) * 100,
            i * 3
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let yaml = "scrape_configs:\n  - job_name: bench\n    static_configs: [{targets: ['h:1']}]\n";
    let cfg = Config::from_yaml_str(yaml, "bench.yml")
        .expect("config")
        .scrape_configs[0]
        .clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        DbOptions {
            wal_fsync: false,
            ..DbOptions::default()
        },
    )
    .expect("db");
    let target = Labels::from_pairs([("job", "bench"), ("instance", "h:1")]);
    let body = body(1000);
    let mut cache = ScrapeCache::default();
    let mut t = 1_700_000_000_000i64;
    let mut group = c.benchmark_group("scrape_append");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1k_series_steady", |b| {
        b.iter(|| {
            t += 1000;
            let ctx = AppendCtx {
                cfg: &cfg,
                target_labels: &target,
                lint_dropped: None,
            };
            let mut app = db.appender();
            let stats = cache
                .append(&mut app, &ctx, body.as_bytes(), Format::PrometheusText, t)
                .expect("append");
            app.commit().expect("commit");
            stats
        })
    });
    group.finish();

    let targets: Vec<(Labels, String, ScrapeCache)> = (0..100)
        .map(|i| {
            let labels =
                Labels::from_pairs([("job", "bench".to_string()), ("instance", format!("t{i}"))]);
            (labels, target_body(i, 1000), ScrapeCache::default())
        })
        .collect();
    let mut targets = targets;
    let mut group = c.benchmark_group("scrape_append");
    group.throughput(Throughput::Elements(100 * 1000));
    group.sample_size(10);
    group.bench_function("100_targets_steady", |b| {
        b.iter(|| {
            t += 1000;
            for (labels, body, cache) in targets.iter_mut() {
                let ctx = AppendCtx {
                    cfg: &cfg,
                    target_labels: labels,
                    lint_dropped: None,
                };
                let mut app = db.appender();
                cache
                    .append(&mut app, &ctx, body.as_bytes(), Format::PrometheusText, t)
                    .expect("append");
                app.commit().expect("commit");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
