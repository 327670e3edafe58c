//! The Cardinality (`/cardinality`) and Never queried (`/unused`) pages in a real headless
//! Chromium against a node that scrapes a target and has shipped a block: the cardinality
//! page shows the totals and the metrics with their series and bytes, narrows to a metric
//! with the match input and focuses on a label; the never-queried page warns when the window
//! is longer than usage has been collected, and with a short window lists the metric nobody
//! read with its job's drop rule as YAML and what it saves. Screenshots (1280×800) go to
//! `<target dir>/ui-screenshots/` as `cardinality-*.png` and `unused-*.png`.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{wait_until, TestNode};

use crate::browser::Browser;

const EXPOSITION: &str = "\
# TYPE hyg_temperature_celsius gauge
hyg_temperature_celsius{room=\"kitchen\"} 21.5
hyg_temperature_celsius{room=\"hall\"} 18.25
hyg_temperature_celsius{room=\"attic\"} 26
# TYPE hyg_requests_total counter
hyg_requests_total{code=\"200\"} 1027
hyg_requests_total{code=\"500\"} 3
";

const RULES: &str = "\
groups:
- name: rooms
  interval: 1s
  rules:
  - record: room:hyg_temperature_celsius:max
    expr: max(hyg_temperature_celsius)
";

async fn text(browser: &Browser, css: &str) -> String {
    browser
        .js(&format!(
            "const n = document.querySelector('{css}'); return n ? n.innerText : ''"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_rt::test]
async fn cardinality_and_never_queried_pages_in_chromium() {
    let browser = Browser::start().await;
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", EXPOSITION);
    let rules_dir = strata_testing::temp_dir();
    let rules = rules_dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("write rules");
    let yaml = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s, external_labels: {{cluster: ui-test}}}}\n\
         rule_files: [\"{rules}\"]\n\
         scrape_configs:\n\
         - job_name: demo\n  static_configs: [{{targets: [\"{a}\"]}}]\n\
         tsdb: {{block_duration: 20s}}\n",
        a = target.addr,
        rules = rules.display()
    );
    let node = TestNode::builder()
        .id("ui-hygiene")
        .yaml(&yaml)
        .start()
        .await;
    let base = node.base.clone();
    wait_until(
        "the head and a shipped block to hold the demo series",
        Duration::from_secs(120),
        || async {
            let v: Value = node
                .get_json("/api/v1/status/cardinality?match[]=hyg_requests_total")
                .await;
            v["data"]["totals"]["headSeries"] == 2
                && v["data"]["totals"]["bucketBytes"].as_u64() > Some(0)
        },
    )
    .await;

    // Cardinality: totals and the top metrics with their series and bytes.
    browser.open(&format!("{base}/cardinality")).await;
    browser.assert_clean("cardinality").await;
    let metrics = text(&browser, "[data-testid=metrics]").await;
    assert!(metrics.contains("hyg_temperature_celsius"), "{metrics}");
    assert!(
        metrics.contains("KiB") || metrics.contains(" B"),
        "bytes shown: {metrics}"
    );
    let series = text(&browser, "[data-testid=total-series]").await;
    assert!(series.contains("Series"), "{series}");
    let jobs = text(&browser, "[data-testid=jobs]").await;
    assert!(jobs.contains("demo"), "{jobs}");
    let labels = text(&browser, "[data-testid=labels]").await;
    assert!(
        labels.contains("room") && !labels.contains("replica"),
        "{labels}"
    );
    browser.screenshot("cardinality-top").await;
    browser
        .js("window.scrollTo(0, document.body.scrollHeight); return true")
        .await;
    browser.screenshot("cardinality-labels-nodes").await;

    // The match input narrows the view; a focus label lists series per value.
    browser
        .js(
            "document.querySelector('[data-testid=match]').value = 'hyg_temperature_celsius'; \
             document.querySelector('[data-testid=focus]').value = 'room'; return true",
        )
        .await;
    browser
        .client
        .find(Locator::Css("[data-testid=apply]"))
        .await
        .expect("apply button")
        .click()
        .await
        .expect("click apply");
    browser
        .wait_js(
            "the focus table to render",
            "return document.querySelector('main[data-ready]') !== null \
             && document.querySelector('table[data-testid=focus-values]') !== null \
             && location.search.includes('focusLabel=room')",
        )
        .await;
    browser.assert_clean("cardinality (focus)").await;
    let focus = text(&browser, "table[data-testid=focus-values]").await;
    for room in ["kitchen", "hall", "attic"] {
        assert!(focus.contains(room), "{room} missing: {focus}");
    }
    let metrics = text(&browser, "[data-testid=metrics]").await;
    assert!(!metrics.contains("hyg_requests_total"), "{metrics}");
    assert_eq!(
        text(&browser, "[data-testid=total-series]")
            .await
            .lines()
            .next(),
        Some("3")
    );
    browser.screenshot("cardinality-focus").await;

    // Never queried, default window (30d): usage is too young, and the page says so.
    browser.open(&format!("{base}/unused")).await;
    browser.assert_clean("unused").await;
    let warning = text(&browser, "[data-testid=warning]").await;
    assert!(warning.contains("collected for"), "{warning}");
    browser.screenshot("unused-too-early").await;

    // A short window: the counter nobody reads is listed with its job's drop rule.
    browser.open(&format!("{base}/unused?unused_for=5s")).await;
    browser.assert_clean("unused 5s").await;
    let unused: Vec<String> = browser
        .js("return Array.from(document.querySelectorAll('[data-testid=unused-metrics] tbody td:first-child')).map((n) => n.innerText)")
        .await
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    assert!(
        unused.iter().any(|m| m == "hyg_requests_total"),
        "{unused:?}"
    );
    assert!(
        !unused.iter().any(|m| m == "hyg_temperature_celsius"),
        "the rule reads it: {unused:?}"
    );
    let table = text(&browser, "[data-testid=unused-metrics]").await;
    assert!(
        table.contains(" B"),
        "bytes from the cardinality report: {table}"
    );
    let no_rule = text(&browser, "[data-testid=no-rule]").await;
    assert!(
        no_rule.contains("room:hyg_temperature_celsius:max"),
        "the rule output has no job to drop it in: {no_rule}"
    );
    assert!(!no_rule.contains("scrape_samples_scraped"), "{no_rule}");
    let report = text(&browser, "[data-testid=report-series]").await;
    assert!(
        report.contains("scrape_samples_scraped") && report.contains("relabeling never sees"),
        "the scraper's own series are explained apart: {report}"
    );
    let yaml = text(&browser, "[data-testid=yaml-demo]").await;
    assert!(
        yaml.contains("metric_relabel_configs:")
            && yaml.contains("hyg_requests_total")
            && yaml.contains("action: drop"),
        "{yaml}"
    );
    let saves = text(&browser, "[data-testid=saves-demo]").await;
    assert!(
        saves.contains("series") && saves.contains("samples/day"),
        "{saves}"
    );
    browser.screenshot("unused-drop-rules").await;
    browser
        .js("window.scrollTo(0, document.body.scrollHeight); return true")
        .await;
    browser.screenshot("unused-drop-rules-end").await;

    browser.close().await;
    node.handle.stop().await;
}
