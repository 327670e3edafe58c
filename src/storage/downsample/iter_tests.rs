//! Tests of the read side: counter-reset correction (increase over downsampled data equals
//! increase over raw), averages, raw-sample counts for `count_over_time`, the interpolation
//! that lets `rate(x[5m])` work on 5m data, `resets`/`changes` over aggregates, and the
//! function → aggregate table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::reference::{generate, ref_increase, ref_usable, window_end, window_of, Gen};
use super::*;
use crate::storage::chunkenc::XorAppender;
use crate::storage::model::{is_stale_nan, stale_nan};

const MIN: i64 = 60_000;

fn s(t: i64, v: f64) -> Sample {
    Sample { t, v }
}

fn encoded(chunks: &[DownsampledChunk]) -> Vec<EncodedChunk> {
    chunks.iter().map(|c| c.to_encoded()).collect()
}

fn xor_chunk(samples: &[Sample]) -> EncodedChunk {
    let mut app = XorAppender::new();
    for x in samples {
        app.try_append(x.t, x.v).unwrap();
    }
    app.to_encoded().unwrap()
}

/// A counter scraped every minute for `minutes`, +7 a minute, reset to 0 at each of `resets`.
fn counter_series(start: i64, minutes: i64, resets: &[i64]) -> Vec<Sample> {
    let mut v = 100.0;
    (0..minutes)
        .map(|m| {
            v = if resets.contains(&m) { 0.0 } else { v + 7.0 };
            s(start + m * MIN, v)
        })
        .collect()
}

/// PromQL's `resets` and `changes` over a list of samples.
fn resets(xs: &[Sample]) -> usize {
    xs.windows(2).filter(|p| p[1].v < p[0].v).count()
}
fn changes(xs: &[Sample]) -> usize {
    xs.windows(2).filter(|p| p[1].v != p[0].v).count()
}

#[test]
fn counter_resets_rules() {
    let mut it = CounterResets::new();
    assert_eq!(it.last_raw(), None);
    assert_eq!(it.push(s(0, f64::NAN)), None);
    assert_eq!(it.push(s(10, 5.0)), Some(s(10, 5.0)));
    assert_eq!(it.push(s(20, 8.0)), Some(s(20, 8.0)));
    assert_eq!(
        it.push(s(20, 2.0)),
        None,
        "same timestamp: the true last raw value"
    );
    assert_eq!(it.last_raw(), Some(2.0));
    assert_eq!(
        it.push(s(30, 3.0)),
        Some(s(30, 9.0)),
        "compared with 2, not 8"
    );
    assert_eq!(it.push(s(25, 100.0)), None, "back in time");
    assert_eq!(it.push(s(40, stale_nan())), None);
    assert_eq!(
        it.push(s(50, 1.0)),
        Some(s(50, 10.0)),
        "reset adds the new value"
    );
}

#[test]
fn average_is_sum_over_count_and_checks_alignment() {
    let count = [s(1, 2.0), s(2, 4.0)];
    let sum = [s(1, 3.0), s(2, 10.0)];
    assert_eq!(average(&count, &sum).unwrap(), vec![s(1, 1.5), s(2, 2.5)]);
    assert!(average(&count, &sum[..1]).is_err());
    assert!(average(&count, &[s(1, 3.0), s(3, 1.0)]).is_err());
}

#[test]
fn function_table() {
    use AggrType::*;
    let cases: &[(Option<&str>, Read)] = &[
        (None, Read::Average),
        (Some("min"), Read::Aggregate(Min)),
        (Some("min_over_time"), Read::Aggregate(Min)),
        (Some("max"), Read::Aggregate(Max)),
        (Some("max_over_time"), Read::Aggregate(Max)),
        (Some("sum_over_time"), Read::Aggregate(Sum)),
        (Some("sum"), Read::Average),
        (Some("avg"), Read::Average),
        (Some("count"), Read::Aggregate(Count)),
        (Some("count_over_time"), Read::SampleCount),
        (Some("count_values"), Read::Average),
        (Some("rate"), Read::Counter),
        (Some("increase"), Read::Counter),
        (Some("irate"), Read::Counter),
        (Some("xrate"), Read::Counter),
        (Some("xincrease"), Read::Counter),
        (Some("resets"), Read::Aggregate(Min)),
        (Some("changes"), Read::Average),
        (Some("delta"), Read::Average),
        (Some("quantile_over_time"), Read::Average),
        (Some("last_over_time"), Read::Average),
    ];
    for (func, want) in cases {
        assert_eq!(read_for(*func), *want, "{func:?}");
    }
    assert_eq!(aggregates_for(None), vec![Count, Sum]);
    assert_eq!(aggregates_for(Some("rate")), vec![Counter]);
    assert_eq!(aggregates_for(Some("count_over_time")), vec![Count]);
    assert_eq!(aggregates_for(Some("resets")), vec![Min]);
    assert!(approximation_note(Some("resets")).is_some());
    assert!(approximation_note(Some("changes")).is_some());
    assert!(approximation_note(Some("rate")).is_none());
    assert!(approximation_note(None).is_none());
}

