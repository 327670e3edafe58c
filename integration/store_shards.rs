//! StoreShards serving a bucket: blocks uploaded to a shared bucket are split among three
//! in-process StoreShards by rendezvous hashing (each block served exactly once), a query on
//! any node sees every block's data exactly once, and when one shard leaves its blocks are
//! picked up by the others without double counting.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strata::cli::import::import_openmetrics;
use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::tools::upload_dir;
use strata_testing::{http_client, metric_value, now_ms, wait_until, TestNode, Wait};

const SERIES: usize = 12;
const STEP_S: i64 = 60;

/// Hours of data: eight 2h blocks, so that rendezvous hashing over three shards leaves them
/// all on one shard with a chance of 3 in 3^8 (with four blocks it was 1 in 27).
const HOURS: i64 = 16;

/// OpenMetrics text: `SERIES` counters over `HOURS` hours ending 2 hours ago.
fn input(end_s: i64) -> String {
    let start = end_s - HOURS * 3600;
    let mut out = String::from("# TYPE store_test_total counter\n");
    for t in (start..end_s).step_by(STEP_S as usize) {
        for i in 0..SERIES {
            out.push_str(&format!(
                "store_test_total{{series=\"s{i}\"}} {} {t}\n",
                (t - start) / STEP_S * (i as i64 + 1)
            ));
        }
    }
    out.push_str("# EOF\n");
    out
}

fn blocks_serving(v: &Value) -> u64 {
    v["data"]["roles"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["role"] == "store_shard"))
        .and_then(|r| r["detail"]["blocks_serving"].as_u64())
        .unwrap_or(0)
}

async fn count_samples(base: &str, start_s: i64, end_s: i64) -> Option<f64> {
    let q = format!(
        "sum(count_over_time(store_test_total[{}s]))",
        end_s - start_s + 60
    );
    let v: Value = http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", q), ("time", end_s.to_string())])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[actix_rt::test]
async fn three_store_shards_split_the_bucket_and_take_over_a_leaver() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let end_s = now_ms() / 1000 / 3600 * 3600 - 2 * 3600;
    let metas = import_openmetrics(&mut input(end_s).as_bytes(), local.path(), 2 * 3600 * 1000)
        .expect("import");
    assert!(metas.len() >= 4, "want several blocks, got {}", metas.len());
    let expected: f64 = metas.iter().map(|m| m.stats.num_samples as f64).sum();
    let store = FilesystemStore::new(bucket_dir.path()).expect("bucket");
    let labels = BTreeMap::from([("cluster".to_string(), "test".to_string())]);
    upload_dir(&store, local.path(), &labels, &mut |_| {})
        .await
        .expect("upload");

    let shard = || {
        TestNode::builder()
            .roles(&["store_shard", "query_planner"])
            .filesystem_bucket(bucket_dir.path())
    };
    let n1 = shard().start().await;
    let n2 = shard().join(n1.gossip_addr()).start().await;
    let n3 = shard().join(n1.gossip_addr()).start().await;
    let nodes = [&n1, &n2, &n3];

    let total_blocks = metas.len() as u64;
    let seen = std::sync::Mutex::new(Vec::new());
    let split = Wait::new(
        "the blocks split exactly once among the shards",
        Duration::from_secs(30),
    )
    .until(|| async {
        let mut sum = 0;
        let mut each = Vec::new();
        let mut views = Vec::new();
        for n in nodes {
            let v = n.get_json("/api/v1/admin/roles").await;
            let b = blocks_serving(&v);
            each.push(b);
            sum += b;
            views.push(v["data"]["roles"].to_string());
        }
        let done = sum == total_blocks && each.iter().filter(|b| **b > 0).count() >= 2;
        *seen.lock().unwrap() = views;
        done
    })
    .await;
    assert!(
        split.is_ok(),
        "blocks were not split exactly once among the shards: {total_blocks} blocks; the \
         shards' roles when last asked: {:#?}",
        seen.lock().unwrap()
    );

    let start_s = end_s - HOURS * 3600;
    for n in nodes {
        let got = count_samples(&n.base, start_s, end_s).await;
        assert_eq!(
            got,
            Some(expected),
            "{} counted a different number of samples",
            n.base
        );
    }

    n3.handle.stop().await;
    wait_until(
        "the remaining shards to take the leaver's blocks over",
        Duration::from_secs(30),
        || async {
            let a = blocks_serving(&n1.get_json("/api/v1/admin/roles").await);
            let b = blocks_serving(&n2.get_json("/api/v1/admin/roles").await);
            a + b == total_blocks
        },
    )
    .await;
    assert_eq!(
        count_samples(&n1.base, start_s, end_s).await,
        Some(expected),
        "no double counting after the move"
    );
    n1.handle.stop().await;
    n2.handle.stop().await;
}

#[actix_rt::test]
async fn a_corrupt_bucket_block_is_a_warning_and_a_metric_while_the_others_serve() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let end_s = now_ms() / 1000 / 3600 * 3600 - 2 * 3600;
    let metas = import_openmetrics(&mut input(end_s).as_bytes(), local.path(), 2 * 3600 * 1000)
        .expect("import");
    let store = FilesystemStore::new(bucket_dir.path()).expect("bucket");
    let labels = BTreeMap::from([("cluster".to_string(), "test".to_string())]);
    upload_dir(&store, local.path(), &labels, &mut |_| {})
        .await
        .expect("upload");
    // Flip bytes in the middle of one block's chunk segment (same size: only reading finds it).
    let victim = metas[0].ulid.to_string();
    let seg = bucket_dir
        .path()
        .join(&victim)
        .join("chunks")
        .join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&seg, bytes).unwrap();

    let node = TestNode::builder()
        .roles(&["store_shard", "query_planner"])
        .filesystem_bucket(bucket_dir.path())
        .start()
        .await;
    wait_until(
        "the store to serve every block",
        Duration::from_secs(30),
        || async {
            blocks_serving(&node.get_json("/api/v1/admin/roles").await) == metas.len() as u64
        },
    )
    .await;
    let ask = |partial: &'static str| {
        let base = node.base.clone();
        async move {
            let q = format!(
                "sum(count_over_time(store_test_total[{}s]))",
                (HOURS + 1) * 3600
            );
            http_client()
                .post(format!("{base}/api/v1/query"))
                .form(&[
                    ("query", q),
                    ("time", end_s.to_string()),
                    ("partial_response", partial.to_string()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = ask("true").await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains(&victim),
        "the corrupt block must be named in a warning: {v}"
    );
    let served: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    assert!(served > 0.0, "healthy blocks must still answer: {v}");
    let strict = ask("false").await;
    assert_eq!(
        strict.status().as_u16(),
        422,
        "without partial response a corrupt block fails the query"
    );
    let metrics = node.metrics().await;
    let failures = metric_value(&metrics, "strata_store_block_query_failures_total").unwrap_or(0.0);
    assert!(failures >= 1.0, "no failure counted:\n{metrics}");
    assert_eq!(node.status("/-/healthy").await, 200);
    node.handle.stop().await;
}
