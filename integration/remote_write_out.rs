//! Remote write out to a real Prometheus 2.42 started with `--web.enable-remote-write-receiver`:
//! the receiver's series equal Strata's own (external labels added, write relabeling
//! applied), the receiver is down for a minute and every sample Strata stored meanwhile
//! arrives afterwards, and the `prometheus_remote_storage_*` metrics show the retries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strata_testing::process::Prometheus;
use strata_testing::targets::BodyServer;
use strata_testing::{wait_until, TestNode};

const BODY: &str = "# TYPE app_requests_total counter\n\
app_requests_total{code=\"200\"} 10\n\
app_requests_total{code=\"500\"} 1\n\
# TYPE app_queue_depth gauge\n\
app_queue_depth 3\n\
# TYPE app_secret gauge\n\
app_secret 42\n";

/// How long the receiver is down.
const OUTAGE_S: u64 = 60;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get(base: &str, path: &str) -> Value {
    strata_testing::http::get_json(&format!("{base}{path}"))
        .await
        .unwrap_or(Value::Null)
}

/// Every series of job `app` (external and replica labels aside) → its samples in
/// `(from, to]` (ms), read raw with a range selector.
async fn counts(base: &str, from: i64, to: i64) -> BTreeMap<String, u64> {
    let q = format!("{{job=\"app\"}}[{}ms]", to - from);
    let v = get(
        base,
        &format!(
            "/api/v1/query?query={}&time={}",
            enc(&q),
            to as f64 / 1000.0
        ),
    )
    .await;
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let mut labels = r["metric"].clone();
        if let Some(m) = labels.as_object_mut() {
            m.remove("cluster");
            m.remove("replica");
        }
        let n = r["values"].as_array().map(Vec::len).unwrap_or(0) as u64;
        out.insert(labels.to_string(), n);
    }
    out
}

#[actix_rt::test]
async fn samples_reach_a_prometheus_and_survive_a_minute_of_outage() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let mut receiver = Prometheus::start("global: {}\n").await;
    let yaml = [
        "global:\n  scrape_interval: 1s\n  external_labels: {cluster: c1}\n".to_string(),
        format!("scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{}']}}]\n", target.addr),
        format!("remote_write:\n  - url: {}/api/v1/write\n    name: recv\n", receiver.base),
        "    write_relabel_configs: [{source_labels: [__name__], regex: app_secret, action: drop}]\n".to_string(),
        "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 2s}\n".to_string(),
    ]
    .concat();
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&yaml)
        .start()
        .await;
    let from = strata_testing::now_ms();
    wait_until(
        "the receiver has the scraped series",
        Duration::from_secs(30),
        || async {
            let v = get(
                &receiver.base,
                &format!("/api/v1/series?match[]={}", enc("{job=\"app\"}")),
            )
            .await;
            v["data"].as_array().is_some_and(|a| a.len() >= 5)
        },
    )
    .await;

    // The same series on both sides: external label added, app_secret dropped.
    let series = |v: Value| -> Vec<Value> {
        let mut a = v["data"].as_array().cloned().unwrap_or_default();
        a.sort_by_key(|s| s.to_string());
        a
    };
    let theirs = series(
        get(
            &receiver.base,
            &format!("/api/v1/series?match[]={}", enc("{job=\"app\"}")),
        )
        .await,
    );
    assert!(theirs.iter().all(|s| s["cluster"] == "c1"), "{theirs:?}");
    assert!(
        !theirs.iter().any(|s| s["__name__"] == "app_secret"),
        "{theirs:?}"
    );
    let ours: Vec<Value> = series(
        node.get_json(&format!(
            "/api/v1/series?match[]={}",
            enc("{job=\"app\",__name__!=\"app_secret\"}")
        ))
        .await,
    );
    let strip = |v: &Vec<Value>| -> Vec<String> {
        let mut out: Vec<String> = v
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some(m) = s.as_object_mut() {
                    m.remove("cluster");
                    m.remove("replica");
                }
                s.to_string()
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(strip(&theirs), strip(&ours));

    // A minute without the receiver.
    receiver.stop();
    tokio::time::sleep(Duration::from_secs(OUTAGE_S)).await;
    receiver.restart().await;
    let to = strata_testing::now_ms() - 2_000;
    // Every sample of the outage arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut ours = counts(&node.base, from, to).await;
        ours.retain(|k, _| !k.contains("app_secret"));
        let theirs = counts(&receiver.base, from, to).await;
        if !ours.is_empty() && ours.values().all(|n| *n > 50) && ours == theirs {
            break;
        }
        if std::time::Instant::now() > deadline {
            let m = node.metrics().await;
            let rw: Vec<&str> = m
                .lines()
                .filter(|l| l.starts_with("prometheus_remote"))
                .collect();
            assert_eq!(ours, theirs, "metrics:\n{}", rw.join("\n"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let metrics = node.metrics().await;
    let retried = strata_testing::metrics::metric_value(
        &metrics,
        &format!("prometheus_remote_storage_samples_retried_total{{remote_name=\"recv\",url=\"{}/api/v1/write\"}}", receiver.base),
    );
    assert!(retried.is_some_and(|r| r > 0.0), "{metrics}");
    node.handle.stop().await;
}
