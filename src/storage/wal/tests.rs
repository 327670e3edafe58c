use super::*;
use crate::storage::model::Labels;

fn series(r: u64) -> WalRecord {
    WalRecord::Series(vec![RefSeries {
        series_ref: r,
        labels: Labels::from_pairs([
            ("__name__".to_string(), "m".to_string()),
            ("i".to_string(), r.to_string()),
        ]),
    }])
}

fn samples(r: u64, t0: i64, n: i64) -> WalRecord {
    WalRecord::Samples(
        (0..n)
            .map(|i| RefSample {
                series_ref: r,
                t: t0 + i,
                v: (t0 + i) as f64,
            })
            .collect(),
    )
}

fn replay(dir: &Path, opts: WalOptions) -> (Wal, Vec<WalRecord>, ReplayStats) {
    let mut got = Vec::new();
    let (w, stats) = Wal::open(dir, opts, |r| got.push(r)).unwrap();
    (w, got, stats)
}

fn small() -> WalOptions {
    WalOptions {
        segment_size: 64 * 1024,
        fsync: false,
    }
}

#[test]
fn log_and_replay_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    {
        let (w, got, _) = replay(dir.path(), small());
        assert!(got.is_empty());
        for r in 0..50u64 {
            let recs = [series(r), samples(r, 0, 300)];
            w.log(&recs).unwrap();
            want.extend(recs);
        }
        assert!(w.current_segment() > 1, "records should span segments");
    }
    let (w, got, stats) = replay(dir.path(), small());
    assert_eq!(got, want);
    assert_eq!(stats.truncated_at, None);
    // The reopened WAL writes into a fresh segment and keeps working.
    w.log(&[samples(1, 500, 1)]).unwrap();
    drop(w);
    let (_, got, _) = replay(dir.path(), small());
    assert_eq!(got.len(), want.len() + 1);
}

#[test]
fn torn_tail_is_truncated_and_later_writes_replay() {
    let dir = tempfile::tempdir().unwrap();
    let seg;
    {
        let (w, _, _) = replay(dir.path(), WalOptions::default());
        seg = w.current_segment();
        for r in 0..10u64 {
            w.log(&[series(r), samples(r, 0, 100)]).unwrap();
        }
    }
    let path = segment::segment_path(dir.path(), seg);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    {
        let (w, got, stats) = replay(dir.path(), WalOptions::default());
        assert_eq!(got.len(), 19, "all but the torn record");
        assert_eq!(stats.truncated_at.map(|t| t.0), Some(seg));
        w.log(&[samples(9, 100, 1)]).unwrap();
    }
    let (_, got, stats) = replay(dir.path(), WalOptions::default());
    assert_eq!(got.len(), 20);
    assert_eq!(stats.truncated_at, None);
}

#[test]
fn corruption_in_an_old_segment_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (w, _, _) = replay(dir.path(), small());
        for r in 0..60u64 {
            w.log(&[series(r), samples(r, 0, 300)]).unwrap();
        }
    }
    let segs = list_dir(dir.path()).unwrap().segments;
    assert!(segs.len() >= 3);
    let victim = segment::segment_path(dir.path(), segs[1]);
    let mut bytes = fs::read(&victim).unwrap();
    bytes[100] ^= 0x55;
    fs::write(&victim, &bytes).unwrap();
    let (_, got, stats) = replay(dir.path(), small());
    assert_eq!(stats.truncated_at.map(|t| t.0), Some(segs[1]));
    assert!(stats.dropped_segments >= 1);
    assert!(!got.is_empty());
    let left = list_dir(dir.path()).unwrap().segments;
    // segs[0], the truncated segs[1], and the fresh writer segment.
    assert_eq!(left.len(), 3, "{left:?}");
}

#[test]
fn garbage_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 12345u64;
    for len in [1usize, 6, 7, 100, 40_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        let mut bytes = bytes;
        bytes[0] |= 1;
        fs::write(dir.path().join("00000000"), &bytes).unwrap();
        let (w, _, stats) = replay(dir.path(), small());
        assert_eq!(stats.truncated_at, Some((0, 0)), "len {len}");
        drop(w);
        for s in list_dir(dir.path()).unwrap().segments {
            fs::remove_file(segment::segment_path(dir.path(), s)).unwrap();
        }
    }
}

