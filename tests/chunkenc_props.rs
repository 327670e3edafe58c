//! Property tests for the XOR chunk encoding: round-trips over adversarial timestamps and
//! values, reopen-and-append equivalence, and no panics on mutated or truncated payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use strata::storage::chunkenc::{decode_all, SeriesIterator, XorAppender, XorIterator};
use strata::storage::model::{stale_nan, EncodedChunk};

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(stale_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(1e300),
        (1u64..0x000f_ffff_ffff_ffff).prop_map(f64::from_bits),
        (0i64..1000).prop_map(|i| i as f64),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(15_000i64),
        (14_990i64..15_010),
        (1i64..100),
        (1i64..10_000_000),
        (1i64..(1i64 << 40)),
    ]
}

fn samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        -(1i64 << 50)..(1i64 << 50),
        prop::collection::vec((step(), value()), 0..300),
    )
        .prop_map(|(start, steps)| {
            let mut t = start;
            steps
                .into_iter()
                .map(|(d, v)| {
                    t += d;
                    (t, v)
                })
                .collect()
        })
}

fn encode(s: &[(i64, f64)]) -> XorAppender {
    let mut a = XorAppender::new();
    for &(t, v) in s {
        a.append(t, v);
    }
    a
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn roundtrip(s in samples()) {
        let a = encode(&s);
        prop_assert_eq!(a.num_samples(), s.len());
        let got = decode_all(a.bytes()).unwrap();
        prop_assert_eq!(got.len(), s.len());
        for (g, w) in got.iter().zip(s.iter()) {
            prop_assert_eq!(g.t, w.0);
            prop_assert_eq!(g.v.to_bits(), w.1.to_bits());
        }
        prop_assert_eq!(a.min_time(), s.first().map(|x| x.0));
        prop_assert_eq!(a.max_time(), s.last().map(|x| x.0));
        prop_assert_eq!(a.to_encoded().is_some(), !s.is_empty());
    }

    #[test]
    fn reopen_then_append_is_identical(s in samples(), split in 0usize..300) {
        let split = split.min(s.len());
        let head = encode(&s[..split]);
        let mut re = XorAppender::from_bytes(head.bytes()).unwrap();
        for &(t, v) in &s[split..] {
            re.append(t, v);
        }
        let whole = encode(&s);
        prop_assert_eq!(re.bytes(), whole.bytes());
    }

    #[test]
    fn seek_finds_first_at_or_after(s in samples(), probe in any::<i64>()) {
        let a = encode(&s);
        let mut it = XorIterator::new(a.bytes()).unwrap();
        let want = s.iter().find(|x| x.0 >= probe).map(|x| x.0);
        prop_assert_eq!(it.seek(probe).unwrap().map(|x| x.t), want);
    }

    #[test]
    fn mutated_bytes_never_panic(s in samples(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut data = encode(&s).bytes().to_vec();
        for (pos, x) in flips {
            let len = data.len();
            if let Some(b) = data.get_mut(pos % len) {
                *b ^= x;
            }
        }
        let cut = cut % (data.len() + 1);
        let truncated = &data[..cut];
        // Whatever the outcome, it must be a value or an error, and a successful decode can
        // never yield more samples than the header announces.
        for payload in [&data[..], truncated] {
            if let Ok(v) = decode_all(payload) {
                let announced = u16::from_be_bytes([payload[0], payload[1]]) as usize;
                prop_assert_eq!(v.len(), announced);
            }
            let _ = XorAppender::from_bytes(payload);
            let chunk = EncodedChunk { min_time: 0, max_time: 0, encoding: 1, data: payload.into() };
            let mut it = SeriesIterator::new(vec![chunk]);
            let mut n = 0;
            while let Ok(Some(_)) = it.next() {
                n += 1;
                prop_assert!(n <= 65535);
            }
        }
    }

    #[test]
    fn series_iterator_equals_sorted_dedup_union(a in samples(), b in samples()) {
        let ca = encode(&a).to_encoded();
        let cb = encode(&b).to_encoded();
        let chunks: Vec<EncodedChunk> = ca.into_iter().chain(cb).collect();
        let mut want: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
        for &(t, v) in a.iter().chain(b.iter()) {
            want.insert(t, v.to_bits()); // later list entry (b) wins
        }
        let mut it = SeriesIterator::new(chunks);
        let mut got = Vec::new();
        while let Some(x) = it.next().unwrap() {
            got.push((x.t, x.v.to_bits()));
        }
        let want: Vec<(i64, u64)> = want.into_iter().collect();
        prop_assert_eq!(got, want);
    }
}
