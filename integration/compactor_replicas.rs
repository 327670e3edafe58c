//! The compactor and HA replicas, end to end: two replicas of the same data, each with holes at
//! other times, made by promtool, uploaded to a real S3 server (s3s-fs) with their replica
//! labels and compacted by `strata tools bucket compact`. The bucket then holds one stream
//! without the replica label, and a query node reading it *without* query-time dedup answers a
//! broad set of PromQL queries like Prometheus 2.42 serving the complete data. Also: queries
//! hammering a node while a pass runs never see doubled series or counts, not even in the window
//! where the compacted block is uploaded and its inputs are not yet marked.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use strata_testing::{http_client, wait_until, Prometheus, S3Server, TestNode};

use crate::compactor::{bucket_blocks, promtool_blocks};
use crate::shipping_cli::{promtool_create_blocks, strata};

const HOUR_S: i64 = 3600;
const STEP_S: i64 = 15;
/// 12h of data: one complete 8h range (compacted) and the newest 2h blocks, left alone as
/// Prometheus's planner does (the newest block is never planned, and an 8h range is compacted
/// once a newer block starts at or after its end).
const SPAN_S: i64 = 12 * HOUR_S;

/// Holes (seconds from the start, half-open) of each replica.
const HOLES_R1: &[(i64, i64)] = &[(7_800, 9_600), (21_600, 21_900), (30_000, 30_060)];
const HOLES_R2: &[(i64, i64)] = &[(10_800, 13_800), (32_400, 33_600), (600, 615)];

fn start_s() -> i64 {
    1_700_000_000i64 / (8 * HOUR_S) * (8 * HOUR_S)
}

/// OpenMetrics text of the whole data set, with the samples whose offset falls in a hole left
/// out. Counters with resets, gauges, cumulative histogram buckets, and a series only one
/// replica (`only_r2`) ever had.
fn dataset(holes: &[(i64, i64)], only_r2: bool) -> String {
    let in_hole = |off: i64| holes.iter().any(|(a, b)| off >= *a && off < *b);
    let n = SPAN_S / STEP_S;
    let start = start_s();
    let mut om = String::new();
    om.push_str("# TYPE rr_requests counter\n");
    for job in ["api", "web"] {
        for inst in 0..3i64 {
            let mut v = 0i64;
            for i in 0..n {
                let off = i * STEP_S;
                // A restart every ~3h (different per instance) resets the counter.
                if i > 0 && (i + inst * 97) % 733 == 0 {
                    v = 0;
                }
                v += 1 + (i * (inst + 2)) % 7;
                if !in_hole(off) {
                    let _ = writeln!(
                        om,
                        "rr_requests_total{{job=\"{job}\",instance=\"i{inst}\"}} {v} {}",
                        start + off
                    );
                }
            }
        }
    }
    om.push_str("# TYPE rr_temp gauge\n");
    for (z, zone) in ["north", "south", "east"].iter().enumerate() {
        for i in 0..n {
            let off = i * STEP_S;
            if !in_hole(off) {
                let v = 20.0 + ((i as f64) / (40.0 + z as f64 * 7.0)).sin() * 5.0 + z as f64;
                let _ = writeln!(om, "rr_temp{{zone=\"{zone}\"}} {v} {}", start + off);
            }
        }
    }
    // Classic histogram buckets as cumulative counters (a gauge family keeps promtool's
    // OpenMetrics parser from insisting on _sum/_count).
    om.push_str("# TYPE rr_latency_seconds_bucket gauge\n");
    for (k, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
        let mut acc = 0i64;
        for i in 0..n {
            let off = i * STEP_S;
            acc += (k as i64 + 1) * (1 + i % 5);
            if !in_hole(off) {
                let _ = writeln!(
                    om,
                    "rr_latency_seconds_bucket{{le=\"{le}\"}} {acc} {}",
                    start + off
                );
            }
        }
    }
    if only_r2 {
        om.push_str("# TYPE rr_only_r2 gauge\n");
        for i in (n / 3)..(n / 2) {
            let off = i * STEP_S;
            let _ = writeln!(om, "rr_only_r2 {} {}", i % 11, start + off);
        }
    }
    om.push_str("# EOF\n");
    om
}

/// promtool blocks of `om` in `<dir>/prom-data`.
fn blocks_of(dir: &Path, om: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    promtool_create_blocks(dir, om)
}

