//! Issue #19's acceptance on one node: node-exporter and a python exporter added through the
//! target API, a few of their metrics read by a Grafana dashboard (its headers) and by a
//! recording rule. `metric_usage` lists exactly those metrics as used, with their source
//! classes; every other metric is unused, with the series count the series API gives; the
//! suggested drop rule for the python job, previewed and then applied through the target API,
//! keeps only the used series in the next scrapes, ends the dropped ones at once and takes
//! them out of the cardinality report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::{start_node_exporter, start_python_exporter};
use strata_testing::{http_client, wait_until, TestNode};

const RULES: &str = "groups:\n  - name: load\n    interval: 1s\n    rules:\n      - record: job:node_load1:max\n        expr: max by (job) (node_load1)\n";

async fn put_job(node: &TestNode, path: &str, body: &str) -> Value {
    let r = node
        .authed(http_client().put(format!("{}{path}", node.base)))
        .header("Content-Type", "application/yaml")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "PUT {path}");
    r.json().await.unwrap()
}

/// Series per metric name from the series API (not a query: it records no usage).
async fn series_per_metric(node: &TestNode, job: &str) -> BTreeMap<String, u64> {
    let v = node
        .get_json(&format!(
            "/api/v1/series?match[]={}",
            url::form_urlencoded::byte_serialize(format!("{{job=\"{job}\"}}").as_bytes())
                .collect::<String>()
        ))
        .await;
    let mut out = BTreeMap::new();
    for s in v["data"].as_array().unwrap() {
        *out.entry(s["__name__"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

async fn dashboard_query(node: &TestNode, q: &str) {
    let r = http_client()
        .post(format!("{}/api/v1/query", node.base))
        .header("X-Dashboard-Uid", "node-overview")
        .header("X-Panel-Id", "2")
        .form(&[("query", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[actix_rt::test]
async fn unused_metrics_are_found_and_the_suggested_drop_applies_through_the_target_api() {
    let (_ne, ne_addr) = start_node_exporter().await;
    let (_py, py_addr) = start_python_exporter().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner", "rule_evaluator"])
        .admin_token()
        .yaml(&format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n",
            rules.display()
        ))
        .start()
        .await;
    // The node counts usage from before this instant on.
    let watched = std::time::Instant::now();
    put_job(
        &node,
        "/api/v1/admin/scrape_configs/node",
        &format!("static_configs: [{{targets: ['{ne_addr}']}}]\n"),
    )
    .await;
    put_job(
        &node,
        "/api/v1/admin/scrape_configs/python",
        &format!("job_name: python\nstatic_configs: [{{targets: ['{py_addr}']}}]\n"),
    )
    .await;
    wait_until("both jobs are stored", Duration::from_secs(30), || async {
        let n = series_per_metric(&node, "node").await;
        let p = series_per_metric(&node, "python").await;
        n.contains_key("node_load1") && p.contains_key("demo_requests_total")
    })
    .await;

    // A dashboard reads two metrics; the rule reads node_load1.
    for _ in 0..2 {
        dashboard_query(&node, "sum by (method) (rate(demo_requests_total[1m]))").await;
        dashboard_query(&node, "node_memory_MemFree_bytes").await;
    }
    wait_until(
        "the rule has been evaluated",
        Duration::from_secs(30),
        || async {
            let v = node.get_json("/api/v1/status/metric_usage").await;
            v["data"]["metrics"].as_array().unwrap().iter().any(|m| {
                m["name"] == "node_load1" && m["usage"]["by_source"]["rule"].as_u64() > Some(0)
            })
        },
    )
    .await;

    let v = node.get_json("/api/v1/status/metric_usage").await;
    let listed = v["data"]["metrics"].as_array().unwrap();
    let used: BTreeSet<&str> = listed
        .iter()
        .filter(|m| !m["usage"].is_null())
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        used,
        BTreeSet::from([
            "demo_requests_total",
            "node_load1",
            "node_memory_MemFree_bytes"
        ]),
        "{v}"
    );
    let by_name = |n: &str| listed.iter().find(|m| m["name"] == n).unwrap().clone();
    assert_eq!(
        by_name("demo_requests_total")["usage"]["by_source"],
        serde_json::json!({"dashboard": 2})
    );
    assert_eq!(
        by_name("node_memory_MemFree_bytes")["usage"]["dashboards"][0],
        "node-overview"
    );
    assert!(by_name("node_load1")["usage"]["by_source"]
        .get("dashboard")
        .is_none());

    // Unused: everything else, with the series the series API counts.
    // Unused for as long as usage has been watched: everything the dashboard and the rule
    // did not read since.
    let unused_for = watched.elapsed().as_millis() - 50;
    let unused = node
        .get_json(&format!(
            "/api/v1/status/metric_usage?unused_for={unused_for}ms"
        ))
        .await;
    assert!(unused["warnings"].is_null(), "{unused}");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for job in ["node", "python"] {
        for (name, n) in series_per_metric(&node, job).await {
            *expected.entry(name).or_default() += n;
        }
    }
    for name in &used {
        expected.remove(*name);
    }
    let got: BTreeMap<String, u64> = unused["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| expected.contains_key(m["name"].as_str().unwrap()))
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["series"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "{unused}");
    for name in &used {
        assert!(
            !unused["data"]["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == *name),
            "{name} listed as unused"
        );
    }

    // The python job's suggestion: preview, then apply, through the target API.
    let suggestion = unused["data"]["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["job"] == "python")
        .cloned()
        .expect("a suggestion for the python job");
    let apply = &suggestion["apply"];
    let body = apply["body"].as_str().unwrap();
    let preview = put_job(&node, apply["preview"].as_str().unwrap(), body).await;
    let before = preview["data"]["before"]["series"].as_u64().unwrap();
    let after = preview["data"]["after"]["series"].as_u64().unwrap();
    let kept = series_per_metric(&node, "python").await["demo_requests_total"];
    assert_eq!(after, kept, "{preview}");
    assert!(before > after, "{preview}");
    assert_eq!(
        suggestion["series"].as_u64().unwrap(),
        before - after,
        "the suggestion's saving is what the preview shows: {suggestion} {preview}"
    );
    let applied = put_job(&node, apply["path"].as_str().unwrap(), body).await;
    assert_eq!(applied["data"]["stored"], true);

    // The next scrapes keep only the used metric, and the dropped series end.
    wait_until("the drop rule is in force", Duration::from_secs(20), || async {
        let v = node
            .get_json("/api/v1/query?query=scrape_samples_post_metric_relabeling%7Bjob%3D%22python%22%7D")
            .await;
        v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(kept)
    })
    .await;
    wait_until("the dropped series go stale", Duration::from_secs(20), || async {
        let v = node
            .get_json("/api/v1/query?query=count(%7Bjob%3D%22python%22%2C__name__%3D~%22demo_.*%22%7D)")
            .await;
        v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(kept)
    })
    .await;
    // And they leave the cardinality report of the time since.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = strata_testing::now_ms() / 1000 - 1;
    let card = node
        .get_json(&format!(
            "/api/v1/status/cardinality?limit=1000&start={since}&match[]={}",
            url::form_urlencoded::byte_serialize(b"{job=\"python\"}").collect::<String>()
        ))
        .await;
    let names: BTreeMap<String, u64> = card["data"]["seriesCountByMetricName"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["series"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names.get("demo_requests_total"), Some(&kept), "{card}");
    for dropped in suggestion["metrics"].as_array().unwrap() {
        assert!(
            !names.contains_key(dropped.as_str().unwrap()),
            "{dropped} still in the cardinality report: {card}"
        );
    }
    node.handle.stop().await;
}
