//! Issue #19 on three nodes with scrape replication 2: every node scrapes, plans queries and
//! serves as a StoreShard; one target is scraped by two of them. Queries sent to different
//! nodes are merged into one usage answer, and the usage report (requests, series counts) and
//! the cardinality report count each series once and are the same from every node.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

const BODY: &str = "# TYPE shop_orders_total counter\n\
shop_orders_total{kind=\"a\"} 10\n\
shop_orders_total{kind=\"b\"} 1\n\
# TYPE shop_stock gauge\n\
shop_stock{item=\"x\"} 3\n\
shop_stock{item=\"y\"} 4\n\
shop_stock{item=\"z\"} 5\n";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// (requests, series) per metric name of the usage report.
fn usage_counts(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"].as_str().unwrap().starts_with("shop_"))
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                (
                    m["usage"]["requests"].as_u64().unwrap_or(0),
                    m["series"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn card_counts(v: &Value) -> BTreeMap<String, u64> {
    v["data"]["seriesCountByMetricName"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["series"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn usage_and_cardinality_count_replicated_series_once_from_every_node() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let yaml = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shop\n    static_configs: [{{targets: ['{}']}}]\n",
        target.addr
    );
    let builder = || {
        TestNode::builder()
            .roles(&["scraper_shipper", "query_planner", "store_shard"])
            .filesystem_bucket(&bucket)
            .yaml(&yaml)
    };
    let n1 = builder().start().await;
    let n2 = builder().join(n1.gossip_addr()).start().await;
    let n3 = builder().join(n1.gossip_addr()).start().await;
    let nodes = [&n1, &n2, &n3];
    // Two of the three scrape the target (replication 2), each under its replica label.
    wait_until(
        "two nodes scrape the target",
        Duration::from_secs(30),
        || async {
            let mut scraping = 0;
            for n in nodes {
                let local: Value = http_client()
                    .get(format!("{}/api/v1/targets?state=active", n.base))
                    .header("X-Strata-Targets-Local", "test")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if local["data"]["activeTargets"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t["health"] == "up"))
                {
                    scraping += 1;
                }
            }
            scraping == 2
        },
    )
    .await;

    // One dashboard query through each node.
    for n in nodes {
        let r = http_client()
            .post(format!("{}/api/v1/query", n.base))
            .header("X-Dashboard-Uid", "shop")
            .form(&[("query", "sum by (kind) (rate(shop_orders_total[1m]))")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    let expected = BTreeMap::from([
        ("shop_orders_total".to_string(), (3, 2)),
        ("shop_stock".to_string(), (0, 3)),
    ]);
    // Every node merges the three planners' usage (a planner that just joined may take a
    // moment to be seen as one).
    for n in nodes {
        wait_until(
            "the node's usage merges all three planners",
            Duration::from_secs(30),
            || async { usage_counts(&n.get_json("/api/v1/status/metric_usage").await) == expected },
        )
        .await;
    }

    let q = format!(
        "/api/v1/status/cardinality?match[]={}",
        enc("{job=\"shop\"}")
    );
    for n in nodes {
        let c = card_counts(&n.get_json(&q).await);
        assert_eq!(c.get("shop_orders_total"), Some(&2), "{c:?}");
        assert_eq!(c.get("shop_stock"), Some(&3), "{c:?}");
        assert_eq!(c.get("up"), Some(&1), "{c:?}");
    }
    for n in [n3, n2, n1] {
        n.handle.stop().await;
    }
}
