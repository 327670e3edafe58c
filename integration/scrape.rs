//! Scraping side by side with Debian's Prometheus 2.42: both scrape the same real targets
//! (prometheus-node-exporter, a `prometheus_client` Python exporter, via static and file_sd
//! configs with relabeling) with the same scrape config, and must store the same set of
//! series. Reloading a config that drops a target makes that target's series stale.

use std::path::Path;
use std::time::Duration;

use strata_testing::api::{all_series, target_with_url, targets};
use strata_testing::targets::{start_node_exporter, start_python_exporter, BodyServer};
use strata_testing::{
    free_port, http_client, wait_http_ok, wait_until, ChildGuard, Prometheus, TestNode, TimedOut,
    Wait,
};

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
    let prom = Prometheus::start(&yaml).await;
    let node = TestNode::builder().yaml(&yaml).start().await;

    // Every target of both servers has been scraped.
    let scraped = |base: &str| {
        let base = base.to_string();
        async move {
            let t = targets(&base).await;
            let active = t["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            active.len() == 3 && active.iter().all(|a| a["health"] == "up")
        }
    };
    for (who, base) in [("strata", &node.base), ("prometheus", &prom.base)] {
        let up = Wait::new(format!("{who}'s 3 targets up"), Duration::from_secs(30))
            .until(|| scraped(base))
            .await;
        if let Err(e) = up {
            panic!("{e}; {who} targets: {}", targets(base).await);
        }
    }

    let last = parking_lot::Mutex::new((Vec::new(), Vec::new()));
    let same = Wait::new("the same series in both", Duration::from_secs(30))
        .until(|| async {
            let a = all_series(&node.base).await;
            let b = all_series(&prom.base).await;
            let equal = !a.is_empty() && a == b;
            *last.lock() = (a, b);
            equal
        })
        .await;
    let last = last.lock().clone();
    let (only_strata, only_prom) = diff(&last.0, &last.1);
    assert!(
        same.is_ok(),
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
        // `lintProblems` is Strata's extra field (naming problems, `scrape::lint`); the
        // Prometheus fields must be the same.
        let strip = |mut v: serde_json::Value| {
            if let Some(o) = v.as_object_mut() {
                for k in ["lastScrape", "lastScrapeDuration", "lintProblems"] {
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
    same_introspection_as_prometheus(&node.base, &prom.base).await;
    node.handle.stop().await;
}

/// The introspection endpoints answer like Prometheus 2.42 scraping the same targets: the
/// same scrape pools, the same per-target metadata, and the same shapes of the status pages.
async fn same_introspection_as_prometheus(ours: &str, prom: &str) {
    let get = |base: &str, path: &str| {
        let url = format!("{base}{path}");
        async move {
            let resp = http_client().get(&url).send().await.expect("request");
            assert_eq!(resp.status().as_u16(), 200, "{url}");
            resp.json::<serde_json::Value>().await.expect("json")
        }
    };
    let both = |path: &'static str| async move { (get(ours, path).await, get(prom, path).await) };

    let (a, b) = both("/api/v1/scrape_pools").await;
    assert_eq!(a["data"], b["data"], "scrape pools");

    let (a, b) = both("/api/v1/targets?scrapePool=node").await;
    let urls = |v: &serde_json::Value| -> Vec<String> {
        v["data"]["activeTargets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["scrapeUrl"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(urls(&a), urls(&b), "targets of pool node");
    assert_eq!(urls(&a).len(), 1, "{a}");

    // Metadata of the node exporter target, as sets (Prometheus keeps it in a Go map).
    let (a, b) = both("/api/v1/targets/metadata?match_target=%7Bjob%3D%22node%22%7D").await;
    let set = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v["data"]
            .as_array()
            .map(|a| a.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    };
    let (sa, sb) = (set(&a), set(&b));
    assert!(!sa.is_empty(), "no target metadata: {a}");
    assert_eq!(
        sa,
        sb,
        "target metadata differs:\nonly in Strata: {:#?}\nonly in Prometheus: {:#?}",
        sa.difference(&sb).collect::<Vec<_>>(),
        sb.difference(&sa).collect::<Vec<_>>()
    );
    let (a, b) = both("/api/v1/targets/metadata?metric=node_cpu_seconds_total").await;
    assert_eq!(set(&a), set(&b), "metadata of one metric");

    // Status pages: the same fields with the same JSON types.
    fn shape(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.first().map(shape).into_iter().collect())
            }
            serde_json::Value::String(_) => "string".into(),
            serde_json::Value::Number(_) => "number".into(),
            serde_json::Value::Bool(_) => "bool".into(),
            serde_json::Value::Null => "null".into(),
        }
    }
    let (a, b) = both("/api/v1/status/runtimeinfo").await;
    assert_eq!(shape(&a), shape(&b), "runtimeinfo: {a} vs {b}");
    // Prometheus fills its top-10 lists lazily (empty right after start), so only the head
    // stats and the keys are compared; ours must have the lists filled.
    let (a, b) = both("/api/v1/status/tsdb").await;
    assert_eq!(
        shape(&a["data"]["headStats"]),
        shape(&b["data"]["headStats"])
    );
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&a), keys(&b), "tsdb status keys");
    assert!(
        a["data"]["headStats"]["numSeries"].as_u64().unwrap_or(0) > 100,
        "{a}"
    );
    assert!(
        a["data"]["seriesCountByMetricName"][0]["value"]
            .as_u64()
            .is_some_and(|n| n > 1),
        "{a}"
    );
    let (a, b) = both("/api/v1/status/config").await;
    for v in [&a, &b] {
        let yaml: serde_json::Value =
            serde_norway::from_str(v["data"]["yaml"].as_str().unwrap_or("")).expect("yaml");
        let jobs: Vec<&str> = yaml["scrape_configs"]
            .as_array()
            .map(|a| a.iter().filter_map(|j| j["job_name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(jobs.len(), 3, "{v}");
    }
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
    let resp = http_client()
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
    // Started from a config file, so `POST /-/reload` has something to re-read.
    let node = TestNode::builder()
        .id("reload-node")
        .yaml(&jobs_yaml(&addr, &["a", "b"]))
        .config_file()
        .start()
        .await;
    let base = node.base.clone();

    wait_until("both targets scraped", Duration::from_secs(20), || async {
        let v = instant(&base, "metric_a + on() metric_b").await;
        v["data"]["result"].as_array().is_some_and(|r| r.len() == 1)
    })
    .await;

    let cfg = node
        .config_path()
        .expect("started from a file")
        .to_path_buf();
    let text = std::fs::read_to_string(&cfg).expect("read config");
    let without_b = text.replace(&jobs_yaml(&addr, &["a", "b"]), &jobs_yaml(&addr, &["a"]));
    std::fs::write(&cfg, without_b).expect("rewrite config");
    let resp = http_client()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert!(
        resp.status().is_success(),
        "reload failed: {}",
        resp.text().await.unwrap_or_default()
    );

    // The removed target's series and its `up` go stale after just over two intervals
    // (Prometheus waits that long in case the target comes back), not after 5 minutes.
    for q in ["metric_b", "up{job=\"b\"}"] {
        let gone = Wait::new(
            format!("{q} gone after the reload"),
            Duration::from_secs(10),
        )
        .until(|| async {
            instant(&base, q).await["data"]["result"]
                .as_array()
                .is_some_and(|r| r.is_empty())
        })
        .await;
        if let Err(e) = gone {
            panic!("{e}; it still returns {}", instant(&base, q).await);
        }
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
    let resp = http_client()
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
    node.handle.stop().await;
}

/// Waits up to 20 s for `q` to return at least one series.
async fn has_result(base: &str, q: &str) -> Result<Duration, TimedOut> {
    Wait::new(format!("{q} to return a series"), Duration::from_secs(20))
        .until(|| async { instant(base, q).await.pointer("/data/result/0").is_some() })
        .await
}

/// SIGHUP to the real binary re-reads the config file like `POST /-/reload`: a job added to
/// the file starts while the process keeps running. (Which pools restart is covered by the
/// manager's unit tests.)
#[actix_rt::test]
async fn sighup_reloads_the_config_file() {
    let server = BodyServer::start().await;
    server.set("/a", "text/plain; version=0.0.4", "metric_a 1\n");
    server.set("/b", "text/plain; version=0.0.4", "metric_b 2\n");
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = dir.path().join("strata.yml");
    let node_part = format!(
        "node:\n  id: sighup-node\n  web_listen: 127.0.0.1:{port}\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n",
        dir.path().join("data").display()
    );
    std::fs::write(&cfg, format!("{node_part}{}", jobs_yaml(&addr, &["a"]))).expect("config");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["node", "--config"])
        .arg(&cfg)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn strata");
    let guard = ChildGuard::new(child, "strata");
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(30)).await;
    assert!(
        has_result(&base, "metric_a").await.is_ok(),
        "job a was never scraped"
    );

    std::fs::write(
        &cfg,
        format!("{node_part}{}", jobs_yaml(&addr, &["a", "b"])),
    )
    .expect("rewrite config");
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(guard.child.id() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP could not be sent");

    assert!(
        has_result(&base, "metric_a + on() metric_b").await.is_ok(),
        "job b did not start after SIGHUP: {}",
        targets(&base).await
    );
    let t = targets(&base).await;
    assert_eq!(
        t["data"]["activeTargets"].as_array().map(Vec::len),
        Some(2),
        "{t}"
    );
    // The node is still the same process, up and serving.
    assert_eq!(
        http_client()
            .get(format!("{base}/-/healthy"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        200
    );
    drop(guard);
}
