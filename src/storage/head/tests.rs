use super::*;
use crate::storage::chunkenc::SeriesIterator;
use crate::storage::model::{stale_nan, MatchOp, Matcher, Queryable, Sample, SelectHints};
use crate::storage::wal::WalOptions;

fn lbl(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)])
}

fn samples_of(s: &crate::storage::model::Series) -> Vec<Sample> {
    let mut it = SeriesIterator::new(s.chunks.clone());
    let mut out = Vec::new();
    while let Some(x) = it.next().unwrap() {
        out.push(x);
    }
    out
}

fn all(head: &Head, m: &[Matcher]) -> Vec<crate::storage::model::Series> {
    head.select(m, i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
}

#[test]
fn append_commit_select() {
    let head = Head::new(HeadOptions::default(), None);
    let mut app = head.appender();
    for t in 0..500 {
        app.add(&lbl("up", "a"), t * 1000, t as f64).unwrap();
        app.add(&lbl("up", "b"), t * 1000, -(t as f64)).unwrap();
    }
    // Nothing visible before commit.
    assert!(all(&head, &[]).is_empty());
    app.commit().unwrap();
    let got = all(&head, &[Matcher::equal("job", "a")]);
    assert_eq!(got.len(), 1);
    let s = samples_of(&got[0]);
    assert_eq!(s.len(), 500);
    assert_eq!(
        s[499],
        Sample {
            t: 499_000,
            v: 499.0
        }
    );
    // Time filtering keeps only overlapping chunks, but every returned chunk overlaps.
    let part = head
        .select(&[], 400_000, 410_000, &SelectHints::default())
        .unwrap();
    assert_eq!(part.len(), 2);
    for c in &part[0].chunks {
        assert!(c.max_time >= 400_000 && c.min_time <= 410_000);
    }
    assert_eq!((head.min_time(), head.max_time()), (0, 499_000));
}

#[test]
fn ordering_rules_and_counters() {
    let head = Head::new(HeadOptions::default(), None);
    let l = lbl("x", "a");
    let mut app = head.appender();
    app.add(&l, 100, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = head.appender();
    assert_eq!(
        app.add(&l, 99, 1.0).unwrap_err().to_string(),
        "out of order sample"
    );
    assert_eq!(
        app.add(&l, 100, 2.0).unwrap_err().to_string(),
        "duplicate sample for timestamp"
    );
    app.add(&l, 100, 1.0).unwrap();
    app.add(&l, 101, stale_nan()).unwrap();
    app.add(&l, 101, stale_nan()).unwrap();
    assert_eq!(
        app.add(&l, 100, 5.0).unwrap_err().to_string(),
        "out of order sample"
    );
    app.commit().unwrap();
    assert_eq!(head.stats().out_of_order.load(Ordering::Relaxed), 2);
    assert_eq!(head.stats().duplicate_timestamp.load(Ordering::Relaxed), 1);
    let s = samples_of(&all(&head, &[])[0]);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].v.to_bits(), stale_nan().to_bits());
}

#[test]
fn concurrent_appenders_conflicting_on_one_series() {
    let head = Head::new(HeadOptions::default(), None);
    let l = lbl("x", "a");
    let mut a = head.appender();
    let mut b = head.appender();
    a.add(&l, 10, 1.0).unwrap();
    b.add(&l, 20, 2.0).unwrap();
    b.add(&l, 5, 0.0).unwrap_err();
    b.commit().unwrap();
    // a's sample is now older than what b committed: dropped and counted at commit.
    a.commit().unwrap();
    let s = samples_of(&all(&head, &[])[0]);
    assert_eq!(s, vec![Sample { t: 20, v: 2.0 }]);
    assert_eq!(head.stats().out_of_order.load(Ordering::Relaxed), 2);
}

