//! Corrupt and truncated block files must produce errors naming the file, never panics:
//! a proptest flips and truncates bytes of the index and chunk segment of a real block and
//! runs open, select (with samples decoded), label APIs and dump over the result.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use strata::storage::block::{BlockMeta, BlockReader, BlockWriter};
use strata::storage::chunkenc::{SeriesIterator, XorAppender};
use strata::storage::model::{Labels, MatchOp, Matcher, Queryable, SelectHints};
use strata::storage::tools::dump;

/// Builds one template block (kept for the whole test run) and returns its directory.
fn template() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let mut series: Vec<Labels> = (0..12)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", if i % 2 == 0 { "a" } else { "b" }),
                    ("i", &format!("{i}")),
                    ("job", "j"),
                ])
            })
            .collect();
        series.sort();
        let symbols: Vec<String> = series
            .iter()
            .flat_map(|l| {
                l.iter()
                    .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut w = BlockWriter::create(tmp.path(), symbols).unwrap();
        for (n, l) in series.iter().enumerate() {
            let mut chunks = Vec::new();
            for c in 0..3i64 {
                let mut a = XorAppender::new();
                for i in 0..40i64 {
                    a.append(
                        c * 100_000 + i * 1000 + n as i64,
                        (i * n as i64) as f64 * 0.5,
                    );
                }
                chunks.extend(a.to_encoded());
            }
            w.add_series(l, &chunks).unwrap();
        }
        let ulid = w.ulid();
        let meta = w.finish(BlockMeta::new(ulid, 0, 300_000)).unwrap();
        let dir = tmp.path().join(meta.ulid.to_string());
        (tmp, dir)
    })
    .1
}

fn copy_block(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("chunks")).unwrap();
    for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// Exercises every read path; returns the first error's text.
fn read_everything(dir: &Path) -> Result<usize, String> {
    let b = BlockReader::open(dir).map_err(|e| e.to_string())?;
    let re = Matcher::new(MatchOp::RegexMatch, "i", "1.*").unwrap();
    let mut n = 0;
    for ms in [
        vec![],
        vec![Matcher::equal("__name__", "a")],
        vec![re, Matcher::new(MatchOp::NotEqual, "job", "x").unwrap()],
    ] {
        let ss = b
            .select(&ms, i64::MIN, i64::MAX, &SelectHints::default())
            .map_err(|e| e.to_string())?;
        for s in ss {
            let mut it = SeriesIterator::new(s.chunks);
            while it.next().map_err(|e| e.to_string())?.is_some() {
                n += 1;
            }
        }
        b.label_names(&ms, i64::MIN, i64::MAX)
            .map_err(|e| e.to_string())?;
        b.label_values("i", &ms, i64::MIN, i64::MAX)
            .map_err(|e| e.to_string())?;
    }
    let parent = dir.parent().unwrap_or(dir);
    dump(parent, i64::MIN, i64::MAX, &[], &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(n)
}

#[test]
fn template_reads_cleanly() {
    // All 12 series, the 6 named "a", and i in {1, 10, 11}; 120 samples each.
    assert_eq!(read_everything(template()).unwrap(), (12 + 6 + 3) * 120);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupt_files_error_without_panic(
        in_index in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        truncate in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(template().file_name().unwrap());
        copy_block(template(), &dir);
        let (file, name) = if in_index { (dir.join("index"), "index") } else { (dir.join("chunks/000001"), "chunks") };
        let mut bytes = fs::read(&file).unwrap();
        for (pos, x) in &flips {
            let i = pos.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(cut) = truncate {
            let c = cut.index(bytes.len());
            bytes.truncate(c);
        }
        let changed = !flips.is_empty() || truncate.is_some();
        fs::write(&file, &bytes).unwrap();
        match read_everything(&dir) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(changed, "unmodified block failed: {}", e);
                prop_assert!(e.contains(name), "error does not name the {} file: {}", name, e);
            }
        }
    }
}
