use super::*;
use crate::storage::chunkenc::SeriesIterator;
use crate::storage::model::{Labels, Sample};

const H: i64 = 3600 * 1000;

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync: false,
        wal_segment_size: 64 * 1024,
        ..DbOptions::default()
    }
}

fn samples(db: &Db, m: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
    let mut out = Vec::new();
    for s in db
        .select(m, i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let mut it = SeriesIterator::new(s.chunks);
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push(x);
        }
        out.push((s.labels, v));
    }
    out
}

fn fill(db: &Db, from: i64, to: i64, step: i64, n: usize) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n {
            app.add(
                &Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
                t,
                (t / step) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
        t += step;
    }
}

#[test]
fn cut_blocks_persists_and_queries_merge() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 7 * H, 60_000, 5);
    let before = samples(&db, &[]);
    let cut = db.cut_blocks(0).unwrap();
    // Cut only while the head spans more than 3h: [0,2h), [2h,4h); 4h..7h stays.
    assert_eq!(cut.len(), 2);
    let metas = db.list_blocks();
    assert_eq!((metas[0].meta.min_time, metas[0].meta.max_time), (0, 2 * H));
    assert_eq!(
        (metas[1].meta.min_time, metas[1].meta.max_time),
        (2 * H, 4 * H)
    );
    assert_eq!(metas[0].meta.compaction.level, 1);
    assert_eq!(metas[0].meta.compaction.sources, vec![metas[0].meta.ulid]);
    assert_eq!(db.head().min_time(), 4 * H);
    assert_eq!(samples(&db, &[]), before);
    // Samples inside a persisted range are now out of bounds.
    let mut app = db.appender();
    assert!(app
        .add(&Labels::from_pairs([("__name__", "m"), ("i", "0")]), H, 1.0)
        .is_err());
    drop(app);
    drop(db);
    // Reopen: blocks + checkpoint + WAL give the same answer.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.replay_stats().checkpoint.is_some());
    assert_eq!(db.list_blocks().len(), 2);
    assert_eq!(samples(&db, &[]), before);
    assert_eq!(
        db.label_values("i", &[], i64::MIN, i64::MAX).unwrap(),
        vec!["0", "1", "2", "3", "4"]
    );
}

#[test]
fn retention_and_delete_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        DbOptions {
            retention_ms: 3 * H,
            ..opts()
        },
    )
    .unwrap();
    fill(&db, 0, 9 * H, 300_000, 2);
    let cut = db.cut_blocks(0).unwrap();
    assert_eq!(cut.len(), 3);
    let gone = db.apply_retention(7 * H).unwrap();
    // Blocks ending at or before 4h are beyond 3h retention at 7h.
    assert_eq!(gone.len(), 2);
    assert_eq!(db.list_blocks().len(), 1);
    let last = db.list_blocks()[0].clone();
    db.delete_block(last.meta.ulid).unwrap();
    assert!(!last.dir.exists());
    assert!(matches!(
        db.delete_block(last.meta.ulid),
        Err(DbError::NoSuchBlock(_))
    ));
    let got = samples(&db, &[]);
    assert!(got
        .iter()
        .all(|(_, s)| s.first().is_some_and(|x| x.t >= 6 * H)));
}

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    // An appender may be held across an `.await` in async callers.
    fn send<T: Send>() {}
    send::<HeadAppender<'static>>();
}

#[test]
fn concurrent_appends_cuts_and_queries_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let step = 60_000;
    let steps = 600; // 10h of data per writer
                     // Writers move in lockstep: one lagging more than half a block behind the newest sample
                     // would rightly get "out of bounds".
    let barrier = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for w in 0..3 {
            let db = &db;
            let barrier = &barrier;
            s.spawn(move || {
                let l = Labels::from_pairs([("__name__", "c"), ("w", &w.to_string())]);
                for k in 0..steps {
                    barrier.wait();
                    let mut app = db.appender();
                    app.add(&l, k * step, k as f64).unwrap();
                    app.commit().unwrap();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                db.cut_blocks(0).unwrap();
                let got = db
                    .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
                    .unwrap();
                assert!(got.len() <= 3);
            }
        });
    });
    db.cut_blocks(0).unwrap();
    let check = |db: &Db| {
        let all = samples(db, &[]);
        assert_eq!(all.len(), 3);
        for (_, s) in &all {
            assert_eq!(s.len(), steps as usize);
            assert!(s
                .iter()
                .enumerate()
                .all(|(k, x)| x.t == k as i64 * step && x.v == k as f64));
        }
    };
    check(&db);
    drop(db);
    check(&Db::open(dir.path(), opts()).unwrap());
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), opts()),
        Err(DbError::Locked(_))
    ));
    drop(db);
    Db::open(dir.path(), opts()).unwrap();
}
