//! Tests of the raw → downsampled pass: the worked example of the reference text, Thanos's
//! chunk-boundary reset case, edge cases (gaps, NaNs, stale markers, negative values and
//! timestamps), `downsample_series` over encoded chunks, and property tests against the
//! independent reference in `reference.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::aggr_down::downsample_aggr_batch;
use super::raw::downsample_raw_loop;
use super::reference::{
    generate, ref_chunk_count, ref_downsample, window_of, Gen, RefChunk, RefWindow,
};
use super::*;
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::stale_nan;

const MIN: i64 = 60_000;
/// 10:00 on the first day of the epoch.
const TEN: i64 = 10 * 3_600_000;

fn s(t: i64, v: f64) -> Sample {
    Sample { t, v }
}

/// A produced chunk in the reference's shape, checking the counter framing on the way.
pub(super) fn decoded(c: &DownsampledChunk) -> RefChunk {
    let get = |a| c.chunk.samples(a).unwrap();
    let (count, sum, min, max, counter) = (
        get(AggrType::Count),
        get(AggrType::Sum),
        get(AggrType::Min),
        get(AggrType::Max),
        get(AggrType::Counter),
    );
    assert_eq!(
        counter.len(),
        count.len() + 2,
        "counter = windows + first + last raw"
    );
    let windows: Vec<RefWindow> = (0..count.len())
        .map(|i| {
            for other in [&sum[i], &min[i], &max[i], &counter[i + 1]] {
                assert_eq!(other.t, count[i].t, "aggregates share stamps");
            }
            RefWindow {
                stamp: count[i].t,
                count: count[i].v,
                sum: sum[i].v,
                min: min[i].v,
                max: max[i].v,
                counter: counter[i + 1].v,
            }
        })
        .collect();
    let last = counter[counter.len() - 1];
    assert_eq!(
        last.t,
        windows.last().unwrap().stamp,
        "last raw sits at the last stamp"
    );
    assert_eq!(c.min_time, windows[0].stamp);
    assert_eq!(c.max_time, last.t);
    RefChunk {
        first_raw: counter[0],
        windows,
        last_raw: last.v,
    }
}

/// Bit-exact comparison (Debug prints every f64 bit pattern distinctly, -0.0 included).
fn assert_same(got: &[RefChunk], want: &[RefChunk]) {
    assert_eq!(format!("{got:#?}"), format!("{want:#?}"));
}

fn w(stamp: i64, count: f64, sum: f64, min: f64, max: f64, counter: f64) -> RefWindow {
    RefWindow {
        stamp,
        count,
        sum,
        min,
        max,
        counter,
    }
}

/// Raw 10:01→10 … 10:04→40, 10:05→5 (reset), 10:06→15 … 10:09→45, then `more` minutes of
/// +10 each.
fn worked_example_raw(more: i64) -> Vec<Sample> {
    let mut raw: Vec<Sample> = (1..=4).map(|m| s(TEN + m * MIN, m as f64 * 10.0)).collect();
    raw.extend((5..=9).map(|m| s(TEN + m * MIN, 5.0 + (m - 5) as f64 * 10.0)));
    raw.extend((10..10 + more).map(|m| s(TEN + m * MIN, 45.0 + (m - 9) as f64 * 10.0)));
    raw
}

#[test]
fn worked_example_table() {
    let chunks = downsample_raw(&worked_example_raw(5), RES_5M).unwrap();
    assert_eq!(chunks.len(), 1);
    let c = decoded(&chunks[0]);
    assert_eq!(c.first_raw, s(TEN + MIN, 10.0));
    assert_eq!(
        c.windows[0],
        w(TEN + 5 * MIN - 1, 4.0, 100.0, 10.0, 40.0, 40.0)
    );
    assert_eq!(
        c.windows[1],
        w(TEN + 10 * MIN - 1, 5.0, 125.0, 5.0, 45.0, 85.0)
    );
    // The chunk's last window (10:10..10:14) is stamped at its last raw sample.
    assert_eq!(
        c.windows[2],
        w(TEN + 14 * MIN, 5.0, 375.0, 55.0, 95.0, 135.0)
    );
    assert_eq!(c.last_raw, 95.0);
}

