//! Downsampling a block on disk: round trip through the block reader, the meta.json Thanos
//! expects, 5m → 1h, empty series, and a bad input named with its reason.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::storage::compactor::merge::tests::{samples, series, write_block, HOUR_MS, MIN_MS};
use crate::storage::downsample::{AggrChunk, AggrType, DownsampledChunk, RES_1H, RES_5M, RES_RAW};
use crate::storage::model::{Labels, Sample};

const DAY_MS: i64 = 24 * HOUR_MS;
/// 2023-11-14T22:13:20Z rounded down to a day, so windows align.
const T0: i64 = 1_699_920_000_000;

fn dir_of(parent: &Path, m: &BlockMeta) -> PathBuf {
    parent.join(m.ulid.to_string())
}

/// Every series of a block as labels -> chunks, read through `BlockReader`.
fn read_chunks(dir: &Path) -> BTreeMap<Labels, Vec<EncodedChunk>> {
    let r = BlockReader::open(dir).unwrap();
    let mut out = BTreeMap::new();
    for id in r.series_refs(&[]).unwrap() {
        if let Some(s) = r.load_series(id, i64::MIN, i64::MAX, false).unwrap() {
            out.insert(s.labels, s.chunks);
        }
    }
    out
}

fn raw_block(parent: &Path, data: &[(Labels, Vec<Sample>)], span: i64) -> BlockMeta {
    write_block(parent, T0, T0 + span, &[("cluster", "eu")], data)
}

/// Downsamples the block `input` (under `src`) into a new directory `name` of `parent`;
/// returns that directory and the new block's meta.
fn downsample_into(
    src: &Path,
    input: &BlockMeta,
    parent: &Path,
    name: &str,
    resolution: i64,
) -> (PathBuf, BlockMeta) {
    let out = parent.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let meta = downsample_block(
        &dir_of(src, input),
        input.ulid,
        &out,
        resolution,
        &mut |_, _| {},
    )
    .unwrap();
    (out, meta)
}

#[test]
fn round_trip_through_the_block_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let span = 2 * DAY_MS;
    let data: Vec<(Labels, Vec<Sample>)> = (0..3)
        .map(|i| {
            (
                series(i),
                samples(i, T0, T0 + span, 15_000, |t| t % (7 * MIN_MS) == 0),
            )
        })
        .collect();
    let input = raw_block(tmp.path(), &data, span);
    let (out, meta) = downsample_into(tmp.path(), &input, tmp.path(), "out", RES_5M);
    let got = read_chunks(&dir_of(&out, &meta));
    let raw = read_chunks(&dir_of(tmp.path(), &input));
    assert_eq!(got.len(), 3);
    let mut windows = 0u64;
    let mut chunks = 0u64;
    for (labels, raw_chunks) in &raw {
        let want = downsample_series(raw_chunks, RES_RAW, RES_5M).unwrap();
        let have = &got[labels];
        assert_eq!(have.len(), want.len(), "{labels}");
        for (h, w) in have.iter().zip(&want) {
            assert_eq!(h.encoding, 0xff);
            // The index's chunk meta carries the chunk's window stamps.
            assert_eq!((h.min_time, h.max_time), (w.min_time, w.max_time));
            let back = DownsampledChunk::from_encoded(h).unwrap();
            assert_eq!(&back, w);
            let bytes = AggrChunk::from_bytes(h.data.clone());
            for a in AggrType::ALL {
                assert_eq!(
                    bytes.samples(a).unwrap(),
                    w.chunk.samples(a).unwrap(),
                    "{a}"
                );
            }
            windows += back.num_samples() as u64;
            chunks += 1;
        }
    }
    // 2d of 5m windows per series: 576 (a window's stamp may move to its last raw sample,
    // never out of the block).
    assert_eq!(windows, 3 * 576);
    assert_eq!(meta.stats.num_samples, windows);
    assert_eq!(meta.stats.num_chunks, chunks);
    assert_eq!(meta.stats.num_series, 3);
    // The output is a valid block for the reader's own checks, too.
    assert_eq!(BlockMeta::read(&dir_of(&out, &meta)).unwrap(), meta);
}

/// Thanos's `chunk_max_size` of a block, measured here from the index as
/// `GatherIndexHealthStats` does: reference to next reference, a series' last two chunks
/// left out.
fn chunk_max_size(dir: &std::path::Path) -> i64 {
    let block = crate::storage::block::BlockReader::open(dir).unwrap();
    let mut max = 0;
    for r in block.series_refs(&[]).unwrap() {
        let entry = block.index().series(r).unwrap();
        let refs: Vec<u64> = entry.chunks.iter().map(|c| c.reference).collect();
        for i in 0..refs.len().saturating_sub(2) {
            max = max.max((refs[i + 1] - refs[i]) as i64);
        }
    }
    assert!(max > 0, "the block has a series of three chunks or more");
    max
}

