//! Unit tests of the XOR encoder, decoder and series iterator.

use super::*;
use crate::storage::model::stale_nan;

fn enc(samples: &[(i64, f64)]) -> XorAppender {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a
}

#[test]
fn single_sample_has_2_42_trailing_zero() {
    let a = enc(&[(1_700_000_000_000, 1.0)]);
    // 2 header + 6 varint + 8 value + the trailing zero byte 2.42 leaves behind.
    assert_eq!(a.bytes().len(), 17);
    assert_eq!(a.bytes()[..2], [0, 1]);
    assert_eq!(*a.bytes().last().unwrap_or(&1), 0);
    assert_eq!(
        decode_all(a.bytes()).unwrap(),
        vec![Sample {
            t: 1_700_000_000_000,
            v: 1.0
        }]
    );
}

#[test]
fn known_bytes_for_simple_series() {
    // Hand-derived: t0=1000 zigzag 2000 = d0 0f; v0=1.0; t1 delta 15 = 0f; v1 equal -> bit 0;
    // t2 dod 0 -> bit 0; v2 equal -> bit 0.
    let a = enc(&[(1000, 1.0), (1015, 1.0), (1030, 1.0)]);
    let want = [0u8, 3, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x0f, 0x00];
    assert_eq!(a.bytes(), &want);
}

#[test]
fn roundtrip_special_values_and_dod_buckets() {
    let ts = [
        -5_000_000_000_000i64,
        -1,
        0,
        1,
        8193,
        16_390,
        90_000,
        700_000,
        10_000_000,
        i64::MAX / 4,
    ];
    let vals = [
        0.0,
        -0.0,
        f64::NAN,
        stale_nan(),
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        5e-324,
        1.5,
        1.5,
    ];
    let samples: Vec<(i64, f64)> = ts.iter().copied().zip(vals.iter().copied()).collect();
    let a = enc(&samples);
    let got = decode_all(a.bytes()).unwrap();
    assert_eq!(got.len(), samples.len());
    for (g, w) in got.iter().zip(samples.iter()) {
        assert_eq!(g.t, w.0);
        assert_eq!(g.v.to_bits(), w.1.to_bits());
    }
}

#[test]
fn dod_bucket_edges() {
    for dod in [
        8192i64, -8191, 8193, -8192, 65536, -65535, 65537, -65536, 524288, -524287, 524289, -524288,
    ] {
        let base = 1_000_000i64;
        let samples = [
            (0, 1.0),
            (base, 2.0),
            (2 * base + dod, 3.0),
            (3 * base + dod, 4.0),
        ];
        let got = decode_all(enc(&samples).bytes()).unwrap();
        let ts: Vec<i64> = got.iter().map(|s| s.t).collect();
        assert_eq!(
            ts,
            vec![0, base, 2 * base + dod, 3 * base + dod],
            "dod {dod}"
        );
    }
}

#[test]
fn from_bytes_continues_identically() {
    let all: Vec<(i64, f64)> = (0..50)
        .map(|i| (i * 15_000 + (i % 3), (i as f64).sqrt()))
        .collect();
    for split in [0usize, 1, 2, 3, 17, 49] {
        let first = enc(&all[..split]);
        let mut re = XorAppender::from_bytes(first.bytes()).unwrap();
        for &(t, v) in &all[split..] {
            re.append(t, v);
        }
        assert_eq!(re.bytes(), enc(&all).bytes(), "split {split}");
    }
}

#[test]
fn declared_samples_reads_the_header_only() {
    let a = enc(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
    let chunk = a.to_encoded().unwrap();
    assert_eq!(declared_samples(&chunk), 3);
    // The header alone decides, even when the body is cut off.
    let cut = EncodedChunk {
        data: Arc::from(&a.bytes()[..2]),
        ..chunk.clone()
    };
    assert_eq!(declared_samples(&cut), 3);
    for (encoding, data) in [
        (ENCODING_XOR, &[7u8][..]),
        (ENCODING_XOR, &[][..]),
        (2, a.bytes()),
    ] {
        let c = EncodedChunk {
            encoding,
            data: Arc::from(data),
            ..chunk.clone()
        };
        assert_eq!(
            declared_samples(&c),
            0,
            "encoding {encoding}, {} bytes",
            data.len()
        );
    }
}

#[test]
fn errors_not_panics() {
    assert!(matches!(
        XorIterator::new(&[1]),
        Err(ChunkError::TooShort { .. })
    ));
    let a = enc(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
    let cut = &a.bytes()[..a.bytes().len() - 3];
    assert!(decode_all(cut).is_err());
    let bad = EncodedChunk {
        min_time: 0,
        max_time: 1,
        encoding: 7,
        data: Arc::from(a.bytes()),
    };
    assert!(matches!(
        decode_chunk(&bad),
        Err(ChunkError::UnknownEncoding(7))
    ));
    let mut it = SeriesIterator::new(vec![bad]);
    assert!(it.next().is_err());
}

#[test]
fn seek_semantics() {
    let a = enc(&[(10, 1.0), (20, 2.0), (30, 3.0)]);
    let mut it = XorIterator::new(a.bytes()).unwrap();
    assert_eq!(it.seek(15).unwrap().map(|s| s.t), Some(20));
    assert_eq!(it.seek(5).unwrap().map(|s| s.t), Some(20));
    assert_eq!(it.next().unwrap().map(|s| s.t), Some(30));
    assert_eq!(it.seek(31).unwrap(), None);
}

#[test]
fn series_iterator_merges_overlaps_preferring_later() {
    let c1 = enc(&[(1, 1.0), (3, 1.0), (5, 1.0)]).to_encoded().unwrap();
    let c2 = enc(&[(2, 2.0), (3, 2.0), (6, 2.0)]).to_encoded().unwrap();
    let c3 = enc(&[(10, 3.0)]).to_encoded().unwrap();
    let mut it = SeriesIterator::new(vec![c3.clone(), c1.clone(), c2.clone()]);
    let mut got = Vec::new();
    while let Some(s) = it.next().unwrap() {
        got.push((s.t, s.v));
    }
    assert_eq!(
        got,
        vec![(1, 1.0), (2, 2.0), (3, 2.0), (5, 1.0), (6, 2.0), (10, 3.0)]
    );
    let mut it = SeriesIterator::new(vec![c1, c2, c3]);
    assert_eq!(it.seek(4).unwrap().map(|s| s.t), Some(5));
    assert_eq!(it.seek(4).unwrap().map(|s| s.t), Some(5));
    assert_eq!(it.seek(7).unwrap().map(|s| s.t), Some(10));
    assert_eq!(it.next().unwrap(), None);
}
