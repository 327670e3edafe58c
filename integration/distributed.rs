//! The distributed query path with in-process nodes: two replicas receive the same series (one
//! with a gap), a query-only node fans out over the StoreAPI and deduplicates them into one
//! series per target, equal to what a single complete replica answers; `dedup=false` shows both
//! replicas; a dead source is a warning with partial response and an error without.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strata::cluster::transport::{TransportClient, TransportConfig};
use strata::http::remote_write;
use strata::query::fanout::{ClusterQueryable, FanoutOptions, FanoutRuntime, RemoteSource};
use strata::storage::model::{Labels, Matcher, Queryable, SelectHints};
use strata_testing::{free_port, http_client, now_ms, remote_write as push, wait_until, TestNode};

const STEP: i64 = 15_000;

fn counter(start: i64, n: i64, skip: Option<(i64, i64)>) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    for inst in ["a", "b"] {
        let samples: Vec<(i64, f64)> = (0..n)
            .filter(|i| skip.is_none_or(|(from, to)| *i < from || *i >= to))
            .map(|i| (start + i * STEP + 2, (i * 10) as f64))
            .collect();
        out.push((
            Labels::from_pairs([
                ("__name__", "requests_total"),
                ("instance", inst),
                ("job", "api"),
            ]),
            samples,
        ));
    }
    out
}

async fn query(base: &str, params: &[(&str, String)]) -> Value {
    http_client()
        .post(format!("{base}/api/v1/query_range"))
        .form(params)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json")
}

fn series_count(v: &Value) -> usize {
    v["data"]["result"].as_array().map(|a| a.len()).unwrap_or(0)
}

#[actix_rt::test]
async fn replicas_are_deduplicated_across_nodes_and_gaps_are_filled() {
    let replica = || TestNode::builder().roles(&["scraper_shipper", "query_planner"]);
    let a = replica().start().await;
    let b = replica().join(a.gossip_addr()).start().await;
    let q = TestNode::builder()
        .roles(&["query_planner"])
        .join(a.gossip_addr())
        .start()
        .await;
    let single = replica().start().await;

    let start = (now_ms() - 30 * 60_000) / 60_000 * 60_000;
    let n = 100;
    push(&a.base, remote_write::encode(&counter(start, n, None))).await;
    push(
        &b.base,
        remote_write::encode(&counter(start, n, Some((30, 60)))),
    )
    .await;
    push(&single.base, remote_write::encode(&counter(start, n, None))).await;

    wait_until(
        "the query node to see both replicas",
        Duration::from_secs(15),
        || async {
            q.handle
                .cluster
                .live_peers_with_role(strata::config::Role::ScraperShipper)
                .len()
                == 2
        },
    )
    .await;

    let range = |query: &str| {
        vec![
            ("query", query.to_string()),
            (
                "start",
                format!("{:.3}", (start + 5 * 60_000 + 7) as f64 / 1000.0),
            ),
            (
                "end",
                format!("{:.3}", (start + 24 * 60_000 + 7) as f64 / 1000.0),
            ),
            ("step", "30".to_string()),
        ]
    };
    for expr in [
        "requests_total",
        "rate(requests_total[2m])",
        "increase(requests_total[5m])",
    ] {
        let deduped = query(&q.base, &range(expr)).await;
        let reference = query(&single.base, &range(expr)).await;
        assert_eq!(deduped["status"], "success", "{deduped}");
        assert_eq!(
            series_count(&deduped),
            2,
            "{expr}: want one series per target: {deduped}"
        );
        assert_eq!(
            deduped["data"]["result"], reference["data"]["result"],
            "{expr}: dedup differs from a single complete replica"
        );
    }

    let mut raw = range("requests_total");
    raw.push(("dedup", "false".to_string()));
    let both = query(&q.base, &raw).await;
    assert_eq!(
        series_count(&both),
        4,
        "dedup=false must show both replicas: {both}"
    );
    let replicas: std::collections::BTreeSet<String> = both["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["metric"]["replica"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(replicas.len(), 2, "{both}");

    for n in [a, b, q, single] {
        n.handle.stop().await;
    }
}

#[actix_rt::test]
async fn a_dead_source_is_a_warning_with_partial_response_and_an_error_without() {
    // A source that never answers: a port nothing listens on.
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let client = Arc::new(
        TransportClient::new(TransportConfig {
            connect_timeout: Duration::from_millis(300),
            ..TransportConfig::default()
        })
        .expect("client"),
    );
    let remote = vec![RemoteSource {
        node: "gone".into(),
        rpc_addr: dead,
    }];
    let opts = |partial| FanoutOptions {
        dedup: true,
        replica_labels: vec!["replica".into()],
        partial_response: partial,
        timeout: Duration::from_secs(2),
        max_source_resolution_ms: 0,
    };
    let matchers = [Matcher::equal("__name__", "up")];
    let runtime = Arc::new(FanoutRuntime::start().expect("fan-out runtime"));
    let result = tokio::task::spawn_blocking({
        let (client, remote) = (client.clone(), remote.clone());
        move || {
            let partial = ClusterQueryable::new(
                Vec::new(),
                remote.clone(),
                client.clone(),
                opts(true),
                runtime.clone(),
            );
            let ok = partial.select(&matchers, 0, 1000, &SelectHints::default());
            let warnings = partial.take_warnings();
            let strict = ClusterQueryable::new(Vec::new(), remote, client, opts(false), runtime);
            let err = strict.select(&matchers, 0, 1000, &SelectHints::default());
            (ok.map(|s| s.len()), warnings, err.is_err())
        }
    })
    .await
    .expect("blocking task");
    assert_eq!(result.0.ok(), Some(0));
    assert_eq!(result.1.len(), 1);
    assert!(result.1[0].contains("gone"), "{:?}", result.1);
    assert!(
        result.2,
        "without partial response a dead source must fail the query"
    );
}