#[test]
fn read_series_clips_skips_overlaps_and_names_missing_aggregates() {
    let raw = counter_series(0, 120, &[]);
    let five = downsample_raw(&raw, RES_5M).unwrap();
    let mut chunks = encoded(&five);
    chunks.extend(encoded(&five)); // the same data twice: read once
    let all = read_series(&chunks, Read::Aggregate(AggrType::Max), &ReadOptions::all()).unwrap();
    assert_eq!(all.len(), 24);
    let opts = ReadOptions {
        mint: 10 * MIN,
        maxt: 30 * MIN - 1,
        interpolation: None,
    };
    let clipped = read_series(&chunks, Read::Aggregate(AggrType::Max), &opts).unwrap();
    assert_eq!(
        clipped.iter().map(|x| x.t).collect::<Vec<_>>(),
        vec![15 * MIN - 1, 20 * MIN - 1, 25 * MIN - 1, 30 * MIN - 1]
    );

    let only_count = AggrChunk::encode([Some((1, &[0, 0][..])), None, None, None, None]);
    let c = DownsampledChunk {
        min_time: 0,
        max_time: 0,
        chunk: only_count,
    }
    .to_encoded();
    let err = read_series(&[c], Read::Aggregate(AggrType::Min), &ReadOptions::all()).unwrap_err();
    assert_eq!(err.to_string(), "aggregate min does not exist");
}

#[test]
fn count_over_time_counts_raw_samples_in_mixed_series() {
    let raw = counter_series(0, 60, &[]);
    let five = downsample_raw(&raw[..40], RES_5M).unwrap();
    let mut chunks = encoded(&five);
    let mut tail = raw[40..].to_vec();
    tail.push(s(61 * MIN, stale_nan()));
    chunks.push(xor_chunk(&tail));
    let counts = read_series(&chunks, Read::SampleCount, &ReadOptions::all()).unwrap();
    // 8 windows of 5 samples, then the 20 raw samples as 1 each, the stale marker as it is.
    assert_eq!(counts.len(), 8 + 21);
    assert!(counts[..8].iter().all(|x| x.v == 5.0));
    assert!(counts[8..28].iter().all(|x| x.v == 1.0));
    assert!(is_stale_nan(counts[28].v));
    let total: f64 = counts[..28].iter().map(|x| x.v).sum();
    assert_eq!(total, 60.0);
}

#[test]
fn resets_read_the_minimum_and_see_each_reset() {
    // Resets in different, non-adjacent hours after the first; the raw answer is 4.
    let raw = counter_series(3 * MIN, 600, &[137, 271, 400, 500]);
    assert_eq!(resets(&raw), 4);
    let five = downsample_raw(&raw, RES_5M).unwrap();
    let read = read_for(Some("resets"));
    let mins = read_series(&encoded(&five), read, &ReadOptions::all()).unwrap();
    assert_eq!(resets(&mins), 4);
    // The corrected counter, what Thanos reads, hides every reset.
    let totals = read_series(&encoded(&five), Read::Counter, &ReadOptions::all()).unwrap();
    assert_eq!(resets(&totals), 0);
    // And at 1h.
    let hour = downsample_aggr(&five, RES_5M, RES_1H).unwrap();
    let mins = read_series(&encoded(&hour), read, &ReadOptions::all()).unwrap();
    assert_eq!(resets(&mins), 4);
}

#[test]
fn changes_over_averages_is_zero_only_for_constant_series() {
    let constant: Vec<Sample> = (0..300).map(|m| s(m * MIN, 42.0)).collect();
    let read = read_for(Some("changes"));
    let five = downsample_raw(&constant, RES_5M).unwrap();
    assert_eq!(
        changes(&read_series(&encoded(&five), read, &ReadOptions::all()).unwrap()),
        0
    );
    let counter = counter_series(0, 300, &[100]);
    let five = downsample_raw(&counter, RES_5M).unwrap();
    let n = changes(&read_series(&encoded(&five), read, &ReadOptions::all()).unwrap());
    assert!(n >= 50, "{n} changes over 60 windows");
}

