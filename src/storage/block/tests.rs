//! Round-trip tests of the block writer and reader: matchers, time pruning, label APIs,
//! tombstones, ordering and validation errors.

use std::sync::Arc;

use super::*;
use crate::storage::chunkenc::{decode_chunk, SeriesIterator, XorAppender};
use crate::storage::model::{EncodedChunk, Labels, MatchOp, Matcher, Queryable, SelectHints};

fn chunk(ts: std::ops::Range<i64>, step: i64, v: f64) -> EncodedChunk {
    let mut a = XorAppender::new();
    let mut t = ts.start;
    while t < ts.end {
        a.append(t, v + t as f64);
        t += step;
    }
    a.to_encoded().unwrap_or_else(|| panic!("empty"))
}

fn series() -> Vec<(Labels, Vec<EncodedChunk>)> {
    let mut v = vec![
        (
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a")]),
            vec![chunk(0..1000, 10, 1.0), chunk(1000..2000, 10, 2.0)],
        ),
        (
            Labels::from_pairs([("__name__", "up"), ("job", "db"), ("instance", "b")]),
            vec![chunk(0..500, 10, 3.0)],
        ),
        (
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "c\n\"x")]),
            vec![chunk(1500..2000, 10, 4.0)],
        ),
        (
            Labels::from_pairs([("__name__", "other"), ("zone", "eu")]),
            vec![chunk(0..2000, 100, 5.0)],
        ),
    ];
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn write(dir: &std::path::Path) -> BlockMeta {
    let data = series();
    let symbols = data.iter().flat_map(|(l, _)| {
        l.iter()
            .flat_map(|x| [x.name.to_string(), x.value.to_string()])
            .collect::<Vec<_>>()
    });
    let mut w = BlockWriter::create(dir, symbols.collect::<Vec<_>>()).unwrap();
    for (l, c) in &data {
        w.add_series(l, c).unwrap();
    }
    w.finish(BlockMeta::new(ulid::Ulid::new(), 0, 2000))
        .unwrap()
}

fn names(ss: &[crate::storage::model::Series]) -> Vec<String> {
    ss.iter().map(|s| s.labels.to_string()).collect()
}

#[test]
fn roundtrip_select_and_label_apis() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path());
    assert_eq!((meta.stats.num_series, meta.stats.num_chunks), (4, 5));
    assert_eq!(meta.stats.num_samples, 100 + 100 + 50 + 50 + 20);
    assert_eq!(meta.compaction.sources, vec![meta.ulid]);
    let bdir = dir.path().join(meta.ulid.to_string());
    assert!(!dir
        .path()
        .join(format!("{}{TMP_SUFFIX}", meta.ulid))
        .exists());
    assert_eq!(std::fs::read(bdir.join("tombstones")).unwrap().len(), 9);
    let b = BlockReader::open(&bdir).unwrap();
    assert_eq!(b.meta(), &meta);
    let h = SelectHints::default();
    let all = b.select(&[], i64::MIN, i64::MAX, &h).unwrap();
    assert_eq!(all.len(), 4);
    let want = series();
    for (got, (l, c)) in all.iter().zip(want.iter()) {
        assert_eq!(&got.labels, l);
        assert_eq!(&got.chunks, c);
    }
    let api = b
        .select(&[Matcher::equal("job", "api")], i64::MIN, i64::MAX, &h)
        .unwrap();
    assert_eq!(api.len(), 2);
    let re = Matcher::new(MatchOp::RegexMatch, "instance", "a|b").unwrap();
    assert_eq!(b.select(&[re], i64::MIN, i64::MAX, &h).unwrap().len(), 2);
    let ne = Matcher::new(MatchOp::NotEqual, "job", "api").unwrap();
    assert_eq!(
        names(&b.select(&[ne], i64::MIN, i64::MAX, &h).unwrap()),
        vec![
            "{__name__=\"other\", zone=\"eu\"}".to_string(),
            "{__name__=\"up\", instance=\"b\", job=\"db\"}".to_string()
        ]
    );
    let empty_job = Matcher::equal("job", "");
    assert_eq!(
        b.select(&[empty_job], i64::MIN, i64::MAX, &h)
            .unwrap()
            .len(),
        1
    );
    let nre = Matcher::new(MatchOp::RegexNoMatch, "instance", "a|").unwrap();
    assert_eq!(
        b.select(
            &[Matcher::equal("__name__", "up"), nre],
            i64::MIN,
            i64::MAX,
            &h
        )
        .unwrap()
        .len(),
        2
    );
    // Time pruning: only chunks overlapping [1200, 1400].
    let pruned = b
        .select(&[Matcher::equal("__name__", "up")], 1200, 1400, &h)
        .unwrap();
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].chunks.len(), 1);
    assert!(b.select(&[], 5000, 6000, &h).unwrap().is_empty());
    let lo = b
        .select(
            &[],
            0,
            10,
            &SelectHints {
                labels_only: true,
                limit: 0,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(lo.iter().all(|s| s.chunks.is_empty()));
    assert!(b
        .select(
            &[],
            i64::MIN,
            i64::MAX,
            &SelectHints {
                labels_only: false,
                limit: 2,
                ..Default::default()
            }
        )
        .is_err());
    assert_eq!(
        b.label_names(&[], 0, 10).unwrap(),
        vec!["__name__", "instance", "job", "zone"]
    );
    assert_eq!(
        b.label_names(&[Matcher::equal("__name__", "other")], 0, 10)
            .unwrap(),
        vec!["__name__", "zone"]
    );
    assert_eq!(
        b.label_values("job", &[], 0, 10).unwrap(),
        vec!["api", "db"]
    );
    assert_eq!(
        b.label_values("instance", &[Matcher::equal("job", "api")], 0, 10)
            .unwrap(),
        vec!["a", "c\n\"x"]
    );
}

#[test]
fn tombstones_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path());
    let bdir = dir.path().join(meta.ulid.to_string());
    let b = BlockReader::open(&bdir).unwrap();
    let id = b.series_refs(&[Matcher::equal("zone", "eu")]).unwrap()[0];
    drop(b);
    let mut t = Tombstones::default();
    t.add(
        id as u64,
        Interval {
            mint: 100,
            maxt: 1050,
        },
    );
    t.write(&bdir).unwrap();
    let b = BlockReader::open(&bdir).unwrap();
    let s = b
        .select(
            &[Matcher::equal("zone", "eu")],
            i64::MIN,
            i64::MAX,
            &SelectHints::default(),
        )
        .unwrap();
    let samples = decode_chunk(&s[0].chunks[0]).unwrap();
    let ts: Vec<i64> = samples.iter().map(|x| x.t).collect();
    assert_eq!(ts.len(), 20 - 10);
    assert!(ts.iter().all(|&x| !(100..=1050).contains(&x)));
}

