//! Compaction end to end: overlapping and adjacent blocks are merged into one block whose
//! samples are the de-duplicated union, with chunks re-cut at 120 samples where data was
//! merged, and whose meta has level max+1, the sorted union of sources and the parents.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use strata::storage::block::{list_blocks, BlockMeta, BlockReader, BlockWriter};
use strata::storage::chunkenc::{decode_chunk, SeriesIterator, XorAppender};
use strata::storage::compact::{compact_blocks, SAMPLES_PER_CHUNK};
use strata::storage::model::{EncodedChunk, Labels, Queryable, SelectHints};

fn chunks(samples: &[(i64, f64)], per: usize) -> Vec<EncodedChunk> {
    samples
        .chunks(per)
        .filter_map(|p| {
            let mut a = XorAppender::new();
            for &(t, v) in p {
                a.append(t, v);
            }
            a.to_encoded()
        })
        .collect()
}

fn block(parent: &Path, data: &[(Labels, Vec<(i64, f64)>)]) -> PathBuf {
    let symbols: Vec<String> = data
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = BlockWriter::create(parent, symbols).unwrap();
    let mut mint = i64::MAX;
    let mut maxt = i64::MIN;
    for (l, s) in data {
        mint = mint.min(s[0].0);
        maxt = maxt.max(s[s.len() - 1].0);
        w.add_series(l, &chunks(s, 100)).unwrap();
    }
    let ulid = w.ulid();
    let meta = w.finish(BlockMeta::new(ulid, mint, maxt + 1)).unwrap();
    parent.join(meta.ulid.to_string())
}

fn samples_of(b: &BlockReader) -> Vec<(String, Vec<(i64, u64)>)> {
    let mut out = Vec::new();
    for s in b
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let mut it = SeriesIterator::new(s.chunks);
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v.to_bits()));
        }
        out.push((s.labels.to_string(), v));
    }
    out
}

#[test]
fn merges_overlapping_blocks_and_builds_meta() {
    let src = tempfile::tempdir().unwrap();
    let a = Labels::from_pairs([("__name__", "m"), ("s", "a")]);
    let b = Labels::from_pairs([("__name__", "m"), ("s", "b")]);
    let c = Labels::from_pairs([("__name__", "m"), ("s", "c")]);
    let first: Vec<(i64, f64)> = (0..300).map(|i| (i * 10, i as f64)).collect();
    // Overlaps `first` on 2000..3000 with identical samples, then continues.
    let second: Vec<(i64, f64)> = (200..500).map(|i| (i * 10, i as f64)).collect();
    let d1 = block(
        src.path(),
        &[(a.clone(), first.clone()), (b.clone(), first.clone())],
    );
    let d2 = block(
        src.path(),
        &[(a.clone(), second.clone()), (c.clone(), second.clone())],
    );
    let out = tempfile::tempdir().unwrap();
    let meta = compact_blocks(&[d2.clone(), d1.clone()], out.path())
        .unwrap()
        .unwrap();
    let m1 = BlockMeta::read(&d1).unwrap();
    let m2 = BlockMeta::read(&d2).unwrap();
    assert_eq!(meta.compaction.level, 2);
    let mut sources = vec![m1.ulid, m2.ulid];
    sources.sort();
    assert_eq!(meta.compaction.sources, sources);
    assert_eq!(meta.compaction.parents.len(), 2);
    assert_eq!((meta.min_time, meta.max_time), (0, 4991));
    assert_eq!(meta.stats.num_series, 3);
    assert_eq!(meta.stats.num_samples, 500 + 300 + 300);

    let r = BlockReader::open(&out.path().join(meta.ulid.to_string())).unwrap();
    let got = samples_of(&r);
    let want_a: Vec<(i64, u64)> = (0..500).map(|i| (i * 10, (i as f64).to_bits())).collect();
    assert_eq!(got[0], (a.to_string(), want_a));
    assert_eq!(got[1].1.len(), 300);
    assert_eq!(got[2].1.len(), 300);
    // Merged series are re-cut at 120 samples; untouched series keep their chunks.
    let series = r
        .select(&[], i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap();
    let counts: Vec<usize> = series[0]
        .chunks
        .iter()
        .map(|ch| decode_chunk(ch).unwrap().len())
        .collect();
    assert_eq!(counts, vec![120, 120, 120, 120, 20]);
    assert!(counts.iter().all(|&n| n <= SAMPLES_PER_CHUNK));
    assert_eq!(series[1].chunks.len(), 3);

    // Compacting the compacted block with a newer one goes to level 3 and keeps all sources.
    let d3 = block(src.path(), &[(a.clone(), vec![(10_000, 1.0)])]);
    let again = compact_blocks(
        &[out.path().join(meta.ulid.to_string()), d3.clone()],
        out.path(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(again.compaction.level, 3);
    assert_eq!(again.compaction.sources.len(), 3);
    assert_eq!(list_blocks(out.path()).unwrap().len(), 2);
}
