//! The APIs behind the web UI's cluster, stores and blocks pages, on real nodes over a
//! filesystem bucket: `/api/v1/status/nodes` lists every member with its health card,
//! and `/api/v1/stores` every StoreAPI source the planner fans out to (Thanos's shape).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use strata::cli::import::import_openmetrics;
use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::tools::upload_dir;
use strata_testing::{now_ms, wait_until, TestNode};

fn input(end_s: i64) -> String {
    let start = end_s - 4 * 3600;
    let mut out = String::from("# TYPE ui_api_total counter\n");
    for t in (start..end_s).step_by(60) {
        out.push_str(&format!("ui_api_total{{series=\"a\"}} {} {t}\n", t - start));
    }
    out.push_str("# EOF\n");
    out
}

#[actix_rt::test]
async fn nodes_and_stores_are_listed_from_any_node() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let end_s = now_ms() / 1000 / 3600 * 3600 - 2 * 3600;
    import_openmetrics(&mut input(end_s).as_bytes(), local.path(), 2 * 3600 * 1000)
        .expect("import");
    let store = FilesystemStore::new(bucket_dir.path()).expect("bucket");
    let labels = BTreeMap::from([("cluster".to_string(), "ui".to_string())]);
    upload_dir(&store, local.path(), &labels, &mut |_| {})
        .await
        .expect("upload");

    let n1 = TestNode::builder()
        .id("ui-a")
        .roles(&["store_shard", "query_planner"])
        .filesystem_bucket(bucket_dir.path())
        .start()
        .await;
    let n2 = TestNode::builder()
        .id("ui-b")
        .roles(&["scraper_shipper", "store_shard"])
        .filesystem_bucket(bucket_dir.path())
        .join(n1.gossip_addr())
        .start()
        .await;

    // Every member's card, from either node.
    wait_until(
        "both nodes list both cards",
        Duration::from_secs(30),
        || async {
            let v = n2.get_json("/api/v1/status/nodes").await;
            let cards = v["data"].as_array().cloned().unwrap_or_default();
            cards.len() == 2 && cards.iter().all(|c| c["health"]["ready"] == true)
        },
    )
    .await;
    let v = n1.get_json("/api/v1/status/nodes").await;
    let cards = v["data"].as_array().unwrap();
    assert_eq!(cards[0]["id"], "ui-a");
    assert_eq!(
        cards[0]["health"]["roles"],
        json!(["query_planner", "store_shard"])
    );
    assert_eq!(cards[0]["health"]["head_series"], Value::Null);
    assert_eq!(cards[1]["id"], "ui-b");
    assert!(cards[1]["health"]["head_series"].is_u64(), "{v}");
    assert!(
        cards[1]["health"]["resident_memory_bytes"]
            .as_u64()
            .unwrap()
            > 0,
        "{v}"
    );

    // The planner's sources: both bucket stores (with the blocks' external labels once they
    // serve some) and the scraper's local TSDB.
    wait_until(
        "the stores serve the blocks",
        Duration::from_secs(30),
        || async {
            let v = n2.get_json("/api/v1/stores").await;
            let stores = v["data"]["store"].as_array().cloned().unwrap_or_default();
            let served: Vec<&Value> = stores
                .iter()
                .filter(|s| s["labelSets"] == json!([{"cluster": "ui"}]))
                .collect();
            stores.len() == 2 && !served.is_empty() && v["data"]["sidecar"].is_array()
        },
    )
    .await;
    let v = n1.get_json("/api/v1/stores").await;
    let stores = v["data"]["store"].as_array().unwrap();
    let nodes: Vec<&str> = stores.iter().map(|s| s["node"].as_str().unwrap()).collect();
    assert!(nodes.contains(&"ui-a") && nodes.contains(&"ui-b"), "{v}");
    for s in stores.iter().filter(|s| s["labelSets"] != json!([])) {
        assert!(s["minTime"].as_i64() <= s["maxTime"].as_i64(), "{s}");
        assert_eq!(s["lastError"], Value::Null);
    }
    let sidecar = &v["data"]["sidecar"][0];
    assert_eq!(sidecar["node"], "ui-b", "{v}");
    assert_eq!(sidecar["source"], "local tsdb");

    n2.handle.stop().await;
    n1.handle.stop().await;
}

#[actix_rt::test]
async fn block_metas_are_read_once_and_deleted_blocks_leave_the_listing() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let end_s = now_ms() / 1000 / 3600 * 3600 - 2 * 3600;
    let metas = import_openmetrics(&mut input(end_s).as_bytes(), local.path(), 2 * 3600 * 1000)
        .expect("import");
    assert!(metas.len() >= 2);
    let store = FilesystemStore::new(bucket_dir.path()).expect("bucket");
    let labels = BTreeMap::from([("cluster".to_string(), "ui".to_string())]);
    upload_dir(&store, local.path(), &labels, &mut |_| {})
        .await
        .expect("upload");
    let node = TestNode::builder()
        .roles(&["query_planner"])
        .filesystem_bucket(bucket_dir.path())
        .start()
        .await;
    let listed = |v: &Value| -> Vec<String> {
        v["data"]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["ulid"].as_str().unwrap().to_string())
            .collect()
    };
    let first = node.get_json("/api/v1/blocks").await;
    assert_eq!(listed(&first).len(), metas.len(), "{first}");

    // A meta.json overwritten after upload (it never is) is not read again: the listing
    // comes from what was read once.
    let a = metas[0].ulid.to_string();
    std::fs::write(bucket_dir.path().join(&a).join("meta.json"), b"{not json").unwrap();
    let second = node.get_json("/api/v1/blocks").await;
    assert_eq!(listed(&second), listed(&first), "{second}");
    assert_eq!(second["data"]["err"], Value::Null, "{second}");

    // A block deleted from the bucket leaves the listing.
    let b = metas[1].ulid.to_string();
    std::fs::remove_dir_all(bucket_dir.path().join(&b)).unwrap();
    let third = node.get_json("/api/v1/blocks").await;
    assert!(!listed(&third).contains(&b), "{third}");
    assert!(listed(&third).contains(&a), "{third}");
    node.handle.stop().await;
}
