//! The Prometheus HTTP API against the real thing: the same samples are remote-written to a
//! Strata node and to Debian's Prometheus 2.42, then the same queries go to both through the
//! HTTP API, `promtool query ...` and the Python `prometheus-api-client`, and the answers are
//! compared. Timestamps are jittered off range boundaries so 2.42's left-closed ranges and
//! Prometheus 3's left-open ones select the same samples.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use strata::http::remote_write;
use strata::storage::model::Labels;
use strata_testing::{
    http_client, now_ms, remote_write as push, require_binary, Prometheus, TestNode,
};

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 160; // 40 minutes

/// Deterministic test data ending shortly before `end_ms`.
fn dataset(end_ms: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let start = (end_ms - POINTS * STEP_MS) / 1000 * 1000;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Even milliseconds only, while queries run at odd ones: no range boundary ever lands on a
    // sample, where 2.42 (left-closed) and 3.x (left-open) would legitimately differ.
    let ts = |i: i64, jitter: u64| start + i * STEP_MS + 2 * (1 + (jitter % 450) as i64);
    let mut out = Vec::new();
    for job in ["api", "web"] {
        for inst in 0..4 {
            let instance = format!("i{inst}");
            for code in ["200", "500"] {
                // Counters start high and reset to a high value: 2.42 and 3.x clamp
                // extrapolation at a counter's zero point differently (#13725).
                let mut v = 10_000.0;
                let mut samples = Vec::new();
                for i in 0..POINTS {
                    v += (next() % 50) as f64;
                    // One counter reset in the middle of one series.
                    if job == "api" && inst == 1 && code == "200" && i == 80 {
                        v = 5_000.0;
                    }
                    samples.push((ts(i, next()), v));
                }
                out.push((
                    Labels::from_pairs([
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", instance.as_str()),
                        ("code", code),
                    ]),
                    samples,
                ));
            }
            let samples: Vec<(i64, f64)> = (0..POINTS)
                .map(|i| (ts(i, next()), (next() % 1_000_000) as f64 / 1e6))
                .collect();
            out.push((
                Labels::from_pairs([
                    ("__name__", "cpu_usage"),
                    ("job", job),
                    ("instance", instance.as_str()),
                ]),
                samples,
            ));
        }
        let mut counts = [0.0f64; 4];
        let mut bucket_series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 4];
        for i in 0..POINTS {
            let t = ts(i, next());
            let mut cum = 0.0;
            for (b, c) in counts.iter_mut().enumerate() {
                cum += (next() % 7) as f64;
                *c += cum;
                bucket_series[b].push((t, *c));
            }
        }
        for (b, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
            out.push((
                Labels::from_pairs([
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", job),
                    ("le", le),
                ]),
                bucket_series[b].clone(),
            ));
        }
    }
    out
}

