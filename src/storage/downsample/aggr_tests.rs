//! Tests of the `AggrChunk` byte layout (hand-built bytes, round trips, malformed input) and
//! of the 5m → 1h pass against aggregates computed straight from the raw samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::raw_tests::decoded;
use super::reference::{generate, ref_increase, ref_usable, window_end, window_of, Gen};
use super::*;
use crate::storage::chunkenc::XorAppender;

#[test]
fn header_layout_is_byte_exact() {
    let min_payload = [0x11u8; 130];
    let chunk = AggrChunk::encode([
        Some((1, &[0xaa, 0xbb][..])),
        None,
        Some((1, &min_payload[..])),
        Some((7, &[0xcc][..])),
        None,
    ]);
    let mut want = vec![0x02, 0x01, 0xaa, 0xbb]; // count: len 2, XOR, payload
    want.push(0x00); // sum: absent
    want.extend([0x82, 0x01, 0x01]); // min: len 130 as a two-byte uvarint, XOR
    want.extend([0x11; 130]);
    want.extend([0x01, 0x07, 0xcc]); // max: len 1, encoding 7, payload
    want.push(0x00); // counter: absent
    assert_eq!(chunk.bytes(), &want[..]);

    let count = chunk.get(AggrType::Count).unwrap();
    assert_eq!((count.encoding, count.data), (1, &[0xaa, 0xbb][..]));
    assert_eq!(chunk.get(AggrType::Min).unwrap().data, &min_payload[..]);
    let max = chunk.get(AggrType::Max).unwrap();
    assert_eq!((max.encoding, max.data), (7, &[0xcc][..]));
    let err = chunk.get(AggrType::Sum).unwrap_err();
    assert_eq!(err.to_string(), "aggregate sum does not exist");
    // The last entry may be absent with nothing after it (Thanos would say "invalid size").
    let err = chunk.get(AggrType::Counter).unwrap_err();
    assert_eq!(err.to_string(), "aggregate counter does not exist");
    // A sub-chunk in an encoding Strata does not read is refused when decoded, not misread.
    assert!(matches!(
        max.samples(),
        Err(DownsampleError::UnsupportedEncoding {
            aggr: AggrType::Max,
            encoding: 7
        })
    ));
}

#[test]
fn xor_sub_chunk_layout_is_byte_exact() {
    let mut app = XorAppender::new();
    app.try_append(1000, 1.0).unwrap();
    let chunk = AggrChunk::encode([Some((1, app.bytes())), None, None, None, None]);
    #[rustfmt::skip]
    let want = [
        13, 0x01,                    // uvarint(13), XOR
        0x00, 0x01,                  // one sample
        0xd0, 0x0f,                  // varint(1000) = uvarint(2000)
        0x3f, 0xf0, 0, 0, 0, 0, 0, 0, // 1.0 as 64 bits
        0x00,                        // the fresh byte Prometheus leaves after a whole byte
        0, 0, 0, 0,                  // sum, min, max, counter absent
    ];
    assert_eq!(chunk.bytes(), &want[..]);
    assert_eq!(
        chunk.samples(AggrType::Count).unwrap(),
        vec![Sample { t: 1000, v: 1.0 }]
    );
    assert_eq!(chunk.num_samples(), 1);
}

#[test]
fn malformed_chunks_give_errors_not_panics() {
    let good = downsample_raw(
        &(0..50)
            .map(|i| Sample {
                t: i * 60_000,
                v: i as f64,
            })
            .collect::<Vec<_>>(),
        RES_5M,
    )
    .unwrap()
    .remove(0)
    .chunk;
    let bytes = good.bytes();
    for cut in 0..bytes.len() {
        let c = AggrChunk::from_bytes(bytes[..cut].to_vec());
        for aggr in AggrType::ALL {
            // Either a clean error or (for a cut inside a later entry) the sub-chunk.
            let _ = c.samples(aggr);
        }
        let last = c.get(AggrType::Counter);
        assert!(last.is_err(), "cut at {cut} still reads the counter");
    }
    // A length running past the end.
    let c = AggrChunk::from_bytes(vec![0x05, 0x01, 0x00]);
    assert!(matches!(
        c.get(AggrType::Count),
        Err(DownsampleError::InvalidSize(AggrType::Count))
    ));
    // A uvarint that never ends.
    let c = AggrChunk::from_bytes(vec![0xff; 12]);
    assert!(matches!(
        c.get(AggrType::Sum),
        Err(DownsampleError::InvalidSize(AggrType::Sum))
    ));
    assert_eq!(c.num_samples(), 0);
    let not_aggr = EncodedChunk {
        min_time: 0,
        max_time: 0,
        encoding: 1,
        data: vec![0, 0].into(),
    };
    assert!(matches!(
        DownsampledChunk::from_encoded(&not_aggr),
        Err(DownsampleError::NotAggrChunk(1))
    ));
}

