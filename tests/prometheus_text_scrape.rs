//! Differential test of the text-format parser against a real Prometheus 2.42 server
//! (Debian's `prometheus` package): a local HTTP server offers one body per job, Prometheus
//! scrapes them all, and for every body the target's health (up or down) must match whether
//! Strata's parser accepts it, and the samples Prometheus stored must equal Strata's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strata::scrape::parser::{parse, Format};
use strata_testing::http::{get_json, http_client};
use strata_testing::targets::BodyServer;
use strata_testing::{now_ms, Prometheus, Wait};

/// `{TS}` is replaced by a millisecond timestamp a few seconds ago, so the sample is inside
/// Prometheus's lookback window when we query.
const CASES: &[&[u8]] = &[
    b"# HELP a_total Help with \\\\ and \\n escapes.\n# TYPE a_total counter\na_total{m=\"post\",c=\"200\"} 1027\na_total{m=\"get\",c=\"500\"} 3\n",
    b"last_line_without_newline 7",
    b"ts_line 5 {TS}\n",
    b"neg_ts 5 -3982045\n",
    b"spaced\t{ q = \"1\" , r=\"2\", } \t-Inf \n",
    b"\t indented 1\n",
    b"  # HELP indented_comment is fine\nx 1\n",
    b"no_commas{q=\"1\" r=\"2\"} 1\n",
    b"empty_braces{} 2\n",
    b"nospace{q=\"1\"}3\n",
    b"colon:name:rate5m{a_b=\"c\"} 4\n",
    b"values{v=\"inf\"} Inf\nvalues{v=\"nan\"} NaN\nvalues{v=\"half\"} .5\nvalues{v=\"exp\"} 1.5e-3\n",
    b"bad_value 1e400\n",
    b"bad_value +NaN\n",
    b"bad_value 0x10\n",
    b"bad_value 1_000\n",
    b"crlf 1\r\n",
    b"multi{l=\"line\nbreak\"} 1\n",
    b"escapes{l=\"q\\\"b\\\\n\\n \\t\"} 1\n",
    b"# comment \xff\xfe junk\n#\n#nospace\n# HELP only_help\n# TYPE t gauge\nt 1\n",
    b"bad_type 1\n# TYPE x countr\n",
    b"bad_utf8{l=\"\xff\"} 1\n",
    b"dup{l=\"1\",l=\"2\"} 1\n",
    b"ok 1\n\x00garbage that is never read\n",
    b"nul_in_value{l=\"a\x00b\"} 1\n",
    b"{l=\"nameless\"} 1\n",
    b"bad_label{1l=\"x\"} 1\n",
    b"unterminated{l=\"x} 1\n",
    b"ts_then_junk 1 2 3\n",
    b"empty_value{e=\"\",f=\"g\"} 1\n",
    b"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\nh_created 1700000000\n",
];

fn bodies() -> Vec<Vec<u8>> {
    let ts = (now_ms() - 5_000).to_string();
    CASES
        .iter()
        .map(|c| {
            let s = String::from_utf8_lossy(c);
            if s.contains("{TS}") {
                s.replace("{TS}", &ts).into_bytes()
            } else {
                c.to_vec()
            }
        })
        .collect()
}

type Rows = Vec<(String, String)>;

/// An instant query to Prometheus; None when it cannot be asked or does not answer JSON.
async fn query(prom: &Prometheus, q: &str) -> Option<Value> {
    let resp = http_client()
        .get(format!("{}/api/v1/query", prom.base))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// Prometheus's stored samples for a job, as (labels without job/instance, value) rows.
async fn stored(prom: &Prometheus, job: &str) -> Rows {
    let q = format!("{{job=\"{job}\",__name__!~\"up|scrape_.*\"}}");
    let v = query(prom, &q).await.expect("Prometheus answers the query");
    let mut rows = Vec::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let metric: BTreeMap<String, String> = serde_json::from_value(r["metric"].clone()).unwrap();
        let labels: Vec<String> = metric
            .iter()
            .filter(|(k, _)| *k != "job" && *k != "instance")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        rows.push((
            labels.join(","),
            r["value"][1].as_str().unwrap().to_string(),
        ));
    }
    rows.sort();
    rows
}

fn go_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn ours(body: &[u8]) -> Result<Rows, String> {
    let exp = parse(body, Format::PrometheusText).map_err(|e| e.to_string())?;
    let mut rows: Rows = exp
        .samples
        .iter()
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            (labels.join(","), go_value(s.value))
        })
        .collect();
    rows.sort();
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_parser_agrees_with_a_prometheus_2_42_server() {
    let bodies = bodies();
    let target = BodyServer::start().await;
    for (i, body) in bodies.iter().enumerate() {
        target.set(
            &format!("/case{i}"),
            "text/plain; version=0.0.4",
            body.clone(),
        );
    }
    let mut yml =
        String::from("global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n");
    for i in 0..bodies.len() {
        yml.push_str(&format!(
            "  - job_name: case{i}\n    metrics_path: /case{i}\n    static_configs: [{{targets: ['{}']}}]\n",
            target.addr
        ));
    }
    let prom = Prometheus::start(&yml).await;

    // Every target has been scraped: job -> (health, lastError).
    let targets_url = format!("{}/api/v1/targets", prom.base);
    let health: BTreeMap<String, (String, String)> =
        Wait::new("Prometheus to scrape every target", Duration::from_secs(90))
            .poll(Duration::from_millis(250))
            .until_some(|| async {
                let v = get_json(&targets_url).await?;
                let done: BTreeMap<String, (String, String)> = v["data"]["activeTargets"]
                    .as_array()?
                    .iter()
                    .filter(|t| {
                        t["health"] != "unknown"
                            && t["lastScrape"]
                                .as_str()
                                .is_some_and(|s| !s.starts_with("0001"))
                    })
                    .map(|t| {
                        let job = t["labels"]["job"].as_str().unwrap_or("").to_string();
                        (
                            job,
                            (
                                t["health"].as_str().unwrap_or("").to_string(),
                                t["lastError"].as_str().unwrap_or("").to_string(),
                            ),
                        )
                    })
                    .collect();
                (done.len() == bodies.len()).then_some(done)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; Prometheus's log:\n{}", prom.log_tail()));
    // A target's health is reported before its scrape is committed. `up` is committed with
    // the scraped samples, so once every job has an `up` sample they are all queryable.
    Wait::new(
        "every job's first scrape to be queryable",
        Duration::from_secs(30),
    )
    .poll(Duration::from_millis(250))
    .until(|| async {
        query(&prom, "count by (job) (up)")
            .await
            .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
            == Some(bodies.len())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; Prometheus's log:\n{}", prom.log_tail()));

    let mut disagreements = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let job = format!("case{i}");
        let (state, last_error) = &health[&job];
        let shown = String::from_utf8_lossy(body);
        match (state.as_str(), ours(body)) {
            ("up", Ok(mine)) => {
                let theirs = stored(&prom, &job).await;
                if theirs != mine {
                    disagreements.push(format!(
                        "{shown:?}: samples differ\n  prometheus {theirs:?}\n  strata     {mine:?}"
                    ));
                }
            }
            ("down", Err(_)) => {}
            (s, mine) => disagreements.push(format!(
                "{shown:?}: prometheus {s} ({last_error}), strata {mine:?}"
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