const INSTANT_QUERIES: &[&str] = &[
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
    "topk(3, cpu_usage)",
    "bottomk(2, cpu_usage)",
    "sum by (job, instance) (rate(http_requests_total[5m])) / on (job, instance) cpu_usage",
    "rate(http_requests_total[5m]) * on (job, instance) group_left cpu_usage",
    "cpu_usage > 0.5",
    "cpu_usage > bool 0.5",
    "count(cpu_usage > 0.3)",
    "avg_over_time(cpu_usage[10m])",
    "max_over_time(cpu_usage[10m])",
    "min_over_time(cpu_usage[10m])",
    "stddev_over_time(cpu_usage[10m])",
    "quantile_over_time(0.9, cpu_usage[10m])",
    "delta(cpu_usage[10m])",
    "deriv(cpu_usage[10m])",
    "predict_linear(cpu_usage[10m], 3600)",
    "resets(http_requests_total[30m])",
    "changes(cpu_usage[10m])",
    "label_replace(cpu_usage, \"host\", \"$1\", \"instance\", \"i(.*)\")",
    "label_join(cpu_usage, \"both\", \"-\", \"job\", \"instance\")",
    "quantile(0.5, cpu_usage)",
    "stddev(cpu_usage)",
    "count_values(\"bucket\", round(cpu_usage * 10))",
    "absent(nonexistent_metric)",
    "vector(1) + 2",
    "scalar(sum(cpu_usage))",
    "sum(http_requests_total) by (code) unless sum(http_requests_total) by (code) > 1e12",
    "cpu_usage and on (instance) cpu_usage > 0.5",
    "rate(http_requests_total[5m] offset 5m)",
    "max_over_time(rate(http_requests_total[5m])[10m:1m])",
    "clamp(cpu_usage, 0.2, 0.8)",
    "abs(cpu_usage - 0.5)",
    "exp(cpu_usage)",
    "timestamp(cpu_usage)",
    "sort_desc(sum by (instance) (cpu_usage))",
    "idelta(cpu_usage[10m])",
    "sum_over_time(cpu_usage[10m])",
    "count_over_time(cpu_usage[10m])",
    "stdvar_over_time(cpu_usage[10m])",
    "last_over_time(cpu_usage[10m])",
    "present_over_time(cpu_usage[10m])",
    "absent_over_time(nonexistent_metric[10m])",
    "avg by (code) (rate(http_requests_total[5m]))",
    "min by (job) (cpu_usage)",
    "max without (instance) (cpu_usage)",
    "stdvar(cpu_usage)",
    "group by (job) (cpu_usage)",
    "quantile by (job) (0.75, cpu_usage)",
    "cpu_usage{job=\"api\"} or cpu_usage{job=\"web\"}",
    "cpu_usage unless on (job) cpu_usage{job=\"web\"}",
    "cpu_usage * on (job, instance) group_left () sum by (job, instance) (rate(http_requests_total[5m]))",
    "sort(sum by (job) (cpu_usage))",
    "ceil(cpu_usage * 10) - floor(cpu_usage * 10)",
    "clamp_min(cpu_usage, 0.5) + clamp_max(cpu_usage, 0.5)",
    "sqrt(cpu_usage) + ln(cpu_usage + 1) + log2(cpu_usage + 1) + log10(cpu_usage + 1)",
    "sgn(delta(cpu_usage[10m]))",
    "-cpu_usage % 0.3 + cpu_usage ^ 2",
    "atan2(cpu_usage, 0.5)",
    "sin(cpu_usage) + cos(cpu_usage) + tan(cpu_usage)",
    "avg_over_time(sum by (job) (cpu_usage)[10m:1m])",
    "minute(timestamp(cpu_usage))",
    "days_in_month(vector(time()))",
    "1 + 2 * 3",
];

const RANGE_QUERIES: &[&str] = &[
    "sum by (job) (rate(http_requests_total[5m]))",
    "max_over_time(cpu_usage{job=\"web\"}[5m])",
    "deriv(cpu_usage{job=\"api\"}[10m])",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "cpu_usage",
    "topk(2, cpu_usage)",
];

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
        _ => false,
    }
}

/// `result` of an API answer keyed by its metric labels; values as strings.
fn keyed(data: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let Some(result) = data["result"].as_array() else {
        return out;
    };
    for r in result {
        let key = r["metric"].to_string();
        let mut points = Vec::new();
        if let Some(v) = r.get("value") {
            points.push((v[0].to_string(), v[1].as_str().unwrap_or("").to_string()));
        }
        if let Some(vs) = r["values"].as_array() {
            points.extend(
                vs.iter()
                    .map(|v| (v[0].to_string(), v[1].as_str().unwrap_or("").to_string())),
            );
        }
        out.insert(key, points);
    }
    out
}

