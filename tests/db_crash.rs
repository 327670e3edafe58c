//! Crash safety of the Db: a child process (this test binary re-executed with
//! `STRATA_CRASH_CHILD_DIR` set, running only `crash_child`) appends batches and prints each
//! batch id once `commit` has returned; the parent SIGKILLs it at random points, reopens the Db
//! and checks that every printed batch is there with exact values. Also: a torn WAL tail and a
//! clean close/reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use strata::storage::chunkenc::SeriesIterator;
use strata::storage::db::{Db, DbOptions};
use strata::storage::model::{Labels, Queryable, SelectHints};

const SERIES: usize = 20;
/// Five minutes per batch: a 2h block every 24 batches, so rounds cut blocks and checkpoints.
const STEP: i64 = 300_000;

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync: false,
        wal_segment_size: 64 * 1024,
        ..DbOptions::default()
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "crash_test".to_string()),
        ("series", i.to_string()),
    ])
}

fn value(batch: u64, i: usize) -> f64 {
    batch as f64 * 1000.0 + i as f64 + 0.25
}

/// Every sample in the Db, per series index: time → value.
fn read_all(db: &Db) -> BTreeMap<usize, BTreeMap<i64, f64>> {
    let mut out = BTreeMap::new();
    for s in db
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let i: usize = s.labels.get("series").unwrap().parse().unwrap();
        let mut it = SeriesIterator::new(s.chunks);
        let mut m = BTreeMap::new();
        while let Some(x) = it.next().unwrap() {
            m.insert(x.t, x.v);
        }
        out.insert(i, m);
    }
    out
}

/// Asserts batches `0..=last` are all present and nothing present is wrong; returns the
/// number of batches found.
fn verify(db: &Db, last_acked: Option<u64>) -> u64 {
    let all = read_all(db);
    let mut found = 0;
    for i in 0..SERIES {
        let m = all.get(&i).cloned().unwrap_or_default();
        for (&t, &v) in &m {
            assert_eq!(t % STEP, 0, "unexpected timestamp {t}");
            assert_eq!(v, value((t / STEP) as u64, i), "series {i} t {t}");
        }
        if let Some(last) = last_acked {
            for b in 0..=last {
                assert_eq!(
                    m.get(&(b as i64 * STEP)),
                    Some(&value(b, i)),
                    "acknowledged batch {b} missing in series {i}"
                );
            }
        }
        found = found.max(m.len() as u64);
    }
    found
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("STRATA_CRASH_CHILD_DIR") else {
        return;
    };
    let start: u64 = std::env::var("STRATA_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let fsync = std::env::var("STRATA_CRASH_FSYNC").is_ok_and(|v| v == "1");
    let db = Db::open(
        Path::new(&dir),
        DbOptions {
            wal_fsync: fsync,
            ..opts()
        },
    )
    .unwrap();
    let out = std::io::stdout();
    for b in start.. {
        let mut app = db.appender();
        for i in 0..SERIES {
            app.add(&labels(i), b as i64 * STEP, value(b, i)).unwrap();
        }
        app.commit().unwrap();
        let mut lock = out.lock();
        writeln!(lock, "committed {b}").unwrap();
        lock.flush().unwrap();
        drop(lock);
        if b % 10 == 0 {
            db.cut_blocks(0).unwrap();
        }
    }
}

#[test]
fn sigkill_never_loses_acknowledged_batches() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed_c0de);
    let mut next: u64 = 0;
    let mut last_acked: Option<u64> = None;
    for round in 0..10 {
        let kill_after = rng.random_range(1..120u64);
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("STRATA_CRASH_CHILD_DIR", dir.path())
            .env("STRATA_CRASH_START", next.to_string())
            // Alternate plain flushes and group-committed fsyncs.
            .env("STRATA_CRASH_FSYNC", if round % 2 == 1 { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("committed ") {
                let id: u64 = id.trim().parse().unwrap();
                last_acked = Some(id);
                seen += 1;
                if seen >= kill_after {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: child should have been killed"
        );
        let db = Db::open(dir.path(), opts()).unwrap();
        let found = verify(&db, last_acked);
        eprintln!(
            "round {round}: killed after {seen} acknowledged batches, {found} batches on reopen"
        );
        assert!(found >= last_acked.map_or(0, |l| l + 1));
        next = last_acked.map_or(0, |l| l + 1);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(
        !db.list_blocks().is_empty(),
        "the rounds should have cut blocks"
    );
}

#[test]
fn torn_wal_tail_opens_with_a_prefix_of_batches() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), opts()).unwrap();
            for b in 0..30u64 {
                let mut app = db.appender();
                for i in 0..SERIES {
                    app.add(&labels(i), b as i64 * STEP, value(b, i)).unwrap();
                }
                app.commit().unwrap();
            }
            db.close().unwrap();
        }
        let wal = dir.path().join("wal");
        let mut segs: Vec<_> = std::fs::read_dir(&wal)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && std::fs::metadata(p).unwrap().len() > 0)
            .collect();
        segs.sort();
        let last = segs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let cut = rng.random_range(0..len);
        std::fs::OpenOptions::new()
            .write(true)
            .open(last)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(db.replay_stats().truncated_at.is_some() || cut == 0);
        let found = verify(&db, None);
        // Whatever survived is a prefix of whole batches.
        let all = read_all(&db);
        for i in 0..SERIES {
            let n = all.get(&i).map_or(0, |m| m.len() as u64);
            assert_eq!(
                n, found,
                "series {i}: every batch is one WAL record, so all or nothing"
            );
        }
        if found > 0 {
            verify(&db, Some(found - 1));
        }
        // And the repaired WAL keeps working.
        let mut app = db.appender();
        for i in 0..SERIES {
            app.add(&labels(i), 100 * STEP, value(100, i)).unwrap();
        }
        app.commit().unwrap();
        drop(db);
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(db.replay_stats().truncated_at, None);
        assert_eq!(read_all(&db)[&0].get(&(100 * STEP)), Some(&value(100, 0)));
    }
}

#[test]
fn clean_close_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let db = Db::open(
            dir.path(),
            DbOptions {
                wal_fsync: true,
                ..opts()
            },
        )
        .unwrap();
        for b in 0..80u64 {
            let mut app = db.appender();
            for i in 0..SERIES {
                app.add(&labels(i), b as i64 * STEP, value(b, i)).unwrap();
            }
            app.commit().unwrap();
            if b % 20 == 0 {
                db.cut_blocks(0).unwrap();
            }
        }
        before = read_all(&db);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read_all(&db), before);
    assert_eq!(verify(&db, Some(79)), 80);
}
