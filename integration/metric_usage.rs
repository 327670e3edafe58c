//! Metric usage recorded by the engine, on a real node scraping a target and evaluating a
//! recording rule: queries with Grafana's dashboard header and ad hoc ones, and the rule's own
//! evaluations, are counted per metric with their source classes; metrics nobody queried are
//! listed with their series and no usage; `unused_for` longer than the watch refuses to call
//! anything unused; and the counts survive a restart of the node.

use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

const BODY: &str = "# TYPE app_requests_total counter\n\
app_requests_total{code=\"200\"} 10\n\
app_requests_total{code=\"500\"} 1\n\
# TYPE app_queue_depth gauge\n\
app_queue_depth 3\n\
# TYPE app_never_read gauge\n\
app_never_read{shard=\"a\"} 1\n\
app_never_read{shard=\"b\"} 2\n\
app_never_read{shard=\"c\"} 3\n";

const RULES: &str = "groups:\n  - name: usage\n    interval: 1s\n    rules:\n      - record: job:app_queue_depth:max\n        expr: max by (job) (app_queue_depth)\n";

async fn usage(node: &TestNode, query: &str) -> Value {
    node.get_json(&format!("/api/v1/status/metric_usage{query}"))
        .await
}

fn metric<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["data"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

#[actix_rt::test]
async fn queries_and_rules_are_counted_per_metric_and_survive_a_restart() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let data = dir.path().join("data");
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
        rules.display(),
        target.addr
    );
    let builder = || {
        TestNode::builder()
            .id("usage-node")
            .roles(&["scraper_shipper", "rule_evaluator", "query_planner"])
            .data_dir(&data)
            .yaml(&yaml)
    };
    let node = builder().start().await;
    wait_until(
        "the target's series are queryable",
        Duration::from_secs(30),
        || async {
            // Asked through a metric the test never checks the usage of.
            let v = node
                .get_json("/api/v1/query?query=scrape_samples_scraped")
                .await;
            v["data"]["result"][0]["value"][1] == "6"
        },
    )
    .await;

    // A dashboard panel and an ad hoc query.
    for _ in 0..2 {
        let r = http_client()
            .post(format!("{}/api/v1/query", node.base))
            .header("X-Dashboard-Uid", "dash-1")
            .header("X-Panel-Id", "4")
            .form(&[(
                "query",
                "sum by (code) (rate(app_requests_total{code=~\"5..\"}[1m]))",
            )])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http_client()
        .get(format!("{}/api/v1/query?query=app_queue_depth", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    wait_until(
        "the rule's reads are counted",
        Duration::from_secs(30),
        || async {
            let v = usage(&node, "").await;
            metric(&v, "app_queue_depth")
                .is_some_and(|m| m["usage"]["by_source"]["rule"].as_u64() >= Some(1))
        },
    )
    .await;
    let v = usage(&node, "").await;
    let req = metric(&v, "app_requests_total").expect("app_requests_total listed");
    assert_eq!(req["series"], 2, "{v}");
    assert_eq!(req["usage"]["requests"], 2, "{v}");
    assert_eq!(req["usage"]["by_source"]["dashboard"], 2, "{v}");
    assert_eq!(req["usage"]["dashboards"], serde_json::json!(["dash-1"]));
    assert_eq!(req["usage"]["matcher_labels"], serde_json::json!(["code"]));
    assert_eq!(req["usage"]["grouping_labels"], serde_json::json!(["code"]));
    let depth = metric(&v, "app_queue_depth").unwrap();
    assert_eq!(depth["usage"]["by_source"]["adhoc"], 1, "{v}");
    assert_eq!(
        depth["usage"]["rule_groups"][0]
            .as_str()
            .map(|g| g.ends_with("usage")),
        Some(true),
        "{v}"
    );
    let never = metric(&v, "app_never_read").expect("app_never_read listed");
    assert_eq!(never["series"], 3);
    assert_eq!(never["usage"], Value::Null, "{v}");
    // The usage API's own series count is not counted as a read of every metric.
    assert_eq!(metric(&v, "up").unwrap()["usage"], Value::Null, "{v}");

    // Not watched for an hour yet: nothing may be called unused.
    let v = usage(&node, "?unused_for=1h").await;
    assert_eq!(v["data"]["metrics"], serde_json::json!([]), "{v}");
    assert!(
        v["warnings"][0].as_str().unwrap().contains("collected for"),
        "{v}"
    );

    let since = usage(&node, "").await["data"]["collected_since"].clone();
    node.handle.stop().await;
    let node = builder().start().await;
    wait_until(
        "the restarted node answers usage",
        Duration::from_secs(30),
        || async { metric(&usage(&node, "").await, "app_requests_total").is_some() },
    )
    .await;
    let v = usage(&node, "").await;
    assert_eq!(v["data"]["collected_since"], since, "{v}");
    assert_eq!(
        metric(&v, "app_requests_total").unwrap()["usage"]["requests"],
        2,
        "{v}"
    );
    node.handle.stop().await;
}