#[test]
fn matchers_including_empty_matching_ones() {
    let head = Head::new(HeadOptions::default(), None);
    let mut app = head.appender();
    app.add(
        &Labels::from_pairs([("__name__", "m"), ("env", "prod")]),
        1,
        1.0,
    )
    .unwrap();
    app.add(
        &Labels::from_pairs([("__name__", "m"), ("env", "dev")]),
        1,
        1.0,
    )
    .unwrap();
    app.add(&Labels::from_pairs([("__name__", "m")]), 1, 1.0)
        .unwrap();
    app.add(&Labels::from_pairs([("__name__", "other")]), 1, 1.0)
        .unwrap();
    app.commit().unwrap();
    let names = |m: Vec<Matcher>| -> Vec<String> {
        all(&head, &m)
            .iter()
            .map(|s| s.labels.to_string())
            .collect()
    };
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    assert_eq!(names(vec![Matcher::equal("env", "")]).len(), 2);
    assert_eq!(
        names(vec![
            Matcher::equal("__name__", "m"),
            m(MatchOp::NotEqual, "env", "prod")
        ])
        .len(),
        2
    );
    assert_eq!(names(vec![m(MatchOp::RegexMatch, "env", "p.*|")]).len(), 3);
    assert_eq!(names(vec![m(MatchOp::RegexNoMatch, "env", ".+")]).len(), 2);
    assert_eq!(
        names(vec![m(MatchOp::RegexMatch, "env", ".+")]),
        vec![
            r#"{__name__="m", env="dev"}"#.to_string(),
            r#"{__name__="m", env="prod"}"#.to_string()
        ]
    );
    assert_eq!(
        head.label_values("env", &[], i64::MIN, i64::MAX).unwrap(),
        vec!["dev", "prod"]
    );
    assert_eq!(
        head.label_names(&[Matcher::equal("__name__", "other")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["__name__"]
    );
    let lo = head
        .select(
            &[],
            0,
            10,
            &SelectHints {
                labels_only: true,
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(lo.len(), 2);
    assert!(lo[0].chunks.is_empty());
    // Results are sorted by labels.
    let all_l: Vec<_> = all(&head, &[]).into_iter().map(|s| s.labels).collect();
    let mut sorted = all_l.clone();
    sorted.sort();
    assert_eq!(all_l, sorted);
}

#[test]
fn wal_replay_rebuilds_the_same_head() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 64 * 1024,
        fsync: false,
    };
    let want;
    {
        let (wal, _) = Wal::open(dir.path(), opts.clone(), |_| {}).unwrap();
        let head = Head::new(HeadOptions::default(), Some(Arc::new(wal)));
        for batch in 0..300 {
            let mut app = head.appender();
            for i in 0..30 {
                app.add(
                    &lbl("m", &i.to_string()),
                    batch * 15_000,
                    (batch * i) as f64,
                )
                .unwrap();
            }
            app.commit().unwrap();
        }
        want = all(&head, &[]);
    }
    let head = Head::new(HeadOptions::default(), None);
    let (_wal, stats) = Wal::open(dir.path(), opts, |r| head.replay_record(r)).unwrap();
    assert!(stats.segments > 1);
    let got = all(&head, &[]);
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want.iter()) {
        assert_eq!(a.labels, b.labels);
        assert_eq!(samples_of(a), samples_of(b));
    }
}

#[test]
fn truncate_drops_old_data_and_empty_series() {
    let head = Head::new(
        HeadOptions {
            chunk_range_ms: 1000,
        },
        None,
    );
    let mut app = head.appender();
    for t in 0..3000 {
        app.add(&lbl("long", "a"), t, 1.0).unwrap();
        if t < 500 {
            app.add(&lbl("short", "a"), t, 1.0).unwrap();
        }
    }
    app.commit().unwrap();
    let blocks = head.chunks_for_block(0, 1000);
    assert_eq!(blocks.len(), 2);
    for (_, chunks) in &blocks {
        assert!(chunks.iter().all(|c| c.min_time >= 0 && c.max_time < 1000));
    }
    // A stale appender still holding the soon-removed series.
    let mut stale = head.appender();
    stale.add(&lbl("short", "a"), 2500, 2.0).unwrap();
    assert_eq!(head.truncate(1000), 1);
    assert_eq!(head.num_series(), 1);
    assert_eq!(head.min_time(), 1000);
    let mut app = head.appender();
    assert!(matches!(
        app.add(&lbl("long", "a"), 999, 1.0),
        Err(HeadError::OutOfBounds)
    ));
    stale.commit().unwrap();
    // More than half a chunk range behind the newest sample is out of bounds too.
    assert!(matches!(
        app.add(&lbl("long", "a"), 2400, 1.0),
        Err(HeadError::OutOfBounds)
    ));
    app.add(&lbl("long", "a"), 2999, 1.0).unwrap();
    let short = all(&head, &[Matcher::equal("__name__", "short")]);
    assert_eq!(samples_of(&short[0]), vec![Sample { t: 2500, v: 2.0 }]);
    let long = all(&head, &[Matcher::equal("__name__", "long")]);
    assert_eq!(samples_of(&long[0]).len(), 2000);
}