fn compare(what: &str, ours: &Value, theirs: &Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!(
            "{what}: status differs: strata {ours} prometheus {theirs}"
        ));
    }
    if theirs["status"] != "success" {
        return Ok(());
    }
    let (a, b) = (&ours["data"], &theirs["data"]);
    if a["resultType"] != b["resultType"] {
        return Err(format!(
            "{what}: resultType {} vs {}",
            a["resultType"], b["resultType"]
        ));
    }
    if a["resultType"] == "scalar" || a["resultType"] == "string" {
        let ok = a["result"][0] == b["result"][0]
            && close(
                a["result"][1].as_str().unwrap_or(""),
                b["result"][1].as_str().unwrap_or(""),
            );
        return if ok {
            Ok(())
        } else {
            Err(format!("{what}: {} vs {}", a["result"], b["result"]))
        };
    }
    let (ka, kb) = (keyed(a), keyed(b));
    if ka.keys().collect::<Vec<_>>() != kb.keys().collect::<Vec<_>>() {
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
    if what.contains("sort") || what.contains("topk") || what.contains("bottomk") {
        let order = |d: &Value| {
            d["result"].as_array().map(|r| {
                r.iter()
                    .map(|x| x["metric"].to_string())
                    .collect::<Vec<_>>()
            })
        };
        if a["resultType"] == "vector" && order(a) != order(b) {
            return Err(format!("{what}: order differs"));
        }
    }
    Ok(())
}

async fn api(base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let resp = http_client()
        .post(format!("{base}{path}"))
        .form(params)
        .send()
        .await
        .expect("query request");
    resp.json().await.expect("json answer")
}

fn promtool(args: &[String]) -> String {
    let out = Command::new(require_binary("promtool"))
        .args(args)
        .output()
        .expect("run promtool");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[actix_rt::test]
async fn queries_answer_like_prometheus_2_42_through_api_promtool_and_python() {
    let node = TestNode::builder().start().await;
    let prom = Prometheus::start("global:\n  scrape_interval: 15s\n").await;
    let now = now_ms();
    let data = dataset(now);
    let body = remote_write::encode(&data);
    push(&node.base, body.clone()).await;
    push(&prom.base, body).await;

    let t = ((now - 2 * 60_000) / 1000) as f64 + 0.123;
    let mut failures = Vec::new();
    for q in INSTANT_QUERIES {
        let params = [("query", q.to_string()), ("time", format!("{t:.3}"))];
        let ours = api(&node.base, "/api/v1/query", &params).await;
        let theirs = api(&prom.base, "/api/v1/query", &params).await;
        if let Err(e) = compare(q, &ours, &theirs) {
            failures.push(e);
        }
    }
    let start = t - 1800.0;
    for q in RANGE_QUERIES {
        let params = [
            ("query", q.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{t:.3}")),
            ("step", "60".to_string()),
        ];
        let ours = api(&node.base, "/api/v1/query_range", &params).await;
        let theirs = api(&prom.base, "/api/v1/query_range", &params).await;
        if let Err(e) = compare(&format!("range {q}"), &ours, &theirs) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ from Prometheus:\n{}",
        failures.len(),
        INSTANT_QUERIES.len() + RANGE_QUERIES.len(),
        failures.join("\n\n")
    );

    // promtool, the real client, prints the same text for both servers.
    let cases: Vec<Vec<String>> = vec![
        vec![
            "query".into(),
            "instant".into(),
            "URL".into(),
            "max by (job) (rate(http_requests_total[5m]))".into(),
            format!("--time={t:.3}"),
        ],
        vec![
            "query".into(),
            "range".into(),
            "URL".into(),
            "max(cpu_usage)".into(),
            format!("--start={start:.3}"),
            format!("--end={t:.3}"),
            "--step=1m".into(),
        ],
        vec![
            "query".into(),
            "series".into(),
            "URL".into(),
            "--match=cpu_usage{job=\"api\"}".into(),
        ],
        vec![
            "query".into(),
            "labels".into(),
            "URL".into(),
            "instance".into(),
        ],
    ];
    for case in cases {
        let with = |base: &str| {
            case.iter()
                .map(|a| {
                    if a == "URL" {
                        base.to_string()
                    } else {
                        a.clone()
                    }
                })
                .collect::<Vec<_>>()
        };
        let ours = promtool(&with(&node.base));
        let theirs = promtool(&with(&prom.base));
        assert!(
            !theirs.trim().is_empty(),
            "promtool printed nothing for {case:?}"
        );
        assert_eq!(ours, theirs, "promtool {case:?} differs");
    }

    // The Python client library Grafana-style tooling uses.
    let script = r#"
import json, sys
from prometheus_api_client import PrometheusConnect
out = {}
for url in sys.argv[1:3]:
    p = PrometheusConnect(url=url, disable_ssl=True)
    r = p.custom_query(query='max by (job) (rate(http_requests_total[5m]))', params={'time': sys.argv[3]})
    labels = p.get_label_values('job')
    names = sorted(p.all_metrics())
    out[url] = {'q': sorted((json.dumps(x['metric'], sort_keys=True), x['value'][1]) for x in r), 'jobs': labels, 'names': names}
a, b = out[sys.argv[1]], out[sys.argv[2]]
print(json.dumps(a))
sys.exit(0 if a == b else 1)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &node.base, &prom.base, &format!("{t:.3}")])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client answers differ or failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("http_requests_total"), "{stdout}");
    drop(prom);
    node.handle.stop().await;
}