#[test]
fn writer_rejects_bad_input_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::create(
        dir.path(),
        ["a".to_string(), "b".to_string(), "c".to_string()],
    )
    .unwrap();
    let tmp = dir.path().join(format!("{}{TMP_SUFFIX}", w.ulid()));
    assert!(tmp.exists());
    w.add_series(&Labels::from_pairs([("a", "b")]), &[chunk(0..10, 1, 0.0)])
        .unwrap();
    assert!(w
        .add_series(&Labels::from_pairs([("a", "a")]), &[chunk(0..10, 1, 0.0)])
        .is_err());
    assert!(w
        .add_series(&Labels::from_pairs([("a", "zzz")]), &[chunk(0..10, 1, 0.0)])
        .is_err());
    assert!(w
        .add_series(
            &Labels::from_pairs([("b", "c")]),
            &[chunk(0..10, 1, 0.0), chunk(5..10, 1, 0.0)]
        )
        .is_err());
    let bad = EncodedChunk {
        min_time: 0,
        max_time: 1,
        encoding: 9,
        data: Arc::from(&[0u8, 1][..]),
    };
    assert!(w
        .add_series(&Labels::from_pairs([("b", "c")]), &[bad])
        .is_err());
    drop(w);
    assert!(!tmp.exists());
}

#[test]
fn segments_are_cut_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let opts = BlockWriterOptions {
        ulid: None,
        max_segment_size: 300,
    };
    let names: Vec<String> = (0..50)
        .map(|i| format!("s{i:03}"))
        .chain(["n".to_string()])
        .collect();
    let mut w = BlockWriter::create_with(dir.path(), names.clone(), opts).unwrap();
    for n in &names[..50] {
        w.add_series(
            &Labels::from_pairs([("n", n.as_str())]),
            &[chunk(0..100, 7, 1.5)],
        )
        .unwrap();
    }
    let meta = w.finish(BlockMeta::new(ulid::Ulid::nil(), 0, 100)).unwrap();
    let b = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    assert!(b.chunk_reader().num_segments() > 5);
    let all = b.select(&[], 0, 100, &SelectHints::default()).unwrap();
    assert_eq!(all.len(), 50);
    for s in all {
        let mut it = SeriesIterator::new(s.chunks);
        let mut n = 0;
        while it.next().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 15);
    }
}