#[test]
fn worked_example_when_w2_is_the_last_window() {
    let chunks = downsample_raw(&worked_example_raw(0), RES_5M).unwrap();
    assert_eq!(chunks.len(), 1);
    let counter = chunks[0].chunk.samples(AggrType::Counter).unwrap();
    let nine = TEN + 9 * MIN;
    assert_eq!(
        counter,
        vec![
            s(TEN + MIN, 10.0),
            s(TEN + 5 * MIN - 1, 40.0),
            s(nine, 85.0),
            s(nine, 45.0)
        ]
    );
    assert_eq!(
        decoded(&chunks[0]).windows[1],
        w(nine, 5.0, 125.0, 5.0, 45.0, 85.0)
    );
    // Read back: 10 → 40 → 85, an increase of 75 as over raw; a next chunk starting at 55 is
    // compared with the true last value 45, not with 85: +10.
    let mut it = CounterResets::new();
    let read: Vec<Sample> = counter.iter().filter_map(|&x| it.push(x)).collect();
    assert_eq!(read, vec![counter[0], counter[1], counter[2]]);
    assert_eq!(read[2].v - read[0].v, 75.0);
    assert_eq!(
        it.push(s(nine + 2 * MIN, 55.0)),
        Some(s(nine + 2 * MIN, 95.0))
    );
}

/// Thanos's #1568 case: resets at the boundaries of single-window chunks survive both passes.
#[test]
fn resets_at_chunk_boundaries_survive_both_passes() {
    let raw: Vec<Sample> = [
        (10, 1.0),
        (20, 3.0),
        (30, 5.0),
        (50, 1.0),
        (60, 8.0),
        (70, 10.0),
        (120, 1.0),
        (130, 18.0),
        (140, 20.0),
        (160, 21.0),
        (170, 38.0),
        (180, 40.0),
    ]
    .iter()
    .map(|&(t, v)| s(t, v))
    .collect();
    // More chunks than samples: every chunk holds exactly one window.
    let chunks = downsample_raw_loop(&raw, 50, raw.len() + 1).unwrap();
    assert_eq!(chunks.len(), 4);
    let counters = |cs: &[DownsampledChunk]| -> Vec<(i64, f64)> {
        cs.iter()
            .flat_map(|c| c.chunk.samples(AggrType::Counter).unwrap())
            .map(|x| (x.t, x.v))
            .collect()
    };
    let iterate = |cs: &[DownsampledChunk]| -> Vec<(i64, f64)> {
        let encoded: Vec<EncodedChunk> = cs.iter().map(|c| c.to_encoded()).collect();
        read_series(&encoded, Read::Counter, &ReadOptions::all())
            .unwrap()
            .iter()
            .map(|x| (x.t, x.v))
            .collect()
    };
    #[rustfmt::skip]
    let want_counter = [(10, 1.0), (30, 5.0), (30, 5.0), (50, 1.0), (70, 10.0), (70, 10.0),
        (120, 1.0), (140, 20.0), (140, 20.0), (160, 21.0), (180, 40.0), (180, 40.0)];
    assert_eq!(counters(&chunks), want_counter);
    #[rustfmt::skip]
    let want_iter = [(10, 1.0), (30, 5.0), (50, 6.0), (70, 15.0), (120, 16.0), (140, 35.0),
        (160, 36.0), (180, 55.0)];
    assert_eq!(iterate(&chunks), want_iter);

    let coarse = vec![
        downsample_aggr_batch(&chunks[..2], 100).unwrap(),
        downsample_aggr_batch(&chunks[2..], 100).unwrap(),
    ];
    #[rustfmt::skip]
    let want_counter = [(10, 1.0), (70, 15.0), (70, 10.0), (120, 1.0), (180, 40.0), (180, 40.0)];
    assert_eq!(counters(&coarse), want_counter);
    assert_eq!(
        iterate(&coarse),
        [(10, 1.0), (70, 15.0), (120, 16.0), (180, 55.0)]
    );
}