#[test]
fn meta_json_is_what_thanos_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let span = 2 * DAY_MS;
    let data = vec![(series(0), samples(0, T0, T0 + span, 60_000, |_| false))];
    let mut input = raw_block(tmp.path(), &data, span);
    // Pretend the input was compacted from two sources, with a parent list.
    let (s1, s2) = (Ulid::from_parts(1, 1), Ulid::from_parts(2, 2));
    input.compaction.level = 3;
    input.compaction.sources = vec![s1, s2];
    input.compaction.parents = vec![crate::storage::block::BlockDesc {
        ulid: s1,
        min_time: T0,
        max_time: T0 + DAY_MS,
    }];
    let files = ThanosMeta::gather_files(&dir_of(tmp.path(), &input)).unwrap();
    if let Some(t) = input.thanos.as_mut() {
        t.upload_time = Some("2023-11-16T00:00:00Z".into());
        t.files = files;
    }
    input.write(&dir_of(tmp.path(), &input)).unwrap();
    let (out, meta) = downsample_into(tmp.path(), &input, tmp.path(), "out", RES_5M);
    let text = std::fs::read_to_string(dir_of(&out, &meta).join("meta.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = serde_json::json!({
        "ulid": meta.ulid.to_string(),
        "minTime": T0,
        "maxTime": T0 + span,
        "stats": {"numSamples": 576, "numSeries": 1, "numChunks": 5},
        "compaction": {
            "level": 3,
            "sources": [s1.to_string(), s2.to_string()],
            "parents": [{"ulid": s1.to_string(), "minTime": T0, "maxTime": T0 + DAY_MS}],
        },
        "version": 1,
        "thanos": {
            "version": 1,
            "labels": {"cluster": "eu"},
            "downsample": {"resolution": 300000},
            "source": "compactor",
            "index_stats": {"chunk_max_size": chunk_max_size(&dir_of(&out, &meta))},
        },
    });
    assert_eq!(json, expected, "{text}");
    assert_ne!(meta.ulid, input.ulid);
    // Tab-indented like Go's MarshalIndent.
    assert!(text.contains("\n\t\"thanos\": {"), "{text}");
}

#[test]
fn five_minutes_to_one_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let span = 10 * DAY_MS;
    let data = vec![
        (series(0), samples(0, T0, T0 + span, 60_000, |_| false)),
        (
            series(1),
            samples(1, T0, T0 + span, 60_000, |t| t < T0 + DAY_MS),
        ),
    ];
    let raw = raw_block(tmp.path(), &data, span);
    let (five_dir, five) = downsample_into(tmp.path(), &raw, tmp.path(), "5m", RES_5M);
    let (hour_dir, hour) = downsample_into(&five_dir, &five, tmp.path(), "1h", RES_1H);
    assert_eq!(
        hour.thanos.as_ref().map(|t| t.downsample.resolution),
        Some(RES_1H)
    );
    assert_eq!(hour.compaction.sources, raw.compaction.sources);
    let five_chunks = read_chunks(&dir_of(&five_dir, &five));
    let got = read_chunks(&dir_of(&hour_dir, &hour));
    assert_eq!(got.len(), 2);
    for (labels, chunks) in &five_chunks {
        let want: Vec<EncodedChunk> = downsample_series(chunks, RES_5M, RES_1H)
            .unwrap()
            .iter()
            .map(|c| c.to_encoded())
            .collect();
        assert_eq!(got[labels], want, "{labels}");
        // Every raw sample is counted once in the 1h count aggregate.
        let count: f64 = got[labels]
            .iter()
            .flat_map(|c| {
                DownsampledChunk::from_encoded(c)
                    .unwrap()
                    .chunk
                    .samples(AggrType::Count)
                    .unwrap()
            })
            .map(|s| s.v)
            .sum();
        let raw_n = data.iter().find(|(l, _)| l == labels).unwrap().1.len();
        assert_eq!(count as usize, raw_n, "{labels}");
    }
}

#[test]
fn series_left_empty_are_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let span = 2 * DAY_MS;
    let nan: Vec<Sample> = (0..100)
        .map(|i| Sample {
            t: T0 + i * 60_000,
            v: f64::NAN,
        })
        .collect();
    let data = vec![
        (series(0), nan),
        (series(1), samples(1, T0, T0 + span, 60_000, |_| false)),
    ];
    let input = raw_block(tmp.path(), &data, span);
    let (out, meta) = downsample_into(tmp.path(), &input, tmp.path(), "out", RES_5M);
    assert_eq!(meta.stats.num_series, 1);
    assert_eq!(read_chunks(&dir_of(&out, &meta)).len(), 1);
}

#[test]
fn a_broken_input_is_named_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let span = 2 * DAY_MS;
    let data = vec![(series(0), samples(0, T0, T0 + span, 60_000, |_| false))];
    let input = raw_block(tmp.path(), &data, span);
    let dir = dir_of(tmp.path(), &input);
    // Flip a byte in the middle of the chunk segment: the chunk checksum fails.
    let seg = dir.join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let err = downsample_block(&dir, input.ulid, &out, RES_5M, &mut |_, _| {}).unwrap_err();
    match err {
        DownsampleBlockError::Input { block, reason, .. } => {
            assert_eq!(block, input.ulid);
            assert_eq!(reason, REASON_CORRUPT);
        }
        other => panic!("expected an input error, got {other}"),
    }
    // Nothing is left behind in the output directory.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
