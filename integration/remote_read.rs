//! Remote read (`POST /api/v1/read`) against the real thing: a Strata node holds data pushed
//! by remote write; a Prometheus 2.42 with no data of its own and `remote_read` pointed at
//! Strata answers PromQL (instant and range: raw selectors, rate, sum by) exactly as Strata
//! answers the same queries. Both answer types are read directly too: the sampled answer of a
//! request that accepts only SAMPLES, and the streamed XOR-chunk frames, which must hold the
//! same samples. Bad bodies and bad matchers answer 400 with the reason. Also the helpers
//! `sidecar` shares: comparing two Prometheus API answers.

use std::collections::BTreeMap;

use serde_json::Value;
use strata::http::remote_write;
use strata::remote::prompb::{
    LabelMatcher, MatcherType, Query, ReadRequest, ResponseType, STREAMED_CONTENT_TYPE,
};
use strata::remote::read::{decode_sampled, encode_request, FrameDecoder};
use strata::storage::chunkenc::SeriesIterator;
use strata::storage::model::Labels;
use strata_testing::{http_client, now_ms, remote_write as push, Prometheus, TestNode};

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 120; // 30 minutes

/// Counters and gauges over 30 minutes ending before `end_ms`, on even milliseconds (queries
/// run at odd ones, so 2.42's left-closed ranges select what 3.x's left-open ones do).
fn dataset(end_ms: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let start = (end_ms - POINTS * STEP_MS) / 1000 * 1000;
    let mut out = Vec::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for job in ["api", "web"] {
        for inst in 0..3 {
            let instance = format!("i{inst}");
            let mut v = 10_000.0;
            let mut counter = Vec::new();
            let mut gauge = Vec::new();
            for i in 0..POINTS {
                let t = start + i * STEP_MS + 2 * (1 + (next() % 400) as i64);
                v += (next() % 40) as f64;
                counter.push((t, v));
                gauge.push((t, (next() % 1000) as f64 / 10.0));
            }
            out.push((
                Labels::from_pairs([
                    ("__name__", "rr_requests_total"),
                    ("job", job),
                    ("instance", instance.as_str()),
                ]),
                counter,
            ));
            out.push((
                Labels::from_pairs([
                    ("__name__", "rr_temperature"),
                    ("job", job),
                    ("instance", instance.as_str()),
                ]),
                gauge,
            ));
        }
    }
    out
}

const INSTANT: &[&str] = &[
    "rr_requests_total",
    "rr_temperature{job=\"api\"}",
    "rr_requests_total[2m]",
    "rate(rr_requests_total[5m])",
    "sum by (job) (rate(rr_requests_total[5m]))",
    "increase(rr_requests_total[10m])",
    "max_over_time(rr_temperature[10m])",
    "sum(rr_temperature) by (instance)",
    "count({__name__=~\"rr_.*\"})",
];

const RANGE: &[&str] = &[
    "rr_temperature",
    "rate(rr_requests_total[5m])",
    "sum by (job) (rate(rr_requests_total[5m]))",
    "avg_over_time(rr_temperature[5m])",
];

/// Series of an API answer keyed by their labels, each with its points as printed.
fn keyed(data: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let Some(result) = data["result"].as_array() else {
        return out;
    };
    for r in result {
        let mut points = Vec::new();
        if let Some(v) = r.get("value") {
            points.push((v[0].to_string(), v[1].to_string()));
        }
        for v in r["values"].as_array().into_iter().flatten() {
            points.push((v[0].to_string(), v[1].to_string()));
        }
        out.insert(r["metric"].to_string(), points);
    }
    out
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let parse = |s: &str| s.trim_matches('"').parse::<f64>().ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

/// Compares two answers of the Prometheus query API: same status and type, same series,
/// same points (values equal up to float rounding).
pub fn compare(what: &str, ours: &Value, theirs: &Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!("{what}: status: strata {ours} prometheus {theirs}"));
    }
    let (a, b) = (&ours["data"], &theirs["data"]);
    if a["resultType"] != b["resultType"] {
        return Err(format!(
            "{what}: {} vs {}",
            a["resultType"], b["resultType"]
        ));
    }
    let (ka, kb) = (keyed(a), keyed(b));
    if ka.keys().ne(kb.keys()) {
        return Err(format!(
            "{what}: series differ:\nstrata:     {:?}\nprometheus: {:?}",
            ka.keys(),
            kb.keys()
        ));
    }
    for (k, pa) in &ka {
        let pb = &kb[k];
        let same = pa.len() == pb.len()
            && pa
                .iter()
                .zip(pb)
                .all(|(x, y)| x.0 == y.0 && close(&x.1, &y.1));
        if !same {
            return Err(format!(
                "{what}: {k}:\nstrata:     {pa:?}\nprometheus: {pb:?}"
            ));
        }
    }
    Ok(())
}

/// One call of the query API.
pub async fn api(base: &str, path: &str, params: &[(&str, String)]) -> Value {
    http_client()
        .post(format!("{base}{path}"))
        .form(params)
        .send()
        .await
        .expect("query request")
        .json()
        .await
        .expect("json answer")
}