fn sub_chunk_strategy() -> impl Strategy<Value = Option<Vec<Sample>>> {
    proptest::option::of(
        (
            0i64..1_000_000,
            proptest::collection::vec((1i64..100_000, -1e9f64..1e9), 1..200),
        )
            .prop_map(|(start, steps)| {
                let mut t = start;
                steps
                    .into_iter()
                    .map(|(dt, v)| {
                        t += dt;
                        Sample { t, v }
                    })
                    .collect()
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// encode → bytes → get returns every sub-chunk's exact bytes and samples.
    #[test]
    fn encode_decode_round_trip(
        parts in proptest::array::uniform5(sub_chunk_strategy()),
        min_time in any::<i64>(),
        max_time in any::<i64>(),
    ) {
        let apps: Vec<Option<XorAppender>> = parts
            .iter()
            .map(|p| {
                p.as_ref().map(|samples| {
                    let mut app = XorAppender::new();
                    for s in samples {
                        app.try_append(s.t, s.v).unwrap();
                    }
                    app
                })
            })
            .collect();
        let encoded_parts: [Option<(u8, &[u8])>; 5] =
            std::array::from_fn(|i| apps[i].as_ref().map(|a| (1u8, a.bytes())));
        let chunk = DownsampledChunk {
            min_time,
            max_time,
            chunk: AggrChunk::encode(encoded_parts),
        };
        let back = DownsampledChunk::from_encoded(&chunk.to_encoded()).unwrap();
        prop_assert_eq!(&back, &chunk);
        for aggr in AggrType::ALL {
            match (&parts[aggr.index()], &apps[aggr.index()]) {
                (Some(samples), Some(app)) => {
                    let sub = back.chunk.get(aggr).unwrap();
                    prop_assert_eq!(sub.data, app.bytes());
                    prop_assert_eq!(&back.chunk.samples(aggr).unwrap(), samples);
                }
                _ => prop_assert!(matches!(
                    back.chunk.get(aggr),
                    Err(DownsampleError::AggrNotExist(a)) if a == aggr
                )),
            }
        }
    }

    /// 5m → 1h, compared with each hour of the raw samples: counts, sums, mins and maxes add
    /// up per hour (a 1h window split over two chunks appears in both), the stamps are the
    /// hour's end or a chunk's last raw time, and the counter read back rises exactly as the
    /// raw counter does.
    #[test]
    fn five_minutes_to_one_hour_matches_raw(
        seed in any::<u64>(),
        len in 1usize..4000,
        interval in prop_oneof![Just(15_000i64), Just(60_000), 5_000i64..200_000],
        counter in any::<bool>(),
        gaps in 0u32..10,
        nans in 0u32..20,
    ) {
        let raw = generate(Gen { seed, len, start: 1_600_000_000_000, interval, counter, gaps, nans });
        let five = downsample_raw(&raw, RES_5M).unwrap();
        let hour = downsample_aggr(&five, RES_5M, RES_1H).unwrap();
        if five.is_empty() {
            prop_assert!(hour.is_empty());
            return Ok(());
        }
        // Per hour: (count, sum, min, max) over every 1h entry stamped in it.
        let mut got: std::collections::BTreeMap<i64, (f64, f64, f64, f64)> = Default::default();
        for c in &hour {
            let d = decoded(c);
            for pair in d.windows.windows(2) {
                prop_assert!(pair[0].stamp < pair[1].stamp);
            }
            for w in &d.windows {
                let k = window_of(w.stamp, RES_1H);
                let e = got.entry(k).or_insert((0.0, 0.0, f64::MAX, -f64::MAX));
                e.0 += w.count;
                e.1 += w.sum;
                e.2 = e.2.min(w.min);
                e.3 = e.3.max(w.max);
            }
            // Each chunk's counter is framed by true raw values of its span.
            let span = ref_usable(&raw, i64::MIN, d.windows.last().unwrap().stamp);
            let first = d.first_raw;
            prop_assert!(span.contains(&first));
            prop_assert_eq!(d.last_raw, span.last().unwrap().v);
            prop_assert_eq!(d.windows.last().unwrap().stamp, span.last().unwrap().t);
        }
        let mut want: std::collections::BTreeMap<i64, (f64, f64, f64, f64)> = Default::default();
        for s in ref_usable(&raw, i64::MIN, i64::MAX) {
            let e = want.entry(window_of(s.t, RES_1H)).or_insert((0.0, 0.0, f64::MAX, -f64::MAX));
            e.0 += 1.0;
            e.1 += s.v;
            e.2 = e.2.min(s.v);
            e.3 = e.3.max(s.v);
        }
        prop_assert_eq!(&got, &want);
        for c in &hour {
            for w in decoded(c).windows {
                let k = window_of(w.stamp, RES_1H);
                let last_raw_in_hour = ref_usable(&raw, k * RES_1H, window_end(k, RES_1H))
                    .last()
                    .unwrap()
                    .t;
                prop_assert!(w.stamp == window_end(k, RES_1H) || w.stamp <= last_raw_in_hour);
            }
        }
        // The counter read back: total minus the first total is the raw increase so far
        // (a counter property: gauges go negative, where the running total means nothing).
        if !counter {
            return Ok(());
        }
        let encoded: Vec<EncodedChunk> = hour.iter().map(|c| c.to_encoded()).collect();
        let totals = read_series(&encoded, Read::Counter, &ReadOptions::all()).unwrap();
        let base = totals[0].v;
        for p in &totals {
            prop_assert_eq!(p.v - base, ref_increase(&raw, p.t), "at {}", p.t);
        }
    }
}