#[test]
fn checkpoint_keeps_live_series_and_recent_samples() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (w, _, _) = replay(dir.path(), small());
        for r in 0..20u64 {
            w.log(&[series(r), samples(r, 0, 100)]).unwrap();
        }
        w.cut_segment().unwrap();
        w.log(&[samples(2, 100, 10)]).unwrap();
        let stats = w.checkpoint(|r| r % 2 == 0, 50).unwrap().unwrap();
        assert_eq!(stats.series_kept, 10);
        assert_eq!(stats.samples_kept, 10 * 50);
        // Nothing before the current segment is left but the checkpoint.
        assert_eq!(w.segments().unwrap(), vec![w.current_segment()]);
        // A second checkpoint condenses the first one plus newer segments.
        w.cut_segment().unwrap();
        let stats = w.checkpoint(|r| r == 2, 95).unwrap().unwrap();
        assert_eq!(stats.series_kept, 1);
        assert_eq!(stats.samples_kept, 5 + 10);
    }
    let (_, got, stats) = replay(dir.path(), small());
    assert!(stats.checkpoint.is_some());
    let n_samples: usize = got
        .iter()
        .map(|r| {
            if let WalRecord::Samples(s) = r {
                s.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(n_samples, 15);
    let cps = list_dir(dir.path()).unwrap().checkpoints;
    assert_eq!(cps.len(), 1);
}

#[test]
fn group_commit_fsync_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (w, _, _) = replay(
            dir.path(),
            WalOptions {
                segment_size: 64 * 1024,
                fsync: true,
            },
        );
        std::thread::scope(|s| {
            for th in 0..4u64 {
                let w = &w;
                s.spawn(move || {
                    for i in 0..25 {
                        w.log(&[samples(th, i * 10, 10)]).unwrap();
                    }
                });
            }
        });
        // Everything written is covered by some fsync.
        let seq = w.write_encoded(&[]).unwrap();
        w.sync_upto(seq).unwrap();
        assert!(*w.synced.lock() >= 100);
    }
    let (_, got, _) = replay(dir.path(), small());
    assert_eq!(got.len(), 100);
}

#[test]
fn corrupt_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (w, _, _) = replay(dir.path(), small());
        for r in 0..5u64 {
            w.log(&[series(r), samples(r, 0, 10)]).unwrap();
        }
        w.cut_segment().unwrap();
        w.checkpoint(|_| true, 0).unwrap().unwrap();
    }
    let cp = list_dir(dir.path()).unwrap().checkpoints.pop().unwrap().1;
    let seg = segment::segment_path(&cp, 0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[20] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let err = Wal::open(dir.path(), small(), |_| {}).err().unwrap();
    assert!(matches!(err, WalError::CorruptCheckpoint { .. }));
    assert!(err.to_string().contains("checkpoint.00000000"), "{err}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever single byte is flipped or wherever the file is cut, opening never fails
        /// and yields a prefix of what was written.
        #[test]
        fn damage_always_leaves_a_prefix(
            sizes in proptest::collection::vec(1i64..400, 1..40),
            pos in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            cut in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut want = Vec::new();
            {
                let (w, _, _) = replay(dir.path(), small());
                for (i, &n) in sizes.iter().enumerate() {
                    let recs = [series(i as u64), samples(i as u64, 0, n)];
                    w.log(&recs).unwrap();
                    want.extend(recs);
                }
            }
            let segs = list_dir(dir.path()).unwrap().segments;
            let files: Vec<_> = segs.iter().map(|&s| segment::segment_path(dir.path(), s))
                .filter(|p| fs::metadata(p).unwrap().len() > 0).collect();
            let total: u64 = files.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
            let mut at = pos.index(total as usize) as u64;
            for f in &files {
                let len = fs::metadata(f).unwrap().len();
                if at < len {
                    if cut {
                        fs::OpenOptions::new().write(true).open(f).unwrap().set_len(at).unwrap();
                    } else {
                        let mut b = fs::read(f).unwrap();
                        b[at as usize] ^= flip;
                        fs::write(f, &b).unwrap();
                    }
                    break;
                }
                at -= len;
            }
            let mut got = Vec::new();
            let (_w, _) = Wal::open(dir.path(), small(), |r| got.push(r)).unwrap();
            prop_assert!(got.len() <= want.len());
            prop_assert_eq!(&got[..], &want[..got.len()]);
        }
    }
}