/// Runs `instant` at `t` (s) and `range` over `[start, t]` on both servers; returns the
/// differences and how many answers held data.
pub async fn compare_queries(
    ours: &str,
    theirs: &str,
    instant: &[&str],
    range: &[&str],
    start: f64,
    t: f64,
    step: &str,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut non_empty = 0;
    for q in instant {
        let p = [("query", q.to_string()), ("time", format!("{t:.3}"))];
        let (a, b) = (
            api(ours, "/api/v1/query", &p).await,
            api(theirs, "/api/v1/query", &p).await,
        );
        non_empty += usize::from(
            b["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
        );
        if let Err(e) = compare(q, &a, &b) {
            failures.push(e);
        }
    }
    for q in range {
        let p = [
            ("query", q.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{t:.3}")),
            ("step", step.to_string()),
        ];
        let (a, b) = (
            api(ours, "/api/v1/query_range", &p).await,
            api(theirs, "/api/v1/query_range", &p).await,
        );
        non_empty += usize::from(
            b["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
        );
        if let Err(e) = compare(&format!("range {q}"), &a, &b) {
            failures.push(e);
        }
    }
    (failures, non_empty)
}

#[actix_rt::test]
async fn prometheus_2_42_reading_strata_answers_like_strata() {
    let node = TestNode::builder().start().await;
    node.wait_ready().await;
    let now = now_ms();
    push(&node.base, remote_write::encode(&dataset(now))).await;
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 15s\nremote_read:\n  - url: {}/api/v1/read\n    read_recent: true\n",
        node.base
    ))
    .await;

    let t = ((now - 60_000) / 1000) as f64 + 0.123;
    let start = t - 1500.0;
    let (failures, non_empty) =
        compare_queries(&node.base, &prom.base, INSTANT, RANGE, start, t, "30").await;
    assert!(
        failures.is_empty(),
        "{} queries differ between Strata and Prometheus reading Strata:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(
        non_empty,
        INSTANT.len() + RANGE.len(),
        "every query should find data through remote read"
    );
}

fn read_request(
    types: &[ResponseType],
    matchers: Vec<LabelMatcher>,
    mint: i64,
    maxt: i64,
) -> Vec<u8> {
    encode_request(&ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers,
            hints: None,
        }],
        accepted_response_types: types.iter().map(|t| *t as i32).collect(),
    })
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: MatcherType::Eq as i32,
        name: name.into(),
        value: value.into(),
    }
}

async fn post_read(base: &str, body: Vec<u8>) -> reqwest::Response {
    http_client()
        .post(format!("{base}/api/v1/read"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("remote read request")
}

#[actix_rt::test]
async fn sampled_and_streamed_answers_hold_the_written_samples() {
    let node = TestNode::builder().start().await;
    node.wait_ready().await;
    let now = now_ms();
    let data = dataset(now);
    push(&node.base, remote_write::encode(&data)).await;
    let (mint, maxt) = (now - 40 * 60_000, now);
    let want: BTreeMap<String, Vec<(i64, f64)>> = data
        .iter()
        .filter(|(l, _)| l.get("__name__") == Some("rr_requests_total"))
        .map(|(l, s)| {
            (
                l.get("job").unwrap_or("").to_string() + l.get("instance").unwrap_or(""),
                s.clone(),
            )
        })
        .collect();
    let key = |l: &Labels| l.get("job").unwrap_or("").to_string() + l.get("instance").unwrap_or("");

    // Only SAMPLES accepted: one snappy ReadResponse.
    let resp = post_read(
        &node.base,
        read_request(
            &[ResponseType::Samples],
            vec![eq("__name__", "rr_requests_total")],
            mint,
            maxt,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert_eq!(resp.headers()["content-encoding"], "snappy");
    let sampled = decode_sampled(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(sampled.results.len(), 1);
    let mut got = BTreeMap::new();
    for ts in &sampled.results[0].timeseries {
        let labels =
            Labels::from_pairs(ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())));
        got.insert(
            key(&labels),
            ts.samples
                .iter()
                .map(|s| (s.timestamp, s.value))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(got, want, "sampled answer");

    // Streamed chunks preferred: frames, decoded as they arrive.
    let resp = post_read(
        &node.base,
        read_request(
            &[ResponseType::StreamedXorChunks, ResponseType::Samples],
            vec![eq("__name__", "rr_requests_total")],
            mint,
            maxt,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], STREAMED_CONTENT_TYPE);
    let mut dec = FrameDecoder::default();
    let mut resp = resp;
    while let Some(b) = resp.chunk().await.unwrap() {
        dec.push(&b).unwrap();
    }
    let frames = dec.finish().unwrap();
    let mut got = BTreeMap::new();
    for s in frames.get(&0).cloned().unwrap_or_default() {
        for w in s.chunks.windows(2) {
            assert!(
                w[0].max_time < w[1].min_time,
                "streamed chunks must not overlap"
            );
        }
        let mut it = SeriesIterator::new(s.chunks.clone());
        let mut samples = Vec::new();
        while let Some(p) = it.next().unwrap() {
            samples.push((p.t, p.v));
        }
        got.insert(key(&s.labels), samples);
    }
    assert_eq!(got, want, "streamed answer");

    // Bad bodies and bad matchers: 400 with the reason.
    let resp = post_read(&node.base, b"not snappy at all".to_vec()).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("snappy"));
    let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 12]).unwrap();
    let resp = post_read(&node.base, not_proto).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("protobuf"));
    let bad_re = LabelMatcher {
        r#type: MatcherType::Re as i32,
        name: "job".into(),
        value: "(".into(),
    };
    let resp = post_read(
        &node.base,
        read_request(&[ResponseType::Samples], vec![bad_re], mint, maxt),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("invalid matcher"));
}