#[test]
fn missing_windows_produce_no_samples() {
    let raw = vec![
        s(TEN + MIN, 1.0),
        s(TEN + 2 * MIN, 2.0),
        s(TEN + 151 * MIN, 7.0),
        s(TEN + 152 * MIN, 9.0),
    ];
    let chunks = downsample_raw(&raw, RES_5M).unwrap();
    assert_eq!(chunks.len(), 1);
    let c = decoded(&chunks[0]);
    assert_eq!(c.windows.len(), 2);
    assert_eq!(c.windows[0], w(TEN + 5 * MIN - 1, 2.0, 3.0, 1.0, 2.0, 2.0));
    assert_eq!(c.windows[1], w(TEN + 152 * MIN, 2.0, 16.0, 7.0, 9.0, 9.0));
}

#[test]
fn stale_markers_nans_and_negative_timestamps_are_dropped() {
    let raw = vec![
        s(-MIN, 100.0),
        s(TEN + MIN, 1.0),
        s(TEN + 2 * MIN, stale_nan()),
        s(TEN + 3 * MIN, f64::NAN),
        s(TEN + 4 * MIN, 3.0),
        s(TEN + 2 * MIN, 50.0), // back in time
        s(TEN + 6 * MIN, stale_nan()),
    ];
    let chunks = downsample_raw(&raw, RES_5M).unwrap();
    assert_eq!(chunks.len(), 1);
    let c = decoded(&chunks[0]);
    assert_eq!(c.windows, vec![w(TEN + 4 * MIN, 2.0, 4.0, 1.0, 3.0, 3.0)]);
    for aggr in AggrType::ALL {
        let values = chunks[0].chunk.samples(aggr).unwrap();
        assert!(values.iter().all(|x| !x.v.is_nan()), "{aggr} holds a NaN");
    }
    // Nothing usable: no chunk at all.
    let only_nans = vec![s(TEN, stale_nan()), s(TEN + MIN, f64::NAN)];
    assert!(downsample_raw(&only_nans, RES_5M).unwrap().is_empty());
    assert!(downsample_raw(&[], RES_5M).unwrap().is_empty());
}

#[test]
fn negative_values_and_infinities_follow_thanos_arithmetic() {
    let raw = vec![
        s(TEN, -5.0),
        s(TEN + MIN, -10.0),
        s(TEN + 2 * MIN, 3.0),
        s(TEN + 5 * MIN, f64::NEG_INFINITY),
    ];
    let c = decoded(&downsample_raw(&raw, RES_5M).unwrap()[0]);
    // -10 < -5 is a "reset": += -10; then 3 >= -10: += 13.
    assert_eq!(
        c.windows[0],
        w(TEN + 5 * MIN - 1, 3.0, -12.0, -10.0, 3.0, -2.0)
    );
    // A window of only -inf keeps max at -f64::MAX, as Thanos's aggregator does.
    assert_eq!(c.windows[1].min, f64::NEG_INFINITY);
    assert_eq!(c.windows[1].max, -f64::MAX);
}

#[test]
fn chunk_count_matches_the_reference_example() {
    // A 40h block scraped every 15 s: 481 expected windows, 4 chunks.
    assert_eq!(target_chunk_count(0, 40 * 3_600_000, MIN, RES_5M, 9601), 4);
    assert_eq!(target_chunk_count(0, 0, MIN, RES_5M, 1), 1);
    let raw = generate(Gen {
        seed: 7,
        len: 9600,
        start: 0,
        interval: 15_000,
        counter: true,
        gaps: 0,
        nans: 0,
    });
    let chunks = downsample_raw(&raw, RES_5M).unwrap();
    assert_eq!(chunks.len(), 4);
    for c in &chunks {
        let n = c.num_samples();
        assert!((100..=140).contains(&n), "{n} windows in a chunk");
    }
}

fn xor_chunk(samples: &[Sample]) -> EncodedChunk {
    let mut app = XorAppender::new();
    for x in samples {
        app.try_append(x.t, x.v).unwrap();
    }
    app.to_encoded().unwrap()
}