/// path, form parameters, expected status, expected errorType.
type BadCase = (&'static str, Vec<(&'static str, String)>, u16, &'static str);

#[actix_rt::test]
async fn bad_queries_get_prometheus_errors_and_the_node_stays_up() {
    let node = TestNode::builder().start().await;
    let cases: Vec<BadCase> = vec![
        (
            "/api/v1/query",
            vec![("query", "sum(".into())],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query",
            vec![("query", "no_such_function(up)".into())],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query",
            vec![("query", "rate(up)".into())],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query",
            vec![("query", "up".into()), ("time", "yesterday".into())],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query",
            vec![("query", "x".repeat(10 * 1024 * 1024))],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "10".into()),
                ("end", "5".into()),
                ("step", "1".into()),
            ],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", "5".into()),
                ("step", "0".into()),
            ],
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", "100000000".into()),
                ("step", "1".into()),
            ],
            400,
            "bad_data",
        ),
        ("/api/v1/series", vec![], 400, "bad_data"),
        (
            "/api/v1/query",
            vec![(
                "query",
                format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
            )],
            400,
            "bad_data",
        ),
    ];
    for (path, params, code, etype) in cases {
        let resp = http_client()
            .post(format!("{}{path}", node.base))
            .form(&params)
            .send()
            .await
            .expect("request");
        assert_eq!(
            resp.status().as_u16(),
            code,
            "{path} {:?}",
            params.iter().map(|p| p.0).collect::<Vec<_>>()
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], etype);
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // The texts Debian's Prometheus 2.42 gives for the same queries.
    for (query, want) in [
        ("sum(", "1:5: parse error: unclosed left parenthesis"),
        (
            "no_such_function(up)",
            "1:1: parse error: unknown function with name \"no_such_function\"",
        ),
        (
            "rate(up)",
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        ("up[5m", "1:6: parse error: unclosed left bracket"),
        ("up bar", "1:4: parse error: unexpected identifier \"bar\""),
        ("up +", "1:5: parse error: unexpected end of input"),
        (
            "sum by (job) up",
            "1:14: parse error: unexpected identifier \"up\" in aggregation",
        ),
        (
            "up{job=}",
            "1:8: parse error: unexpected \"}\" in label matching, expected string",
        ),
        ("up)", "1:4: parse error: unexpected right parenthesis ')'"),
    ] {
        let body = api(&node.base, "/api/v1/query", &[("query", query.into())]).await;
        assert_eq!(
            body["error"],
            format!("invalid parameter \"query\": {want}"),
            "{query}"
        );
    }
    assert_eq!(node.status("/-/healthy").await, 200);
    let ok = api(&node.base, "/api/v1/query", &[("query", "1+1".into())]).await;
    assert_eq!(ok["data"]["result"][1], "2");
    node.handle.stop().await;
}
