//! Head append throughput: 10k series × N scrapes, committed in batches of 1000 like the
//! scraper and promtool's write benchmark; with and without the WAL, by labels and by ref.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::storage::db::bench::bench_labels;
use strata::storage::head::{Head, HeadOptions};
use strata::storage::model::Labels;
use strata::storage::wal::{Wal, WalOptions};

const SERIES: usize = 10_000;
const SCRAPES: usize = 10;
const BATCH: usize = 1000;

fn ingest(head: &Head, labels: &[Labels], refs: &mut [u64], by_ref: bool) {
    for scrape in 0..SCRAPES {
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

fn bench_head(c: &mut Criterion) {
    let labels = bench_labels(SERIES);
    let mut g = c.benchmark_group("head_append");
    g.sample_size(10);
    g.throughput(Throughput::Elements((SERIES * SCRAPES) as u64));
    for (name, by_ref) in [("no_wal_by_labels", false), ("no_wal_by_ref", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || (Head::new(HeadOptions::default(), None), vec![0u64; SERIES]),
                |(head, mut refs)| ingest(&head, &labels, &mut refs, by_ref),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("wal_no_fsync_by_ref", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let (wal, _) = Wal::open(
                    &dir.path().join("wal"),
                    WalOptions {
                        fsync: false,
                        ..WalOptions::default()
                    },
                    |_| {},
                )
                .unwrap();
                (
                    dir,
                    Head::new(HeadOptions::default(), Some(Arc::new(wal))),
                    vec![0u64; SERIES],
                )
            },
            |(_dir, head, mut refs)| ingest(&head, &labels, &mut refs, true),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_head);
criterion_main!(benches);
