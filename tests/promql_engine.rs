//! Engine-level behaviour through the public API: results, limits, cancellation, timeouts,
//! error types and the native-histogram error, against the in-memory test storage.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use strata::promql::testlang::MemStorage;
use strata::promql::{format_value_bytes, Engine, EngineOptions, PromqlError, Value};
use strata::storage::model::{
    EncodedChunk, Labels, Matcher, QueryResult, Queryable, Sample, SelectHints, Series,
};

fn storage() -> MemStorage {
    let mut st = MemStorage::new();
    for (inst, step) in [("a", 1.0), ("b", 2.0)] {
        let samples: Vec<Sample> = (0..=20)
            .map(|i| Sample {
                t: i * 15_000,
                v: i as f64 * step,
            })
            .collect();
        st.add(
            Labels::from_pairs([("__name__", "reqs"), ("instance", inst)]),
            &samples,
        );
    }
    st
}

#[test]
fn instant_rate_and_json() {
    let e = Engine::new(EngineOptions::default());
    let r = e
        .instant(&storage(), "sum(rate(reqs[1m]))", 300_000)
        .expect("query");
    let Value::Vector(v) = &r.value else {
        panic!("expected a vector, got {:?}", r.value)
    };
    assert_eq!(v.len(), 1);
    assert!((v[0].v - 0.2).abs() < 1e-9, "got {}", v[0].v);
    let r = e.instant(&storage(), "sum(reqs)", 300_000).expect("query");
    assert_eq!(
        format_value_bytes(&r),
        r#"{"resultType":"vector","result":[{"metric":{},"value":[300,"60"]}]}"#
    );
}

#[test]
fn range_query_steps_and_names() {
    let e = Engine::new(EngineOptions::default());
    let r = e
        .range(&storage(), "reqs * 2", 0, 60_000, 30_000)
        .expect("query");
    let Value::Matrix(m) = &r.value else {
        panic!("expected a matrix")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels, Labels::from_pairs([("instance", "a")]));
    assert_eq!(
        m[0].points.iter().map(|p| p.v).collect::<Vec<_>>(),
        vec![0.0, 4.0, 8.0]
    );
}

#[test]
fn errors_map_to_prometheus_error_types() {
    let e = Engine::new(EngineOptions::default());
    let parse = e.instant(&storage(), "sum(", 0).unwrap_err();
    assert_eq!(parse.error_type(), "bad_data");
    let many = e
        .instant(&storage(), "reqs + on() reqs", 60_000)
        .unwrap_err();
    assert_eq!(many.error_type(), "execution");
    assert!(
        many.to_string()
            .contains("many-to-many matching not allowed"),
        "{many}"
    );
    let matrix = e
        .range(&storage(), "reqs[1m]", 0, 60_000, 15_000)
        .unwrap_err();
    assert!(matrix.to_string().contains("range vector"), "{matrix}");
}

#[test]
fn max_samples_is_enforced() {
    let e = Engine::new(EngineOptions {
        max_samples: 5,
        ..EngineOptions::default()
    });
    let err = e
        .instant(&storage(), "count_over_time(reqs[5m])", 300_000)
        .unwrap_err();
    assert!(err.to_string().contains("too many samples"), "{err}");
    let ok = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    assert!(ok
        .instant(&storage(), "count_over_time(reqs[5m])", 300_000)
        .is_ok());
}

#[test]
fn cancel_and_timeout() {
    let e = Engine::new(EngineOptions::default());
    let cancel = AtomicBool::new(true);
    let err = e
        .instant_with_cancel(&storage(), "reqs", 0, Some(&cancel))
        .unwrap_err();
    assert!(matches!(err, PromqlError::Canceled(_)), "{err:?}");
    assert_eq!(err.error_type(), "canceled");
    let slow = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    let err = slow
        .range(&storage(), "reqs", 0, 300_000, 15_000)
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout");
}

/// A storage whose only series is stored as a native histogram chunk.
struct HistogramStore;

