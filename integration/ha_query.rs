//! Issue 9's acceptance end to end: two ScraperShippers scrape the same target as HA replicas
//! (their replica labels differ) and ship blocks to a real S3 server (s3s-fs); a StoreShard
//! serves the shipped blocks and a query-only node fans out to all of them. A query over a range
//! that spans bucket blocks and head data returns one deduplicated series, and stopping one
//! replica for a while leaves no gap and no counter artefact in `rate()`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, now_ms, wait_until, S3Server, TestNode};

async fn query_range(
    base: &str,
    expr: &str,
    start_ms: i64,
    end_ms: i64,
    extra: &[(&str, &str)],
) -> Value {
    let mut form: Vec<(String, String)> = vec![
        ("query".into(), expr.into()),
        ("start".into(), format!("{:.3}", start_ms as f64 / 1000.0)),
        ("end".into(), format!("{:.3}", end_ms as f64 / 1000.0)),
        ("step".into(), "1".into()),
    ];
    form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    http_client()
        .post(format!("{base}/api/v1/query_range"))
        .form(&form)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json")
}

/// The timestamp (ms) of the newest `ha_requests_total` sample any replica has, as the query
/// node sees it now.
async fn newest_sample_ms(base: &str) -> Option<i64> {
    let v: Value = http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[
            ("query", "max(timestamp(ha_requests_total))"),
            ("dedup", "false"),
        ])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let secs: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
    Some((secs * 1000.0) as i64)
}

fn points(v: &Value, i: usize) -> Vec<(f64, f64)> {
    v["data"]["result"][i]["values"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn ha_replicas_through_s3_and_a_store_shard_dedup_without_gaps_or_false_resets() {
    let s3 = S3Server::start();
    let target = BodyServer::start().await;
    // The target's counter goes up by 10 every 100 ms, in real time.
    let counter = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    {
        let (counter, alive) = (counter.clone(), running.clone());
        let body = std::sync::Arc::new(target);
        let server = body.clone();
        tokio::spawn(async move {
            while alive.load(Ordering::Relaxed) {
                let v = counter.fetch_add(10, Ordering::Relaxed) + 10;
                server.set(
                    "/metrics",
                    "text/plain; version=0.0.4",
                    format!("# TYPE ha_requests_total counter\nha_requests_total {v}\n"),
                );
                // Pacing the counter in real time is part of the test, not a wait.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drop(server);
        });
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  external_labels: {{cluster: ha}}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [\"{}\"]\ntsdb:\n  block_duration: 20s\n{}",
            body.addr,
            s3.bucket_yaml()
        );
        let node = |role: &str| TestNode::builder().roles(&[role]).yaml(&yaml);
        let r1 = node("scraper_shipper").start().await;
        let seed = r1.gossip_addr();
        let r2 = node("scraper_shipper").join(seed).start().await;
        let store = node("store_shard").join(seed).start().await;
        let q = node("query_planner").join(seed).start().await;
        let t0 = now_ms();

        // Let both replicas scrape, cut and ship, then stop one replica for a while.
        wait_until(
            "the StoreShard to serve shipped blocks",
            Duration::from_secs(90),
            || async {
                let v = store.get_json("/api/v1/admin/roles").await;
                v["data"]["roles"]
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r["role"] == "store_shard"))
                    .and_then(|r| r["detail"]["blocks_serving"].as_u64())
                    .unwrap_or(0)
                    >= 2
            },
        )
        .await;
        r2.handle.stop().await;
        let stopped_at = now_ms();
        // The target's counter runs in real time, so "a while" is real time too: wait until
        // the surviving replica has scraped 15 s past the stop.
        wait_until(
            "the surviving replica to scrape alone for 15 s",
            Duration::from_secs(60),
            || async {
                newest_sample_ms(&q.base)
                    .await
                    .is_some_and(|t| t >= stopped_at + 15_000)
            },
        )
        .await;
        let t1 = now_ms() - 1500;

        let deduped = query_range(&q.base, "ha_requests_total", t0 + 3000, t1, &[]).await;
        assert_eq!(deduped["status"], "success", "{deduped}");
        let n = deduped["data"]["result"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0);
        assert_eq!(n, 1, "want one deduplicated series: {deduped}");
        assert!(
            deduped["data"]["result"][0]["metric"]
                .get("replica")
                .is_none(),
            "the replica label must be stripped"
        );
        let pts = points(&deduped, 0);
        let steps = ((t1 - (t0 + 3000)) / 1000) as usize;
        assert!(
            pts.len() + 2 >= steps,
            "gaps in the deduplicated series: {} points for {} steps",
            pts.len(),
            steps
        );
        assert!(
            pts.windows(2).all(|w| w[1].1 >= w[0].1),
            "the deduplicated counter went down"
        );

        let both = query_range(
            &q.base,
            "ha_requests_total",
            t0 + 3000,
            t1,
            &[("dedup", "false")],
        )
        .await;
        assert_eq!(
            both["data"]["result"].as_array().map(|a| a.len()),
            Some(2),
            "{both}"
        );

        // rate() across the replica switch: the counter grows 100/s, so no step may show a
        // reset artefact (a huge value) or a collapse to zero while data exists.
        let rate = query_range(&q.base, "rate(ha_requests_total[5s])", t0 + 8000, t1, &[]).await;
        let rates = points(&rate, 0);
        assert!(!rates.is_empty(), "{rate}");
        for (t, r) in &rates {
            assert!(
                *r > 30.0 && *r < 300.0,
                "rate {r} at {t} (replica 2 stopped at {}) is an artefact",
                stopped_at as f64 / 1000.0
            );
        }
        running.store(false, Ordering::Relaxed);
        for n in [r1, store, q] {
            n.handle.stop().await;
        }
    }
    assert!(
        s3.violations().is_empty(),
        "meta.json uploaded before its block's files: {:?}",
        s3.violations()
    );
}