#[test]
fn downsample_series_from_raw_chunks() {
    let raw = generate(Gen {
        seed: 11,
        len: 3000,
        start: TEN,
        interval: 30_000,
        counter: true,
        gaps: 5,
        nans: 10,
    });
    // Source chunks hold strictly increasing timestamps, as a TSDB writes them.
    let mut clean: Vec<Sample> = Vec::new();
    for x in &raw {
        if clean.last().is_none_or(|p| x.t > p.t) {
            clean.push(*x);
        }
    }
    let encoded: Vec<EncodedChunk> = clean.chunks(120).map(xor_chunk).collect();
    let got = downsample_series(&encoded, RES_RAW, RES_5M).unwrap();
    assert_eq!(got, downsample_raw(&clean, RES_5M).unwrap());

    // 5m → 1h over the encoded output equals downsample_aggr over the chunks themselves.
    let five: Vec<EncodedChunk> = got.iter().map(|c| c.to_encoded()).collect();
    let hour = downsample_series(&five, RES_5M, RES_1H).unwrap();
    assert_eq!(hour, downsample_aggr(&got, RES_5M, RES_1H).unwrap());

    // A stray raw chunk in a 5m block is downsampled to 5m first; an empty one is skipped.
    let tail: Vec<Sample> = (1..=30)
        .map(|i| s(clean.last().unwrap().t + i * MIN, i as f64))
        .collect();
    let mut mixed = five.clone();
    mixed.push(EncodedChunk {
        min_time: tail[0].t - 1,
        max_time: tail[0].t - 1,
        encoding: 1,
        data: XorAppender::new().bytes().into(),
    });
    mixed.push(xor_chunk(&tail));
    let mut fixed = got.clone();
    fixed.extend(downsample_raw(&tail, RES_5M).unwrap());
    assert_eq!(
        downsample_series(&mixed, RES_5M, RES_1H).unwrap(),
        downsample_aggr(&fixed, RES_5M, RES_1H).unwrap()
    );
}

#[test]
fn downsample_series_refuses_bad_input() {
    let a = xor_chunk(&[s(0, 1.0), s(MIN, 2.0)]);
    let b = xor_chunk(&[s(MIN, 3.0), s(2 * MIN, 4.0)]);
    let err = downsample_series(&[a.clone(), b], RES_RAW, RES_5M).unwrap_err();
    assert!(
        matches!(err, DownsampleError::OverlappingChunks { .. }),
        "{err}"
    );
    let err = downsample_series(std::slice::from_ref(&a), RES_5M, RES_5M).unwrap_err();
    assert!(
        matches!(err, DownsampleError::ResolutionNotLower { .. }),
        "{err}"
    );
    let mut hist = a;
    hist.encoding = 2;
    let err = downsample_series(&[hist], RES_RAW, RES_5M).unwrap_err();
    assert!(
        matches!(err, DownsampleError::UnsupportedRawEncoding(2)),
        "{err}"
    );
    assert!(matches!(
        downsample_raw(&[s(0, 1.0)], 0),
        Err(DownsampleError::InvalidResolution(0))
    ));
}

fn gen_strategy() -> impl Strategy<Value = Gen> {
    (
        any::<u64>(),
        0usize..3000,
        0i64..2_000_000_000_000,
        prop_oneof![Just(15_000i64), Just(60_000), 1_000i64..400_000],
        any::<bool>(),
        0u32..20,
        0u32..40,
    )
        .prop_map(|(seed, len, start, interval, counter, gaps, nans)| Gen {
            seed,
            len,
            start,
            interval,
            counter,
            gaps,
            nans,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The production pass equals the reference bit for bit, at 5m and straight to 1h.
    #[test]
    fn raw_pass_matches_reference(g in gen_strategy()) {
        let raw = generate(g);
        for res in [RES_5M, RES_1H] {
            let got = downsample_raw(&raw, res).unwrap();
            let decoded_chunks: Vec<RefChunk> = got.iter().map(decoded).collect();
            assert_same(&decoded_chunks, &ref_downsample(&raw, res));
            // A window never straddles two chunks, and chunks never overlap.
            for pair in got.windows(2) {
                prop_assert!(pair[0].max_time < pair[1].min_time);
                prop_assert!(window_of(pair[0].max_time, res) < window_of(pair[1].min_time, res));
            }
        }
    }

    #[test]
    fn chunk_count_closed_form_matches_loop(
        mint in 0i64..1_000_000_000_000,
        span in 0i64..100_000_000_000,
        count in 1usize..5_000_000,
        coarse in any::<bool>(),
    ) {
        let (inr, outr) = if coarse { (RES_5M, RES_1H) } else { (MIN, RES_5M) };
        prop_assert_eq!(
            target_chunk_count(mint, mint + span, inr, outr, count),
            ref_chunk_count(mint, mint + span, inr, outr, count)
        );
    }
}
