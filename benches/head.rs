//! Head append throughput: 10k series × N scrapes, committed in batches of 1000 like the
//! scraper and promtool's write benchmark; with and without the WAL, by labels and by ref.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::storage::db::bench::bench_labels;
use strata::storage::head::{Head, HeadOptions};
use strata::storage::model::Labels;
use strata::storage::wal::{Wal, WalOptions};

const SERIES: usize = 10_000;
const SCRAPES: usize = 10;
const BATCH: usize = 1000;

/// Appends scrapes `from..from + SCRAPES` of every series, in batches of 1000.
fn ingest(head: &Head, labels: &[Labels], refs: &mut [u64], by_ref: bool, from: usize) {
    for scrape in from..from + SCRAPES {
        let t = scrape as i64 * 15_000;
        for (ls, rs) in labels.chunks(BATCH).zip(refs.chunks_mut(BATCH)) {
            let mut app = head.appender();
            for (l, r) in ls.iter().zip(rs.iter_mut()) {
                if by_ref {
                    *r = app.append(*r, l, t, t as f64).unwrap();
                } else {
                    app.add(l, t, t as f64).unwrap();
                }
            }
            app.commit().unwrap();
        }
    }
}

/// A head that already holds the series (one scrape), so the timed part is steady-state
/// appending rather than series creation.
fn warm_head(labels: &[Labels], wal: Option<Arc<Wal>>) -> (Head, Vec<u64>) {
    let head = Head::new(HeadOptions::default(), wal);
    let mut refs = vec![0u64; labels.len()];
    let mut app = head.appender();
    for (l, r) in labels.iter().zip(refs.iter_mut()) {
        *r = app.append(0, l, -15_000, 0.0).unwrap();
    }
    app.commit().unwrap();
    (head, refs)
}

fn bench_head(c: &mut Criterion) {
    let labels = bench_labels(SERIES);
    let mut g = c.benchmark_group("head_append");
    g.sample_size(10);
    g.throughput(Throughput::Elements((SERIES * SCRAPES) as u64));
    g.bench_function("create_series_then_append_no_wal", |b| {
        b.iter_batched(
            || (Head::new(HeadOptions::default(), None), vec![0u64; SERIES]),
            |(head, mut refs)| ingest(&head, &labels, &mut refs, false, 0),
            BatchSize::PerIteration,
        )
    });
    for (name, by_ref) in [
        ("steady_no_wal_by_labels", false),
        ("steady_no_wal_by_ref", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || warm_head(&labels, None),
                |(head, mut refs)| ingest(&head, &labels, &mut refs, by_ref, 0),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("steady_wal_no_fsync_by_ref", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let opts = WalOptions {
                    fsync: false,
                    ..WalOptions::default()
                };
                let (wal, _) = Wal::open(&dir.path().join("wal"), opts, |_| {}).unwrap();
                let (head, refs) = warm_head(&labels, Some(Arc::new(wal)));
                (dir, head, refs)
            },
            |(_dir, head, mut refs)| ingest(&head, &labels, &mut refs, true, 0),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_head);
criterion_main!(benches);
