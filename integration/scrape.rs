//! Scraping side by side with Debian's Prometheus 2.42: both scrape the same real targets
//! (prometheus-node-exporter, a `prometheus_client` Python exporter, via static and file_sd
//! configs with relabeling) with the same scrape config, and must store the same set of
//! series. Reloading a config that drops a target makes that target's series stale.

use std::path::Path;
use std::time::Duration;

use strata::config::Config;
use strata::node::{self, Listeners, StartOptions};
use tokio_util::sync::CancellationToken;

use crate::scrape_support::{
    all_series, start_node_exporter, start_python_exporter, target_with_url, targets, BodyServer,
};
use crate::support::{start_node, start_prometheus, wait_until, TestNode};

/// The scrape config both servers get: static and file_sd targets, target relabeling,
/// metric relabeling, honor_labels on and off (the Python exporter exposes `job` and
/// `instance` labels that conflict with the target's).
fn scrape_yaml(node_exporter: &str, python: &str, sd_file: &Path) -> String {
    format!(
        r#"scrape_configs:
  - job_name: node
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['{node_exporter}']
        labels: {{env: test}}
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+):(\d+)'
        target_label: host
        replacement: '$1'
      - regex: 'env'
        action: labelmap
        replacement: 'environment'
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_memstats_.*'
        action: drop
  - job_name: python
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['{python}']
  - job_name: python_honor
    scrape_interval: 1s
    scrape_timeout: 1s
    honor_labels: true
    file_sd_configs:
      - files: ['{sd}']
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'demo_.*'
        action: keep
      - regex: 'method'
        action: labeldrop
"#,
        sd = sd_file.display()
    )
}

fn diff(a: &[String], b: &[String]) -> (Vec<String>, Vec<String>) {
    let only_a = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    let only_b = b.iter().filter(|x| !a.contains(x)).cloned().collect();
    (only_a, only_b)
}

