//! DNS and HTTP service discovery against real servers, compared with Prometheus 2.42 on the
//! same config: dnsmasq (Debian's) answers SRV, A, AAAA and MX records on 127.0.0.2:53, a
//! test endpoint serves `http_sd` groups, and the targets each side lists — discovered labels,
//! labels after relabeling, scrape URL and pool — are the same. Prometheus reads the test's
//! resolv.conf through a private mount namespace; Strata through `node.resolv_conf`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata_testing::process::{require_binary, ChildGuard, Prometheus};
use strata_testing::targets::BodyServer;
use strata_testing::{wait_until, TestNode};

/// dnsmasq on 127.0.0.2:53 with the test's records only; needs root for port 53.
fn start_dnsmasq(records: &[String]) -> ChildGuard {
    let bin = require_binary("dnsmasq");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.2",
        "--port=53",
        "--user=root",
        "--log-facility=-",
    ]);
    cmd.args(records);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    ChildGuard::new(child, "dnsmasq")
}

/// Every active target as (pool, scrape URL, discovered labels, labels), sorted.
fn targets(v: &Value) -> BTreeSet<String> {
    v["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            serde_json::json!({
                "pool": t["scrapePool"],
                "url": t["scrapeUrl"],
                "discovered": t["discoveredLabels"],
                "labels": t["labels"],
            })
            .to_string()
        })
        .collect()
}

#[actix_rt::test]
async fn dns_and_http_discovery_list_the_targets_prometheus_lists() {
    let (t1, t2) = (BodyServer::start().await, BodyServer::start().await);
    for t in [&t1, &t2] {
        t.set("/metrics", "text/plain; version=0.0.4", "x 1\n");
    }
    let records = vec![
        format!(
            "--srv-host=_metrics._tcp.strata.test,t1.strata.test,{}",
            t1.addr.port()
        ),
        format!(
            "--srv-host=_metrics._tcp.strata.test,t2.strata.test,{},1",
            t2.addr.port()
        ),
        "--host-record=t1.strata.test,127.0.0.1".to_string(),
        "--host-record=t2.strata.test,127.0.0.1".to_string(),
        "--host-record=multi.strata.test,127.0.0.1".to_string(),
        "--host-record=v6.strata.test,::1".to_string(),
        "--mx-host=strata.test,t1.strata.test,10".to_string(),
    ];
    let _dns = start_dnsmasq(&records);
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.2\n").unwrap();

    let sd = BodyServer::start().await;
    sd.set(
        "/sd",
        "application/json",
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"env": "prod", "__meta_owner": "team-a"}}}}, {{"targets": ["{}", "other.invalid:1"]}}]"#,
            t1.addr, t2.addr
        ),
    );
    let jobs = [
        "  - job_name: srv\n    dns_sd_configs: [{names: ['_metrics._tcp.strata.test'], refresh_interval: 1s}]\n".to_string(),
        format!("  - job_name: a\n    dns_sd_configs: [{{names: ['multi.strata.test', 'v6.strata.test'], type: A, port: {}, refresh_interval: 1s}}]\n", t1.addr.port()),
        format!("  - job_name: aaaa\n    dns_sd_configs: [{{names: ['v6.strata.test'], type: AAAA, port: {}, refresh_interval: 1s}}]\n", t2.addr.port()),
        format!("  - job_name: mx\n    dns_sd_configs: [{{names: ['strata.test'], type: MX, port: {}, refresh_interval: 1s}}]\n", t1.addr.port()),
        format!("  - job_name: http\n    http_sd_configs: [{{url: 'http://{}/sd', refresh_interval: 1s}}]\n    relabel_configs:\n      - source_labels: [__meta_owner]\n        target_label: owner\n", sd.addr),
    ];
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n{}",
        jobs.concat()
    );
    let prom = Prometheus::start_with_resolv_conf(&scrape, &resolv).await;
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&scrape)
        .resolv_conf(&resolv)
        .start()
        .await;

    let expected_count = 2 + 1 + 1 + 1 + 3;
    for base in [&prom.base, &node.base] {
        wait_until(
            "every discovered target is listed",
            Duration::from_secs(30),
            || async { targets(&strata_testing::api::targets(base).await).len() == expected_count },
        )
        .await;
    }
    let theirs = targets(&strata_testing::api::targets(&prom.base).await);
    let ours = targets(&strata_testing::api::targets(&node.base).await);
    assert_eq!(ours, theirs);
    node.handle.stop().await;
}
