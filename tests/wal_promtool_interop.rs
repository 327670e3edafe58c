//! WAL compatibility with Prometheus 2.42, using `promtool` as the oracle (skipped when it is
//! not installed): promtool's `tsdb dump` reads a Db we wrote (blocks, WAL checkpoint and
//! segments), and we replay a WAL written by promtool's own TSDB (`tsdb bench write`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use strata::storage::chunkenc::SeriesIterator;
use strata::storage::db::{Db, DbOptions};
use strata::storage::model::{Labels, Queryable, SelectHints};

fn promtool() -> Option<&'static str> {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("promtool not installed: skipping");
    }
    ok.then_some("promtool")
}

fn read_all(db: &Db) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in db
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let mut it = SeriesIterator::new(s.chunks);
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v));
        }
        out.insert(s.labels.to_string(), v);
    }
    out
}

#[test]
fn promtool_dumps_what_we_wrote() {
    let Some(pt) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let want;
    {
        let db = Db::open(
            dir.path(),
            DbOptions {
                wal_segment_size: 64 * 1024,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let mut t = 1_700_000_000_000i64;
        for step in 0..400 {
            let mut app = db.appender();
            for i in 0..4 {
                let l = Labels::from_pairs([
                    ("__name__", "interop"),
                    ("i", &i.to_string()),
                    ("q", "a\"b\\c"),
                ]);
                app.add(&l, t, step as f64 * 1.5 - i as f64).unwrap();
            }
            app.commit().unwrap();
            // Blocks and a checkpoint appear along the way.
            db.cut_blocks(t).unwrap();
            t += 60_000 + (step % 7) as i64;
        }
        assert!(!db.list_blocks().is_empty());
        want = read_all(&db);
        db.close().unwrap();
    }
    let out = Command::new(pt)
        .args(["tsdb", "dump"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // `{labels} value ts`; labels may contain spaces, so split from the right.
        let (rest, ts) = line.rsplit_once(' ').unwrap();
        let (labels, v) = rest.rsplit_once(' ').unwrap();
        got.entry(labels.to_string())
            .or_default()
            .push((ts.parse().unwrap(), v.parse().unwrap()));
    }
    assert_eq!(got.len(), 4);
    assert_eq!(got, want);
}

#[test]
fn we_replay_a_wal_written_by_prometheus() {
    let Some(pt) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("series.json");
    let lines: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "{{\"__name__\":\"pm_{}\",\"instance\":\"h{}\",\"id\":\"{i}\"}}",
                i % 7,
                i % 13
            )
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out_dir = dir.path().join("out");
    let st = Command::new(pt)
        .args(["tsdb", "bench", "write", "--metrics=100", "--scrapes=50"])
        .arg(format!("--out={}", out_dir.display()))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let storage = out_dir.join("storage");
    assert!(Path::new(&storage.join("wal")).exists());
    let db = Db::open(&storage, DbOptions::default()).unwrap();
    assert_eq!(db.replay_stats().truncated_at, None);
    let all = read_all(&db);
    assert_eq!(all.len(), 100);
    for samples in all.values() {
        // promtool's shape: t = 30s·k, value 123456789 + 1000·k; it ingests whole rounds of
        // 100 scrapes, so --scrapes=50 gives k = 1..=100.
        let want: Vec<(i64, f64)> = (1..=100)
            .map(|k| (30_000 * k, 123_456_789.0 + 1000.0 * k as f64))
            .collect();
        assert_eq!(samples, &want);
    }
}
