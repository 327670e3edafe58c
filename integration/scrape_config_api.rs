//! The scrape-config API on a two-node cluster sharing a filesystem bucket: no token → 401;
//! invalid jobs refused naming the key; a file job → 409; a dry run against an unreachable
//! target says so and against a live one counts its series and naming problems; an accepted
//! job is scraped by the cluster and listed in every node's config, survives a restart of every
//! node, and deleting it stops the scrapes. Also: `lint: drop` keeps the families with naming
//! problems out of the TSDB.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

const BODY: &str = "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\n\
app_requests_total{code=\"200\"} 10\n\
app_requests_total{code=\"500\"} 1\n\
# HELP appQueueDepth Queue depth.\n# TYPE appQueueDepth gauge\n\
appQueueDepth 3\n";

async fn put(node: &TestNode, job: &str, query: &str, body: &str, ct: &str) -> (u16, Value) {
    let r = node
        .authed(http_client().put(format!(
            "{}/api/v1/admin/scrape_configs/{job}{query}",
            node.base
        )))
        .header("Content-Type", ct)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn delete(node: &TestNode, job: &str) -> (u16, Value) {
    let r = node
        .authed(http_client().delete(format!("{}/api/v1/admin/scrape_configs/{job}", node.base)))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn instant(node: &TestNode, q: &str) -> Vec<Value> {
    let v = node
        .get_json(&format!(
            "/api/v1/query?query={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ))
        .await;
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

async fn start(
    id: &str,
    data: &Path,
    bucket: &Path,
    yaml: &str,
    seed: Option<&TestNode>,
) -> TestNode {
    let mut b = TestNode::builder()
        .id(id)
        .roles(&["scraper_shipper", "query_planner", "store_shard"])
        .data_dir(data)
        .admin_token()
        .filesystem_bucket(bucket)
        .yaml(yaml);
    if let Some(s) = seed {
        b = b.join(s.gossip_addr());
    }
    b.start().await
}

async fn active_urls(node: &TestNode, job: &str) -> Vec<String> {
    let v = node.get_json("/api/v1/targets?state=active").await;
    v["data"]["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|t| t["labels"]["job"] == job)
                .filter_map(|t| t["scrapeUrl"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn jobs_are_checked_stored_spread_kept_over_restarts_and_removed() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let (d1, d2) = (dir.path().join("n1"), dir.path().join("n2"));
    let yaml = "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: from-file\n    static_configs: [{targets: ['127.0.0.1:1']}]\n";
    let n1 = start("api-n1", &d1, &bucket, yaml, None).await;
    let n2 = start("api-n2", &d2, &bucket, yaml, Some(&n1)).await;

    // No token: 401, nothing stored.
    let r = http_client()
        .put(format!("{}/api/v1/admin/scrape_configs/app", n1.base))
        .body("static_configs: []\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Invalid: the key is named.
    let (s, v) = put(
        &n1,
        "app",
        "",
        "scrape_interval: 1s\nscrape_timeout: 5s\n",
        "application/yaml",
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("scrape_timeout"),
        "{v}"
    );
    let (s, v) = put(&n1, "app", "", "static_configs: [{targets: ['a:1']}]\nmetric_relabel_configs: [{action: keep, regex: '[z-a]'}]\n", "application/yaml").await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("metric_relabel_configs"),
        "{v}"
    );
    let (s, v) = put(
        &n1,
        "app",
        "",
        r#"{"job_name": "app", "scrape_intervall": "1s"}"#,
        "application/json",
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("scrape_intervall"),
        "{v}"
    );

    // A job of the config file cannot be replaced or deleted.
    let (s, v) = put(
        &n1,
        "from-file",
        "",
        "static_configs: []\n",
        "application/yaml",
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(delete(&n1, "from-file").await.0, 409);

    // Dry runs: one unreachable target, one live.
    let (s, v) = put(
        &n1,
        "dead",
        "?dry_run=true",
        "static_configs: [{targets: ['127.0.0.1:1']}]\n",
        "application/yaml",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let t = &v["data"]["after"]["targets"][0];
    assert_eq!(t["reachable"], false, "{v}");
    assert!(t["error"].as_str().unwrap().contains("127.0.0.1:1"), "{v}");
    let job = format!(
        "job_name: app\nscrape_interval: 1s\nstatic_configs: [{{targets: ['{}'], labels: {{team: a}}}}]\n",
        target.addr
    );
    let (s, v) = put(&n1, "app", "?dry_run=true", &job, "application/yaml").await;
    assert_eq!(s, 200, "{v}");
    let after = &v["data"]["after"];
    assert_eq!(after["targets"][0]["reachable"], true, "{v}");
    assert_eq!(after["targets"][0]["series"], 3, "{v}");
    assert_eq!(after["targets"][0]["labels"]["team"], "a", "{v}");
    assert_eq!(after["samplesPerDay"], 3 * 86_400, "{v}");
    assert!(after["estimatedBytesPerDay"].as_u64().unwrap() > 0, "{v}");
    let problems = after["targets"][0]["lintProblems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["metric"] == "appQueueDepth" && p["check"] == "camel_case"),
        "{v}"
    );
    assert!(v["data"]["before"].is_null(), "{v}");
    // Nothing was stored by the dry run.
    assert!(active_urls(&n1, "app").await.is_empty());

    // Accepted on n1: the cluster scrapes it and every node lists it.
    let (s, v) = put(&n1, "app", "", &job, "application/yaml").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["stored"], true, "{v}");
    for node in [&n1, &n2] {
        wait_until(
            "the API job is scraped",
            Duration::from_secs(20),
            || async {
                !instant(node, r#"app_requests_total{job="app",team="a"}"#)
                    .await
                    .is_empty()
            },
        )
        .await;
        wait_until(
            "the node's config lists the job",
            Duration::from_secs(20),
            || async {
                let cfg = node.get_json("/api/v1/status/config").await;
                cfg["data"]["yaml"]
                    .as_str()
                    .unwrap()
                    .contains("job_name: app")
            },
        )
        .await;
        let got = node.get_json("/api/v1/admin/scrape_configs/app").await;
        assert_eq!(got["data"]["source"], "api", "{got}");
        let sd: Value = http_client()
            .get(format!("{}/api/v1/http_sd", node.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            sd.as_array()
                .unwrap()
                .iter()
                .any(|g| g["targets"][0] == target.addr.to_string()
                    && g["labels"]["job"] == "app"
                    && g["labels"]["team"] == "a"),
            "{sd}"
        );
    }
    assert!(!active_urls(&n2, "app").await.is_empty());

    // A preview of a change shows before and after.
    let changed = format!("{job}metric_relabel_configs: [{{source_labels: [__name__], regex: '^(?:appQueueDepth)$', action: drop}}]\n");
    let (s, v) = put(&n2, "app", "?dry_run=true", &changed, "application/yaml").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["before"]["series"], 3, "{v}");
    assert_eq!(v["data"]["after"]["series"], 2, "{v}");

    // Every node restarts: the job is still there and scraped.
    n2.handle.stop().await;
    n1.handle.stop().await;
    let before_restart = target.hits("/metrics");
    let n1 = start("api-n1", &d1, &bucket, yaml, None).await;
    let n2 = start("api-n2", &d2, &bucket, yaml, Some(&n1)).await;
    for node in [&n1, &n2] {
        wait_until(
            "the job is back after the restart",
            Duration::from_secs(20),
            || async { !active_urls(node, "app").await.is_empty() },
        )
        .await;
    }
    wait_until("scrapes resume", Duration::from_secs(20), || async {
        target.hits("/metrics") > before_restart + 2
    })
    .await;

    // Deleted through n2: no node scrapes it any more.
    let (s, v) = delete(&n2, "app").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(delete(&n2, "app").await.0, 404);
    for node in [&n1, &n2] {
        wait_until("the job is gone", Duration::from_secs(20), || async {
            active_urls(node, "app").await.is_empty()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_delete = target.hits("/metrics");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        target.hits("/metrics"),
        after_delete,
        "scrapes went on after the delete"
    );
    n2.handle.stop().await;
    n1.handle.stop().await;
}

#[actix_rt::test]
async fn lint_drop_keeps_families_with_naming_problems_out() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let yaml = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: strict\n    lint: drop\n    static_configs: [{{targets: ['{}']}}]\n",
        target.addr
    );
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&yaml)
        .start()
        .await;
    wait_until(
        "the clean family is stored",
        Duration::from_secs(20),
        || async { instant(&node, "app_requests_total").await.len() == 2 },
    )
    .await;
    assert!(instant(&node, "appQueueDepth").await.is_empty());
    let v = instant(
        &node,
        r#"scrape_samples_post_metric_relabeling{job="strict"}"#,
    )
    .await;
    assert_eq!(v[0]["value"][1], "2", "{v:?}");
    // The problem is still reported.
    let t = node.get_json("/api/v1/targets").await;
    let problems = &t["data"]["activeTargets"][0]["lintProblems"];
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["metric"] == "appQueueDepth"),
        "{t}"
    );
    node.handle.stop().await;
}