impl Queryable for HistogramStore {
    fn select(
        &self,
        _m: &[Matcher],
        _mint: i64,
        _maxt: i64,
        _h: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        Ok(vec![Series {
            labels: Labels::from_pairs([("__name__", "h")]),
            chunks: vec![EncodedChunk {
                min_time: 0,
                max_time: 0,
                encoding: 2,
                data: vec![0u8, 0].into(),
            }],
        }])
    }
    fn label_names(&self, _m: &[Matcher], _mint: i64, _maxt: i64) -> QueryResult<Vec<String>> {
        Ok(vec![])
    }
    fn label_values(
        &self,
        _n: &str,
        _m: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> QueryResult<Vec<String>> {
        Ok(vec![])
    }
}

#[test]
fn native_histogram_chunks_give_a_clear_error() {
    let e = Engine::new(EngineOptions::default());
    let err = e.instant(&HistogramStore, "h", 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("native histograms are not supported yet"),
        "{err}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Malformed or odd query text yields an error or a result, never a panic.
    #[test]
    fn arbitrary_query_text_never_panics(q in r#"[a-z_(){}\[\]"'`\\:,=~!@+*/^%<>. 0-9-]{0,40}"#) {
        let e = Engine::new(EngineOptions::default());
        let _ = e.instant(&storage(), &q, 60_000);
        let _ = e.range(&storage(), &q, 0, 60_000, 15_000);
    }

    /// Queries built from valid pieces evaluate the same as an instant query and as the
    /// matching step of a range query.
    #[test]
    fn instant_matches_range_step(f in proptest::sample::select(vec![
        "reqs", "rate(reqs[1m])", "sum by (instance) (reqs)", "max_over_time(reqs[2m:30s])",
        "reqs offset 1m", "-reqs", "reqs > 10", "topk(1, reqs)", "absent(nope)",
    ]), t in 0i64..20) {
        let e = Engine::new(EngineOptions::default());
        let at = t * 15_000;
        let inst = e.instant(&storage(), f, at).expect("instant");
        let rng = e.range(&storage(), f, at, at, 15_000).expect("range");
        let (Value::Vector(v), Value::Matrix(m)) = (&inst.value, &rng.value) else {
            panic!("unexpected types");
        };
        proptest::prop_assert_eq!(v.len(), m.len());
        for s in v {
            let series = m.iter().find(|r| r.labels == s.labels).expect("series in range result");
            proptest::prop_assert_eq!(series.points.len(), 1);
            proptest::prop_assert!((series.points[0].v - s.v).abs() < 1e-9 || (s.v.is_nan() && series.points[0].v.is_nan()));
        }
    }
}

#[test]
fn name_removal_modes() {
    let q = r#"label_replace(rate(reqs{instance="a"}[1m]), "n", "$1", "__name__", "(.+)")"#;
    let stock = Engine::new(EngineOptions::default());
    let r = stock.instant(&storage(), q, 300_000).expect("query");
    let Value::Vector(v) = &r.value else {
        panic!("expected a vector")
    };
    assert_eq!(v[0].labels, Labels::from_pairs([("instance", "a")]));
    let delayed = Engine::new(EngineOptions {
        delayed_name_removal: true,
        ..EngineOptions::default()
    });
    let r = delayed.instant(&storage(), q, 300_000).expect("query");
    let Value::Vector(v) = &r.value else {
        panic!("expected a vector")
    };
    assert_eq!(
        v[0].labels,
        Labels::from_pairs([("instance", "a"), ("n", "reqs")])
    );
}

#[test]
fn loaded_sample_budget_bounds_memory() {
    let e = Engine::new(EngineOptions {
        max_loaded_samples: 30,
        ..EngineOptions::default()
    });
    let err = e.range(&storage(), "reqs", 0, 300_000, 15_000).unwrap_err();
    assert!(err.to_string().contains("too many samples"), "{err}");
    let ok = Engine::new(EngineOptions {
        max_loaded_samples: 100,
        ..EngineOptions::default()
    });
    assert!(ok.range(&storage(), "reqs", 0, 300_000, 15_000).is_ok());
}

#[test]
fn extreme_times_do_not_overflow() {
    let e = Engine::new(EngineOptions::default());
    for (q, t) in [
        ("reqs offset -200y", i64::MAX),
        ("rate(reqs[200y] @ 100)", i64::MIN),
    ] {
        let r = e.instant(&storage(), q, t);
        assert!(r.is_ok(), "{q}: {r:?}");
    }
    let err = e
        .range(&storage(), "reqs", i64::MIN, i64::MAX, 1)
        .unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    // Prometheus's rule: (end - start) / step may be 11,000 but not more.
    assert!(e.range(&storage(), "reqs", 0, 11_000_000, 1000).is_ok());
    let err = e
        .range(&storage(), "reqs", 0, 11_001_000, 1000)
        .unwrap_err();
    assert!(err.to_string().contains("11,000 points"), "{err}");
}

/// 400 series × 120 samples: more than the engine decodes on the calling thread, so the
/// pooled decoding and the parallel fetch of two selectors run, and must agree with the
/// data; a budget below the real count still stops the query.
#[test]
fn large_selections_decode_in_parallel_within_the_budget() {
    let mut st = MemStorage::new();
    for s in 0..400 {
        let samples: Vec<Sample> = (0..120)
            .map(|i| Sample {
                t: i * 15_000,
                v: s as f64,
            })
            .collect();
        st.add(
            Labels::from_pairs([("__name__", "big"), ("s", &format!("{s:03}"))]),
            &samples,
        );
    }
    let end = 119 * 15_000;
    let e = Engine::new(EngineOptions::default());
    let r = e
        .instant(&st, "sum(count_over_time(big[1h]))", end)
        .expect("query");
    let Value::Vector(v) = &r.value else {
        panic!("expected a vector, got {:?}", r.value)
    };
    assert_eq!(v[0].v, 48_000.0);
    let r = e
        .instant(&st, "sum(big) - sum(big offset 1m)", end)
        .expect("query");
    let Value::Vector(v) = &r.value else {
        panic!("expected a vector, got {:?}", r.value)
    };
    assert_eq!(v[0].v, 0.0);
    let tight = Engine::new(EngineOptions {
        max_loaded_samples: 40_000,
        ..EngineOptions::default()
    });
    let err = tight
        .instant(&st, "sum(count_over_time(big[1h]))", end)
        .unwrap_err();
    assert!(err.to_string().contains("too many samples"), "{err}");
}