#[test]
fn interpolation_gives_short_ranges_two_points_and_a_close_rate() {
    assert_eq!(Interpolation::for_range(RES_5M, 15 * MIN), None);
    assert!(Interpolation::for_range(RES_5M, 10 * MIN).is_some());
    assert_eq!(Interpolation::for_range(RES_RAW, 5 * MIN), None);
    assert_eq!(Interpolation::for_range(RES_5M, 0), None);
    let ip = Interpolation::for_range(RES_5M, 5 * MIN).unwrap();
    assert_eq!(ip.step, 75_000);

    // 3 hours of +7/min, then a 2-hour hole, then 1 more hour; 3 chunks.
    let mut raw = counter_series(0, 180, &[]);
    let after: Vec<Sample> = counter_series(300 * MIN, 60, &[])
        .into_iter()
        .map(|x| s(x.t, x.v + 2000.0))
        .collect();
    raw.extend(after);
    let five = super::raw::downsample_raw_loop(&raw, RES_5M, 3).unwrap();
    assert_eq!(five.len(), 3);
    let opts = ReadOptions {
        mint: i64::MIN,
        maxt: i64::MAX,
        interpolation: Some(ip),
    };
    let points = read_series(&encoded(&five), Read::Counter, &opts).unwrap();
    let plain = read_series(&encoded(&five), Read::Counter, &ReadOptions::all()).unwrap();
    for p in &plain {
        assert!(points.contains(p), "stored point {p:?} kept");
    }
    for pair in points.windows(2) {
        assert!(pair[0].t < pair[1].t && pair[0].v <= pair[1].v);
    }
    // Nothing is invented inside the hole.
    assert!(!points.iter().any(|p| p.t > 180 * MIN && p.t < 300 * MIN));
    // Every 5m range inside the data holds two points, and the slope is the counter's.
    let data_spans = [(5 * MIN, 179 * MIN), (305 * MIN, 359 * MIN)];
    for (from, to) in data_spans {
        let mut end = from;
        while end <= to {
            let inside: Vec<&Sample> = points
                .iter()
                .filter(|p| p.t > end - 5 * MIN && p.t <= end)
                .collect();
            assert!(
                inside.len() >= 2,
                "range ending {end} holds {}",
                inside.len()
            );
            let (a, b) = (inside[0], inside[inside.len() - 1]);
            // 7/min, give or take the shift of stamps: a chunk's first window spreads four
            // minutes of increase over five, its last squeezes five into four.
            let per_minute = (b.v - a.v) / (b.t - a.t) as f64 * MIN as f64;
            assert!(
                (5.5..8.8).contains(&per_minute),
                "{per_minute}/min ending {end}"
            );
            end += 17_000;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Increase over downsampled data equals increase over raw data: at every point the
    /// corrected total minus the first one is the raw reset-aware increase up to it, across
    /// window and chunk boundaries, resets included; the same at 1h.
    #[test]
    fn increase_over_downsampled_equals_raw(
        seed in any::<u64>(),
        len in 1usize..3000,
        interval in prop_oneof![Just(15_000i64), Just(60_000), 5_000i64..300_000],
        gaps in 0u32..20,
        nans in 0u32..20,
        chunks in 1usize..40,
    ) {
        let raw = generate(Gen { seed, len, start: 1_000_000_000_000, interval, counter: true, gaps, nans });
        let clean = super::raw::sanitize_raw(&raw);
        // Small forced chunk counts put many resets and boundaries at chunk edges.
        let five = super::raw::downsample_raw_loop(&clean, RES_5M, chunks).unwrap();
        let hour = downsample_aggr(&five, RES_5M, RES_1H).unwrap();
        for level in [&five, &hour] {
            let totals = read_series(&encoded(level), Read::Counter, &ReadOptions::all()).unwrap();
            if totals.is_empty() {
                prop_assert!(ref_usable(&raw, i64::MIN, i64::MAX).is_empty());
                continue;
            }
            let base = totals[0].v;
            for p in &totals {
                prop_assert_eq!(p.v - base, ref_increase(&raw, p.t), "at {}", p.t);
            }
            let last = ref_usable(&raw, i64::MIN, i64::MAX).last().unwrap().t;
            prop_assert_eq!(totals.last().unwrap().t, last);
        }
    }

    /// The average at each 5m stamp is the mean of the window's raw samples, and summing the
    /// raw-sample counts over whole windows gives the raw count.
    #[test]
    fn averages_and_counts_match_raw(
        seed in any::<u64>(),
        len in 1usize..2000,
        interval in 5_000i64..200_000,
        counter in any::<bool>(),
        nans in 0u32..20,
        windows in 1i64..30,
    ) {
        let raw = generate(Gen { seed, len, start: 1_500_000_000_000, interval, counter, gaps: 5, nans });
        let chunks = encoded(&downsample_raw(&raw, RES_5M).unwrap());
        let avg = read_series(&chunks, Read::Average, &ReadOptions::all()).unwrap();
        for a in &avg {
            let k = window_of(a.t, RES_5M);
            let xs = ref_usable(&raw, k * RES_5M, window_end(k, RES_5M));
            let sum = xs.iter().fold(0.0, |acc, x| acc + x.v);
            prop_assert_eq!(a.v, sum / xs.len() as f64);
        }
        let counts = read_series(&chunks, Read::SampleCount, &ReadOptions::all()).unwrap();
        let range = windows * RES_5M;
        for c in &counts {
            let end = window_end(window_of(c.t, RES_5M), RES_5M);
            let got: f64 = counts
                .iter()
                .filter(|x| x.t > end - range && x.t <= end)
                .map(|x| x.v)
                .sum();
            let want = ref_usable(&raw, end - range + 1, end).len() as f64;
            prop_assert_eq!(got, want, "count_over_time[{}m] at {}", windows * 5, end);
        }
    }
}