fn config_for(dir: &Path, s3: &S3Server, replica: &str, compactor_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("strata.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels: {{cluster: eu1, replica: {replica}}}\nnode:\n  data_dir: {}\n\
             compactor:\n  consistency_delay: 0s\n  delete_delay: 0s\n{compactor_extra}{}",
            dir.join("data").display(),
            s3.bucket_yaml()
        ),
    )
    .unwrap();
    cfg
}

/// Runs compaction passes until one writes nothing (at most `max`); returns the passes run.
fn compact_until_stable(cfg: &Path, max: usize) -> usize {
    for pass in 1..=max {
        let (ok, out, err) = strata(&["tools", "bucket", "compact"], cfg);
        assert!(ok, "compact pass {pass} failed: {out}\n{err}");
        let written = out
            .lines()
            .find(|l| l.starts_with("blocks written"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no summary: {out}"));
        if written == 0 {
            return pass;
        }
    }
    panic!("compaction did not settle in {max} passes");
}

async fn get(base: &str, path: &str, form: &[(&str, String)]) -> Value {
    http_client()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A query's result as `metric JSON -> [(t, value)]` (instant results give one point). Strata
/// answers from the bucket with the blocks' external labels, as a Thanos querier does; Prometheus
/// never shows its own, so `cluster="eu1"` is taken off (and must be the only extra label).
fn series_of(v: &Value) -> BTreeMap<String, Vec<(f64, String)>> {
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    for s in result {
        let mut metric = s["metric"].as_object().cloned().unwrap_or_default();
        if metric.get("cluster").and_then(|c| c.as_str()) == Some("eu1") {
            metric.remove("cluster");
        }
        let key = Value::Object(metric).to_string();
        let pts: Vec<(f64, String)> = match s.get("values") {
            Some(vals) => vals
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
                .collect(),
            None => vec![(
                s["value"][0].as_f64().unwrap(),
                s["value"][1].as_str().unwrap().to_string(),
            )],
        };
        out.insert(key, pts);
    }
    out
}

/// Equal up to float summation order (1e-9 relative); NaN equals NaN.
fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => false,
    }
}

fn diff(
    expr: &str,
    want: &BTreeMap<String, Vec<(f64, String)>>,
    got: &BTreeMap<String, Vec<(f64, String)>>,
) -> Option<String> {
    if want.keys().ne(got.keys()) {
        return Some(format!(
            "{expr}: series differ\n prometheus: {:?}\n strata: {:?}",
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        ));
    }
    for (k, w) in want {
        let g = &got[k];
        if w.len() != g.len() {
            return Some(format!(
                "{expr} {k}: {} points from Prometheus, {} from Strata",
                w.len(),
                g.len()
            ));
        }
        for (a, b) in w.iter().zip(g) {
            if a.0 != b.0 || !same_value(&a.1, &b.1) {
                return Some(format!("{expr} {k}: Prometheus {a:?}, Strata {b:?}"));
            }
        }
    }
    None
}

const QUERIES: &[&str] = &[
    "rr_requests_total",
    "rr_temp",
    "rr_only_r2",
    "count(rr_requests_total)",
    "rate(rr_requests_total[5m])",
    "irate(rr_requests_total[2m])",
    "increase(rr_requests_total[1h])",
    "sum by (job) (rate(rr_requests_total[10m]))",
    "resets(rr_requests_total[1h])",
    "count_over_time(rr_requests_total[30m])",
    "count_over_time(rr_temp[1h])",
    "min_over_time(rr_temp[20m])",
    "max_over_time(rr_temp[20m])",
    "avg_over_time(rr_temp[15m])",
    "sum_over_time(rr_temp[10m])",
    "stddev_over_time(rr_temp[30m])",
    "quantile_over_time(0.75, rr_temp[30m])",
    "changes(rr_temp[30m])",
    "deriv(rr_temp[10m])",
    "delta(rr_temp[20m])",
    "last_over_time(rr_only_r2[10m])",
    "absent_over_time(rr_temp[5m])",
    "timestamp(rr_temp)",
    "topk(2, rr_temp)",
    "histogram_quantile(0.9, rr_latency_seconds_bucket)",
    "histogram_quantile(0.5, sum by (le) (rate(rr_latency_seconds_bucket[10m])))",
    "sum(rr_requests_total) / count(rr_requests_total)",
];

#[actix_rt::test]
async fn holed_replicas_compact_to_one_stream_that_answers_like_prometheus_on_the_complete_data() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let complete = blocks_of(&tmp.path().join("complete"), &dataset(&[], true));
    let r1 = blocks_of(&tmp.path().join("r1"), &dataset(HOLES_R1, false));
    let r2 = blocks_of(&tmp.path().join("r2"), &dataset(HOLES_R2, true));
    for (name, blocks) in [("r1", &r1), ("r2", &r2)] {
        let cfg = config_for(&tmp.path().join(format!("cfg-{name}")), &s3, name, "");
        let (ok, out, err) = strata(
            &["tools", "bucket", "upload", blocks.to_str().unwrap()],
            &cfg,
        );
        assert!(ok, "upload of {name} failed: {out}{err}");
    }
    assert_eq!(bucket_blocks(&s3.bucket_dir()).len(), 12, "6 blocks each");

    let cfg = config_for(&tmp.path().join("cfg-compactor"), &s3, "compactor", "");
    let passes = compact_until_stable(&cfg, 4);
    println!("compaction settled after {passes} passes");
    let visible: Vec<(String, Value, bool)> = bucket_blocks(&s3.bucket_dir())
        .into_iter()
        .filter(|b| !b.2)
        .collect();
    for (ulid, meta, _) in &visible {
        let labels = meta["thanos"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            labels.get("replica").is_none(),
            "block {ulid} still has the replica label: {meta}"
        );
    }
    let hours: Vec<i64> = visible
        .iter()
        .map(|(_, m, _)| {
            (m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap() + 1_800_000)
                / 3_600_000
        })
        .collect();
    assert_eq!(
        hours,
        vec![8, 2, 2],
        "one 8h block and the newest 2h blocks: {visible:?}"
    );

    let node = TestNode::builder()
        .roles(&["store_shard", "query_planner"])
        .yaml(&s3.bucket_yaml())
        .start()
        .await;
    wait_until(
        "the StoreShard to serve the compacted blocks",
        Duration::from_secs(60),
        || async { blocks_serving(&node).await == Some(3) },
    )
    .await;
    let prom =
        Prometheus::start_with_blocks("global:\n  scrape_interval: 15s\n", Some(&complete)).await;

    let start = start_s();
    // Evaluation times never coincide with a sample (samples are on multiples of 15 s): Strata
    // follows PromQL 3.x (range selectors open on the left), Prometheus 2.42 closes them, and
    // the two agree whenever no sample lies exactly on a window's left edge.
    let (from, to) = (start + 607, start + SPAN_S - 53);
    let mut failures = Vec::new();
    for expr in QUERIES {
        let range = [
            ("query", expr.to_string()),
            ("start", from.to_string()),
            ("end", to.to_string()),
            ("step", "60".to_string()),
        ];
        let want = series_of(&get(&prom.base, "/api/v1/query_range", &range).await);
        let mut ours = range.to_vec();
        ours.push(("dedup", "false".to_string()));
        let got = series_of(&get(&node.base, "/api/v1/query_range", &ours).await);
        assert!(
            !want.is_empty() || expr.starts_with("absent"),
            "{expr}: Prometheus has no data"
        );
        failures.extend(diff(expr, &want, &got));
        // Instants inside each replica's holes and at the block boundary.
        for t in [
            start + 9_007,
            start + 12_007,
            start + 8 * HOUR_S + 7,
            start + 32_707,
        ] {
            let q = [("query", expr.to_string()), ("time", t.to_string())];
            let want = series_of(&get(&prom.base, "/api/v1/query", &q).await);
            let mut ours = q.to_vec();
            ours.push(("dedup", "false".to_string()));
            let got = series_of(&get(&node.base, "/api/v1/query", &ours).await);
            failures.extend(diff(&format!("{expr} @ {t}"), &want, &got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
    node.handle.stop().await;
}

/// The StoreShard's `blocks_serving` on `node`.
async fn blocks_serving(node: &TestNode) -> Option<u64> {
    let v = node.get_json("/api/v1/admin/roles").await;
    v["data"]["roles"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["role"] == "store_shard"))
        .and_then(|r| r["detail"]["blocks_serving"].as_u64())
}

/// Three answers that double if a block and its compacted copy are both read: the number of
/// series, the number of samples over the whole day, and the series count at every step.
async fn hammer_answers(base: &str, start: i64, dedup: bool) -> (String, String, Vec<String>) {
    let dedup = dedup.to_string();
    let instant = |q: &str, t: i64| {
        vec![
            ("query", q.to_string()),
            ("time", t.to_string()),
            ("dedup", dedup.clone()),
        ]
    };
    let count = get(
        base,
        "/api/v1/query",
        &instant("count(cmp_gauge)", start + 12 * HOUR_S),
    )
    .await;
    let samples = get(
        base,
        "/api/v1/query",
        &instant(
            "sum(count_over_time(cmp_gauge[1d])) + sum(count_over_time(cmp_requests_total[1d]))",
            start + 24 * HOUR_S,
        ),
    )
    .await;
    let range = get(
        base,
        "/api/v1/query_range",
        &[
            ("query", "count(cmp_requests_total)".to_string()),
            ("start", start.to_string()),
            ("end", (start + 24 * HOUR_S - 60).to_string()),
            ("step", "600".to_string()),
            ("dedup", dedup.clone()),
        ],
    )
    .await;
    let value = |v: &Value| {
        v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("none")
            .to_string()
    };
    let steps = range["data"]["result"][0]["values"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p[1].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default();
    (value(&count), value(&samples), steps)
}

#[actix_rt::test]
async fn queries_during_a_compaction_pass_never_see_doubled_series_or_samples() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let prom = promtool_blocks(tmp.path(), 24);
    // Without vertical dedup the compacted blocks keep the replica label, so the same series
    // in a compacted block and in its inputs are one series to a query without dedup: reading
    // both would show as doubled samples. (With dedup the compacted stream drops the replica
    // label, as Thanos's does, and a query without dedup sees two label sets at its edge.)
    let cfg = config_for(&tmp.path().join("cfg"), &s3, "r1", "  dedup: false\n");
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");
    let node = TestNode::builder()
        .roles(&["store_shard", "query_planner"])
        .yaml(&s3.bucket_yaml())
        .start()
        .await;
    wait_until(
        "the StoreShard to serve the 12 blocks",
        Duration::from_secs(60),
        || async { blocks_serving(&node).await == Some(12) },
    )
    .await;
    let start = start_s();
    let baseline = hammer_answers(&node.base, start, false).await;
    assert_eq!(baseline.0, "3", "{baseline:?}");
    // Two metrics of three jobs, a sample a minute; the 1d window is open on the left.
    assert_eq!(
        baseline.1,
        (2 * 3 * (24 * 60 - 1)).to_string(),
        "{baseline:?}"
    );
    assert!(
        baseline.2.len() > 100 && baseline.2.iter().all(|v| v == "3"),
        "{baseline:?}"
    );

    // Hold the compactor right after its first compacted block is visible: its inputs are
    // not marked yet, so only the sources in the new block's meta keep them from counting.
    s3.hold_puts("deletion-mark.json");
    let mut child = strata_testing::ChildGuard::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["tools", "bucket", "compact", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        "strata",
    );
    let (mut during_hold, mut total) = (0, 0);
    let mut released = false;
    let mut exited = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the pass did not finish"
        );
        for dedup in [false, true] {
            let answers = hammer_answers(&node.base, start, dedup).await;
            assert_eq!(
                answers, baseline,
                "a query (dedup {dedup}) during compaction saw different data"
            );
        }
        total += 1;
        let serving = blocks_serving(&node).await;
        if !released && !s3.held().is_empty() && serving == Some(9) {
            // One new 8h block and eight inputs served, four inputs hidden by its sources.
            during_hold += 1;
            if during_hold >= 5 {
                s3.release();
                released = true;
            }
        }
        if exited.is_none() {
            exited = child.child.try_wait().unwrap();
        }
        if released && exited.is_some() && serving == Some(6) {
            break;
        }
    }
    assert!(exited.unwrap().success(), "the compact pass failed");
    assert!(during_hold >= 5, "never queried the half-compacted bucket");
    let after = hammer_answers(&node.base, start, false).await;
    assert_eq!(after, baseline);
    println!("{total} query rounds, {during_hold} with a compacted block and its inputs both in the bucket");
    node.handle.stop().await;
}
