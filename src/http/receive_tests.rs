use super::*;
use crate::storage::chunkenc::SeriesIterator;
use crate::storage::db::DbOptions;
use crate::storage::model::{Labels, Matcher, Queryable, SelectHints};

fn db(dir: &std::path::Path) -> Db {
    Db::open(
        dir,
        DbOptions {
            wal_fsync: false,
            wal_segment_size: 64 * 1024,
            ..DbOptions::default()
        },
    )
    .unwrap()
}

fn stored(db: &Db) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let m = [Matcher::new(crate::storage::model::MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    let mut out = Vec::new();
    for s in db
        .select(&m, i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap()
    {
        let mut it = SeriesIterator::new(s.chunks);
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v));
        }
        out.push((s.labels, v));
    }
    out
}

fn series(name: &str, samples: &[(i64, f64)]) -> (Labels, Vec<(i64, f64)>) {
    (Labels::from_pairs([("__name__", name)]), samples.to_vec())
}

#[test]
fn a_retried_request_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let now = crate::time::now_ms();
    let batch = vec![
        series("a", &[(now, 1.0), (now + 1000, 2.0)]),
        series("b", &[(now, 5.0)]),
    ];
    assert_eq!(
        append_tolerant(&db, &batch, None).unwrap(),
        AppendReport::default()
    );
    assert_eq!(
        append_tolerant(&db, &batch, None).unwrap(),
        AppendReport::default()
    );
    assert_eq!(stored(&db), batch);
}

#[test]
fn refused_samples_are_skipped_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let now = crate::time::now_ms();
    append_tolerant(&db, &vec![series("a", &[(now, 1.0)])], None).unwrap();
    let batch = vec![
        // out of order, then a new value at the stored timestamp, then a good one
        series("a", &[(now - 1000, 0.0), (now, 9.0), (now + 1000, 2.0)]),
        series("b", &[(now, 5.0)]),
    ];
    let report = append_tolerant(&db, &batch, None).unwrap();
    assert_eq!(report.refused, 2);
    assert!(report.first_refusal.is_some());
    assert_eq!(
        stored(&db),
        vec![
            series("a", &[(now, 1.0), (now + 1000, 2.0)]),
            series("b", &[(now, 5.0)])
        ]
    );
}

#[test]
fn only_the_given_indexes_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let now = crate::time::now_ms();
    let batch = vec![
        series("a", &[(now, 1.0)]),
        series("b", &[(now, 2.0)]),
        series("c", &[(now, 3.0)]),
    ];
    append_tolerant(&db, &batch, Some(&[0, 2])).unwrap();
    assert_eq!(stored(&db), vec![batch[0].clone(), batch[2].clone()]);
}

#[test]
fn encode_indexed_round_trips_a_share() {
    let batch = vec![series("a", &[(1, 1.0)]), series("b", &[(2, 2.0), (3, 3.0)])];
    let got = decode(&encode_indexed(&batch, &[1])).unwrap();
    assert_eq!(got, vec![batch[1].clone()]);
}

#[test]
fn request_limits_answer_413() {
    let batch = vec![series("a", &[(1, 1.0), (2, 2.0)]), series("b", &[(1, 1.0)])];
    check_request_limits(&batch, 0, 0).unwrap();
    check_request_limits(&batch, 2, 3).unwrap();
    let e = check_request_limits(&batch, 1, 0).unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e = check_request_limits(&batch, 0, 2).unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn tenant_rate_is_a_token_bucket() {
    let rates = TenantRates::default();
    let t0 = Instant::now();
    assert!(rates.take("t", 100, 60, t0));
    assert!(!rates.take("t", 100, 60, t0));
    assert!(rates.take("other", 100, 60, t0));
    assert!(rates.take("t", 100, 60, t0 + Duration::from_millis(300)));
    // One request over a second's worth passes on a full bucket, then owes it.
    assert!(rates.take("big", 100, 500, t0));
    assert!(!rates.take("big", 100, 1, t0 + Duration::from_secs(3)));
    assert!(rates.take("big", 100, 1, t0 + Duration::from_secs(5)));
}

#[test]
fn statuses_tell_prometheus_whether_to_retry() {
    assert_eq!(
        ReceiveError::Payload(String::new()).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        ReceiveError::Quorum(String::new()).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        ReceiveError::Overloaded(1).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        ReceiveError::Conflict(String::new()).status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        ReceiveError::RateLimited {
            tenant: String::new(),
            limit: 1
        }
        .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(validate_tenant("team-a").is_ok());
    assert!(validate_tenant("../x").is_err());
}

#[test]
fn an_older_sample_already_stored_is_not_refused_but_a_different_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let now = crate::time::now_ms();
    let batch = vec![series(
        "a",
        &[(now, 1.0), (now + 1000, 2.0), (now + 2000, 3.0)],
    )];
    append_tolerant(&db, &batch, None).unwrap();
    let retry = vec![series(
        "a",
        &[(now, 1.0), (now + 1000, 2.0), (now + 3000, 4.0)],
    )];
    assert_eq!(
        append_tolerant(&db, &retry, None).unwrap(),
        AppendReport::default()
    );
    let bad = vec![series("a", &[(now + 500, 7.0), (now + 1000, 2.5)])];
    assert_eq!(append_tolerant(&db, &bad, None).unwrap().refused, 2);
    assert_eq!(
        stored(&db),
        vec![series(
            "a",
            &[
                (now, 1.0),
                (now + 1000, 2.0),
                (now + 2000, 3.0),
                (now + 3000, 4.0)
            ]
        )]
    );
}
