//! Scrape report fidelity against Prometheus 2.42: bodies with duplicate series, samples whose
//! explicit timestamps are out of bounds, OpenMetrics bodies with content after `# EOF` or
//! without it, invalid label sets, a parse error half-way, and metric relabeling that drops
//! some samples are served to a Strata node and to Prometheus with the same config; `up`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and
//! `scrape_series_added` (of a later scrape) must be the same for every target.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_testing::targets::BodyServer;
use strata_testing::{wait_until, Prometheus, TestNode};

const TEXT: &str = "text/plain; version=0.0.4";
const OM: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("/dup_series", TEXT, "a 1\na 2\nb 1\nb 1\nc 3\n"),
        ("/old_timestamps", TEXT, "a 1 1000\nb 2\nc 3 1000\n"),
        ("/future_ok", TEXT, "a 1\nb 2\n"),
        ("/om_after_eof", OM, "# TYPE a gauge\na 1\n# EOF\nb 2\n"),
        ("/om_no_eof", OM, "# TYPE a gauge\na 1\nb 2\n"),
        ("/om_ok", OM, "# TYPE a gauge\na 1\nb 2\n# EOF\n"),
        ("/dup_label_names", TEXT, "a 1\nb{x=\"1\",x=\"2\"} 1\nc 3\n"),
        (
            "/parse_error_midway",
            TEXT,
            "a 1\nb 2\nthis is { bad\nc 3\n",
        ),
        (
            "/relabel_drops",
            TEXT,
            "keep_me 1\ndrop_me 2\ndrop_me{x=\"y\"} 3\n",
        ),
    ]
}

fn config(addr: &str) -> String {
    let mut y = String::from(
        "scrape_configs:\n  - job_name: report\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: drop_me\n        action: drop\n    static_configs:\n",
    );
    for (path, _, _) in cases() {
        y.push_str(&format!(
            "      - targets: ['{addr}']\n        labels: {{__metrics_path__: '{path}', instance: '{}'}}\n",
            &path[1..]
        ));
    }
    y
}

/// instance → [up, scraped, post relabeling, series added] of the latest scrape.
async fn report(base: &str) -> BTreeMap<String, [String; 4]> {
    let mut out: BTreeMap<String, [String; 4]> = BTreeMap::new();
    let names = [
        "up",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ];
    for (i, name) in names.iter().enumerate() {
        let q = format!("{name}{{job=\"report\"}}");
        let url = format!(
            "{base}/api/v1/query?query={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let v = strata_testing::http::get_json(&url)
            .await
            .unwrap_or_default();
        for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let inst = r["metric"]["instance"].as_str().unwrap_or("").to_string();
            let entry = out.entry(inst).or_default();
            entry[i] = r["value"][1].as_str().unwrap_or("").to_string();
        }
    }
    out
}

#[actix_rt::test]
async fn report_series_count_what_prometheus_counts() {
    let server = BodyServer::start().await;
    for (path, ct, body) in cases() {
        server.set(path, ct, body);
    }
    let yaml = config(&server.addr.to_string());
    let prom = Prometheus::start(&yaml).await;
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&yaml)
        .start()
        .await;
    // Several scrapes each, so `scrape_series_added` is that of a scrape after the first.
    for base in [&node.base, &prom.base] {
        wait_until(
            "every target has been scraped",
            Duration::from_secs(30),
            || async { report(base).await.len() == cases().len() },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ours = report(&node.base).await;
    let theirs = report(&prom.base).await;
    assert_eq!(ours, theirs);
}