#[actix_rt::test]
async fn strata_stores_the_same_series_as_prometheus() {
    let (_ne, ne_addr) = start_node_exporter().await;
    let (_py, py_addr) = start_python_exporter().await;
    let sd_dir = tempfile::tempdir().expect("tempdir");
    let sd_file = sd_dir.path().join("targets.json");
    std::fs::write(
        &sd_file,
        format!(r#"[{{"targets":["{py_addr}"],"labels":{{"team":"blue"}}}}]"#),
    )
    .expect("write sd file");
    let yaml = scrape_yaml(&ne_addr, &py_addr, &sd_file);
    let prom = start_prometheus(&yaml).await;
    let node = start_node(false, &yaml).await;

    // Every target of both servers has been scraped at least twice.
    let scraped = |base: String| async move {
        let t = targets(&base).await;
        let active = t["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        active.len() == 3 && active.iter().all(|a| a["health"] == "up")
    };
    assert!(
        wait_until(Duration::from_secs(30), || scraped(node.base.clone())).await,
        "strata targets: {}",
        targets(&node.base).await
    );
    assert!(
        wait_until(Duration::from_secs(30), || scraped(prom.base.clone())).await,
        "prometheus targets: {}",
        targets(&prom.base).await
    );

    let last = std::sync::Arc::new(parking_lot::Mutex::new((Vec::new(), Vec::new())));
    let same = wait_until(Duration::from_secs(30), || {
        let (s, p) = (node.base.clone(), prom.base.clone());
        let last = last.clone();
        async move {
            let a = all_series(&s).await;
            let b = all_series(&p).await;
            let equal = !a.is_empty() && a == b;
            *last.lock() = (a, b);
            equal
        }
    })
    .await;
    let last = last.lock().clone();
    let (only_strata, only_prom) = diff(&last.0, &last.1);
    assert!(
        same,
        "series differ:\nonly in Strata: {only_strata:#?}\nonly in Prometheus: {only_prom:#?}"
    );
    // The report series, the conflict renaming and both relabelings are part of the set.
    let a = &last.0;
    for needle in [
        "__name__=up,env=test,environment=test,host=127.0.0.1,instance=",
        "__name__=scrape_series_added,instance=",
        "__name__=demo_conflict,exported_instance=x,exported_job=inner,instance=",
        "__name__=demo_conflict,instance=x,job=inner,team=blue",
    ] {
        assert!(
            a.iter().any(|s| s.starts_with(needle)),
            "no series starting with {needle:?} in {a:#?}"
        );
    }
    assert!(
        !a.iter()
            .any(|s| s.contains("go_memstats_") && s.contains("job=node")),
        "metric relabel drop did not apply"
    );

    // The targets API answers like Prometheus's, timing fields aside.
    let t = targets(&node.base).await;
    let pt = targets(&prom.base).await;
    for ours in t["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let url = ours["scrapeUrl"].as_str().unwrap_or("").to_string();
        let pool = ours["scrapePool"].clone();
        let theirs = pt["data"]["activeTargets"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|x| x["scrapeUrl"] == url.as_str() && x["scrapePool"] == pool)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("prometheus has no target {url} in {pool}: {pt}"));
        let strip = |mut v: serde_json::Value| {
            if let Some(o) = v.as_object_mut() {
                for k in ["lastScrape", "lastScrapeDuration"] {
                    o.remove(k);
                }
            }
            v
        };
        assert_eq!(strip(ours.clone()), strip(theirs), "target {url} differs");
    }
    let py = target_with_url(&t, &format!("{py_addr}/metrics")).expect("python target listed");
    for key in [
        "discoveredLabels",
        "labels",
        "scrapePool",
        "scrapeUrl",
        "globalUrl",
        "lastError",
        "lastScrape",
        "lastScrapeDuration",
        "health",
        "scrapeInterval",
        "scrapeTimeout",
    ] {
        assert!(py.get(key).is_some(), "target lacks {key}: {py}");
    }
    assert_eq!(py["scrapeInterval"], "1s");
    assert_eq!(py["discoveredLabels"]["__address__"], py_addr.as_str());
    let md = node
        .get_json("/api/v1/metadata?metric=demo_temperature_celsius")
        .await;
    assert_eq!(
        md["data"]["demo_temperature_celsius"][0]["type"], "gauge",
        "{md}"
    );
    node.handle.stop().await;
}

/// A node started from a config file, so `POST /-/reload` has something to re-read.
async fn start_node_with_file(dir: &Path, scrape: &str) -> (node::NodeHandle, String) {
    let path = dir.join("strata.yml");
    let yaml = format!(
        "node:\n  id: reload-node\n  web_listen: 127.0.0.1:0\n  data_dir: {}\n{scrape}",
        dir.join("data").display()
    );
    std::fs::write(&path, yaml).expect("write config");
    let config = Config::load(&path).expect("config loads");
    let listeners = Listeners::bind(&config).expect("bind");
    let opts = StartOptions {
        http_workers: 1,
        config_path: Some(path),
        ..Default::default()
    };
    let handle = node::start(config, listeners, CancellationToken::new(), opts)
        .await
        .expect("node starts");
    let base = format!("http://{}", handle.web_addr);
    (handle, base)
}

fn jobs_yaml(server: &str, jobs: &[&str]) -> String {
    let mut y = String::from("scrape_configs:\n");
    for j in jobs {
        y.push_str(&format!(
            "  - job_name: {j}\n    scrape_interval: 1s\n    metrics_path: /{j}\n    static_configs:\n      - targets: ['{server}']\n"
        ));
    }
    y
}

async fn instant(base: &str, q: &str) -> serde_json::Value {
    let resp = TestNode::client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .expect("query");
    resp.json().await.expect("query json")
}

#[actix_rt::test]
async fn reload_removes_a_target_and_its_series_go_stale() {
    let server = BodyServer::start().await;
    server.set("/a", "text/plain; version=0.0.4", "metric_a 1\n");
    server.set("/b", "text/plain; version=0.0.4", "metric_b 2\n");
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let (handle, base) = start_node_with_file(dir.path(), &jobs_yaml(&addr, &["a", "b"])).await;

    let both = wait_until(Duration::from_secs(20), || {
        let b = base.clone();
        async move {
            let v = instant(&b, "metric_a + on() metric_b").await;
            v["data"]["result"].as_array().is_some_and(|r| r.len() == 1)
        }
    })
    .await;
    assert!(both, "both targets were not scraped");

    let cfg = dir.path().join("strata.yml");
    let text = std::fs::read_to_string(&cfg).expect("read config");
    let without_b = text.replace(&jobs_yaml(&addr, &["a", "b"]), &jobs_yaml(&addr, &["a"]));
    std::fs::write(&cfg, without_b).expect("rewrite config");
    let resp = TestNode::client()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert!(
        resp.status().is_success(),
        "reload failed: {}",
        resp.text().await.unwrap_or_default()
    );

    // The removed target's series and its `up` are stale right away, not after 5 minutes.
    for q in ["metric_b", "up{job=\"b\"}"] {
        let gone = wait_until(Duration::from_secs(10), || {
            let b = base.clone();
            async move {
                instant(&b, q).await["data"]["result"]
                    .as_array()
                    .is_some_and(|r| r.is_empty())
            }
        })
        .await;
        assert!(
            gone,
            "{q} still returns data after the reload: {}",
            instant(&base, q).await
        );
    }
    assert_eq!(
        instant(&base, "metric_a").await["data"]["result"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let t = targets(&base).await;
    assert_eq!(
        t["data"]["activeTargets"].as_array().map(Vec::len),
        Some(1),
        "{t}"
    );

    // A broken config is refused and the running jobs keep going.
    std::fs::write(&cfg, "scrape_configs: [{job_name: }]\n").expect("break config");
    let resp = TestNode::client()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status().as_u16(), 500);
    assert!(resp
        .text()
        .await
        .unwrap_or_default()
        .contains("failed to reload config"));
    assert_eq!(
        targets(&base).await["data"]["activeTargets"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    handle.stop().await;
}