#[test]
fn large_selections_are_read_in_parallel_in_order_and_limited() {
    // Well above PARALLEL_SELECT_MIN_SERIES, so the select is split over the rayon pool.
    let n = 3 * super::reader::PARALLEL_SELECT_MIN_SERIES + 17;
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<String> = (0..n).map(|i| format!("i{i:05}")).collect();
    let symbols: Vec<String> = values
        .iter()
        .cloned()
        .chain(["__name__", "m", "instance", "parity", "even", "odd"].map(String::from))
        .collect();
    let mut w = BlockWriter::create(dir.path(), symbols).unwrap();
    for (i, v) in values.iter().enumerate() {
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        let labels = Labels::from_pairs([
            ("__name__", "m"),
            ("instance", v.as_str()),
            ("parity", parity),
        ]);
        // Odd series end early, so a later window leaves them out.
        let end = if i % 2 == 0 { 2000 } else { 900 };
        w.add_series(&labels, &[chunk(0..end, 100, i as f64)])
            .unwrap();
    }
    let meta = w
        .finish(BlockMeta::new(ulid::Ulid::new(), 0, 2000))
        .unwrap();
    let b = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    let m = [Matcher::equal("__name__", "m")];

    let all = b.select(&m, 0, 2000, &SelectHints::default()).unwrap();
    assert_eq!(all.len(), n);
    assert!(all.windows(2).all(|w| w[0].labels < w[1].labels));
    assert_eq!(
        all[n - 1].labels.get("instance"),
        Some(values[n - 1].as_str())
    );

    let late = b.select(&m, 1000, 2000, &SelectHints::default()).unwrap();
    assert_eq!(late.len(), n.div_ceil(2));
    assert!(late.iter().all(|s| s.labels.get("parity") == Some("even")));

    let odd = [
        Matcher::equal("__name__", "m"),
        Matcher::new(MatchOp::RegexMatch, "parity", "o.*").unwrap(),
    ];
    assert_eq!(
        b.select(&odd, 0, 2000, &SelectHints::default())
            .unwrap()
            .len(),
        n / 2
    );

    let limited = |limit| SelectHints {
        limit,
        ..SelectHints::default()
    };
    assert_eq!(b.select(&m, 0, 2000, &limited(n)).unwrap().len(), n);
    let err = b.select(&m, 0, 2000, &limited(n - 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("more than {} series", n - 1)),
        "{err}"
    );
}

#[test]
fn thanos_index_stats_are_recorded_on_blocks_with_a_thanos_section() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = series();
    // A series of four chunks, so that two of its chunk distances are measured.
    data[0].1 = vec![
        chunk(0..500, 10, 1.0),
        chunk(500..1000, 10, 1.0),
        chunk(1000..1990, 10, 1.0),
        chunk(1990..2000, 10, 1.0),
    ];
    let symbols: Vec<String> = data
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|x| [x.name.to_string(), x.value.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = BlockWriter::create(tmp.path(), symbols).unwrap();
    for (l, c) in &data {
        w.add_series(l, c).unwrap();
    }
    let mut meta = BlockMeta::new(ulid::Ulid::new(), 0, 2000);
    meta.thanos = Some(ThanosMeta::new(Default::default(), 0, "compactor"));
    let meta = w.finish(meta).unwrap();
    let stats = meta.thanos.as_ref().unwrap().index_stats.unwrap();

    // Independently: distances between consecutive series entries (ids are offsets / 16),
    // and chunk sizes from the chunk file's own framing (length varint, encoding, data, CRC).
    let block = BlockReader::open(&tmp.path().join(meta.ulid.to_string())).unwrap();
    let ids = block.series_refs(&[]).unwrap();
    let want_series = ids
        .windows(2)
        .map(|w| (w[1] - w[0]) as i64 * 16)
        .max()
        .unwrap();
    assert_eq!(stats.series_max_size, want_series);
    let framed = |c: &EncodedChunk| {
        let n = c.data.len();
        let varint = if n < 128 { 1 } else { 2 };
        (varint + 1 + n + 4) as i64
    };
    let want_chunk = data[0].1[..2].iter().map(framed).max().unwrap();
    assert_eq!(stats.chunk_max_size, want_chunk);
    let json = String::from_utf8(meta.to_json().unwrap()).unwrap();
    assert!(json.contains("\"index_stats\": {"), "{json}");

    // A plain Prometheus block (no thanos section) stays as Prometheus writes it.
    let plain = write(&tmp.path().join("plain"));
    assert!(plain.thanos.is_none());
}
