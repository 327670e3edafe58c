//! The cluster-wide cardinality report on two nodes that scrape one target as HA replicas
//! (scrape replication 2) and ship 20 s blocks to a shared filesystem bucket, each serving its
//! share of the blocks as a StoreShard: series per metric equal what the deduplicating query
//! path counts (`count by (__name__)`), each series counted once although both heads and both
//! replicas' blocks hold it, head and bucket bytes above zero, `match[]`, `focusLabel` and
//! `limit` applied, and the same counts whichever node is asked, a query-only node included.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

const BODY: &str = "# TYPE app_requests_total counter\n\
app_requests_total{code=\"200\"} 10\n\
app_requests_total{code=\"500\"} 1\n\
# TYPE app_queue_depth gauge\n\
app_queue_depth 3\n\
# TYPE app_shards gauge\n\
app_shards{shard=\"a\"} 1\n\
app_shards{shard=\"b\"} 2\n\
app_shards{shard=\"c\"} 3\n";

async fn card(node: &TestNode, query: &str) -> Value {
    node.get_json(&format!("/api/v1/status/cardinality{query}"))
        .await
}

fn sel(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Series per metric name from a list of the report.
fn series_by_name(v: &Value, list: &str) -> BTreeMap<String, u64> {
    v["data"][list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or_default().to_string(),
                        m["series"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `count by (__name__)` of the app job, through the (deduplicating) query API.
async fn counted(node: &TestNode) -> BTreeMap<String, u64> {
    let v = node
        .get_json(&format!(
            "/api/v1/query?query={}",
            sel("count by (__name__) ({job=\"app\"})")
        ))
        .await;
    v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["metric"]["__name__"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        r["value"][1]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn two_replicas_are_counted_once_and_every_node_answers_alike() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let bucket = tempfile::tempdir().unwrap();
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  external_labels: {{cluster: card}}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\ntsdb:\n  block_duration: 20s\n",
        target.addr
    );
    let node = |id: &str| {
        TestNode::builder()
            .id(id)
            .roles(&["scraper_shipper", "store_shard", "query_planner"])
            .filesystem_bucket(bucket.path())
            .yaml(&yaml)
    };
    let a = node("card-a").start().await;
    let b = node("card-b").join(a.gossip_addr()).start().await;
    // A node holding no series answers too, from the others' digests.
    let query_node = TestNode::builder()
        .id("card-q")
        .roles(&["query_planner"])
        .filesystem_bucket(bucket.path())
        .join(a.gossip_addr())
        .yaml(&yaml)
        .start()
        .await;

    // Both replicas scrape, cut and ship blocks, and the StoreShards serve them.
    wait_until(
        "both heads and the bucket hold the app's series",
        Duration::from_secs(120),
        || async {
            let v = card(&a, &format!("?match[]={}", sel("{job=\"app\"}"))).await;
            let nodes = v["data"]["nodes"].as_array().cloned().unwrap_or_default();
            nodes.len() == 2
                && nodes.iter().all(|n| n["headSeries"].as_u64() >= Some(6))
                && v["data"]["totals"]["bucketBytes"].as_u64() > Some(0)
                && v["data"]["totals"]["bucketSeries"].as_u64() >= Some(6)
                // A block of each replica, served.
                && v["data"]["totals"]["blocks"].as_u64() >= Some(2)
        },
    )
    .await;

    let q = format!("?match[]={}&limit=100", sel("{job=\"app\"}"));
    let from_a = card(&a, &q).await;
    let from_b = card(&b, &q).await;
    let from_q = card(&query_node, &q).await;
    assert_eq!(from_a["status"], "success", "{from_a}");
    let want = counted(&a).await;
    assert!(want.get("app_shards") == Some(&3), "{want:?}");
    // Each series once, although two heads and two replicas' blocks hold it.
    assert_eq!(
        series_by_name(&from_a, "seriesCountByMetricName"),
        want,
        "{from_a}"
    );
    assert_eq!(
        series_by_name(&from_b, "seriesCountByMetricName"),
        want,
        "{from_b}"
    );
    assert_eq!(
        series_by_name(&from_q, "seriesCountByMetricName"),
        want,
        "{from_q}"
    );
    assert_eq!(from_q["data"]["nodes"].as_array().map(Vec::len), Some(2));
    let total: u64 = want.values().sum();
    assert_eq!(from_a["data"]["totals"]["series"], total, "{from_a}");
    for list in ["seriesCountByJob", "seriesCountByLabelName"] {
        assert_eq!(
            series_by_name(&from_a, list),
            series_by_name(&from_b, list),
            "{list}: {from_a}\n{from_b}"
        );
        assert_eq!(
            series_by_name(&from_a, list),
            series_by_name(&from_q, list),
            "{list}: {from_a}\n{from_q}"
        );
    }
    assert_eq!(from_a["data"]["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        series_by_name(&from_a, "seriesCountByJob"),
        BTreeMap::from([("app".to_string(), total)])
    );
    // No replica label among the label names; the external label is there.
    let labels = series_by_name(&from_a, "seriesCountByLabelName");
    assert!(!labels.contains_key("replica"), "{labels:?}");
    assert_eq!(labels.get("cluster"), Some(&total), "{labels:?}");
    for m in from_a["data"]["seriesCountByMetricName"]
        .as_array()
        .unwrap()
    {
        assert!(m["headBytes"].as_u64() > Some(0), "{m}");
        assert!(m["samplesPerSecond"].as_f64() > Some(0.0), "{m}");
    }
    assert!(from_a["data"]["totals"]["bucketBytes"].as_u64() > Some(0));
    assert!(from_a["data"]["totals"]["blocks"].as_u64() >= Some(2));

    // match[], focusLabel, limit.
    let v = card(
        &b,
        &format!("?match[]={}&focusLabel=shard", sel("app_shards")),
    )
    .await;
    assert_eq!(
        series_by_name(&v, "seriesCountByMetricName"),
        BTreeMap::from([("app_shards".to_string(), 3)]),
        "{v}"
    );
    assert_eq!(v["data"]["focusLabel"], "shard");
    assert_eq!(
        series_by_name(&v, "seriesCountByFocusLabelValue"),
        BTreeMap::from([
            ("a".to_string(), 1),
            ("b".to_string(), 1),
            ("c".to_string(), 1)
        ]),
        "{v}"
    );
    let v = card(&a, &format!("?match[]={}&limit=1", sel("{job=\"app\"}"))).await;
    let top = v["data"]["seriesCountByMetricName"].as_array().unwrap();
    assert_eq!(top.len(), 1, "{v}");
    assert_eq!(top[0]["name"], "app_shards", "{v}");
    assert_eq!(
        v["data"]["totals"]["series"], total,
        "totals are over every series"
    );
    let r = http_client()
        .get(format!("{}/api/v1/status/cardinality?limit=0", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    query_node.handle.stop().await;
    b.handle.stop().await;
    a.handle.stop().await;
}
