//! Sidecar mode against a real Prometheus 2.42 (issue 20): Prometheus scrapes itself with
//! test-sized blocks (`--storage.tsdb.min-block-duration` = `max-block-duration` = 30s, hidden
//! flags); a Strata node in sidecar mode beside it ships every block Prometheus cuts to a real
//! S3 server (s3s-fs) through the node's shipper — the shipped index and chunk files are
//! Prometheus's own bytes, `promtool tsdb list` reads the downloaded blocks with Prometheus's
//! figures, and `thanos.shipper.json` in Prometheus's data dir names them — and a query node
//! (store_shard + query_planner) answers old data (bucket) and recent data (remote read through
//! the sidecar node, over the StoreAPI) as Prometheus answers from its own data dir; with
//! Prometheus gone the query node still answers the shipped range from the bucket alone. A
//! Prometheus whose block durations differ (local compaction on) is refused: the node does
//! not start, and says why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata::config::Config;
use strata::node::{self, Listeners, StartOptions};
use strata_testing::http::try_wait_http_ok;
use strata_testing::{free_port, now_ms, require_binary, ChildGuard, S3Server, TestNode, Wait};
use tokio_util::sync::CancellationToken;

use crate::remote_read::{api, compare_queries};
use crate::shipping::{bucket_metas, download_block};

/// A Prometheus 2.42 started with the given block durations, scraping itself every second.
struct Prom {
    base: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
    guard: ChildGuard,
}

async fn start_prometheus(min_block: &str, max_block: &str, external: &str) -> Prom {
    let dir = strata_testing::temp_dir();
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels: {external}\nscrape_configs:\n  - job_name: prom\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(require_binary("prometheus"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.tsdb.min-block-duration={min_block}"))
        .arg(format!("--storage.tsdb.max-block-duration={max_block}"))
        .arg("--storage.tsdb.retention.time=1d")
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start prometheus");
    let base = format!("http://127.0.0.1:{port}");
    try_wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(30))
        .await
        .expect("prometheus ready");
    Prom {
        base,
        data,
        _dir: dir,
        guard: ChildGuard::new(child, "prometheus"),
    }
}

fn sidecar_yaml(prom: &Prom) -> String {
    format!(
        "sidecar:\n  prometheus_url: {}\n  prometheus_data_dir: {}\ntsdb:\n  block_duration: 16s\n",
        prom.base,
        prom.data.display()
    )
}

/// ULIDs Prometheus's data dir holds as finished blocks.
fn prom_blocks(data: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(data)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("meta.json").is_file())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `promtool tsdb list` rows (ULID, min, max, duration, samples, chunks, series), by ULID.
fn promtool_list(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let out = Command::new(require_binary("promtool"))
        .args(["tsdb", "list"])
        .arg(dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool tsdb list {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            // Every column but the last (the block's size on disk: meta.json differs).
            let cols: Vec<&str> = l.split_whitespace().collect();
            let id = cols.first()?.to_string();
            Some((id, cols[..cols.len() - 1].join(" ")))
        })
        .collect()
}

/// A scrape timestamp of Prometheus (s), to query half an interval away from the grid.
async fn scrape_time(base: &str) -> f64 {
    let v = api(
        base,
        "/api/v1/query",
        &[("query", "timestamp(up)".to_string())],
    )
    .await;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("timestamp(up)")
}

const INSTANT: &[&str] = &[
    "up",
    "prometheus_tsdb_head_series",
    "scrape_samples_scraped",
    "rate(prometheus_tsdb_head_samples_appended_total[20s])",
    "sum by (job) (rate(prometheus_http_requests_total[20s]))",
    "count({job=\"prom\"})",
    "max_over_time(scrape_duration_seconds[20s]) > 0",
];

const RANGE: &[&str] = &[
    "up",
    "prometheus_tsdb_head_chunks",
    "rate(prometheus_tsdb_head_samples_appended_total[20s])",
    "sum by (job) (scrape_samples_scraped)",
];

#[actix_rt::test]
async fn sidecar_ships_prometheus_blocks_and_queries_see_old_and_recent_data() {
    let s3 = S3Server::start();
    let mut prom = start_prometheus("30s", "30s", "{replica: prom-a}").await;
    let sidecar = TestNode::builder()
        .id("sidecar-a")
        .roles(&["scraper_shipper"])
        .yaml(&format!("{}{}", s3.bucket_yaml(), sidecar_yaml(&prom)))
        .start()
        .await;
    sidecar.wait_ready().await;
    let query = TestNode::builder()
        .id("query-a")
        .roles(&["query_planner", "store_shard"])
        .join(sidecar.gossip_addr())
        .yaml(&format!(
            "{}tsdb:\n  block_duration: 16s\n",
            s3.bucket_yaml()
        ))
        .start()
        .await;
    query.wait_ready().await;

    // Two blocks cut by Prometheus and shipped by the sidecar.
    let bucket_dir = s3.bucket_dir();
    Wait::new("two Prometheus blocks shipped", Duration::from_secs(240))
        .poll(Duration::from_secs(1))
        .until(|| {
            let n = bucket_metas(&bucket_dir).len();
            async move { n >= 2 }
        })
        .await
        .unwrap();
    let metas = bucket_metas(&bucket_dir);
    let local = prom_blocks(&prom.data);
    for (ulid, meta) in &metas {
        assert!(local.contains(ulid), "{ulid} shipped but not Prometheus's");
        assert_eq!(meta["thanos"]["source"], "sidecar");
        assert_eq!(
            meta["thanos"]["labels"],
            serde_json::json!({"replica": "prom-a"})
        );
        for file in ["index", "chunks/000001"] {
            let ours = std::fs::read(bucket_dir.join(ulid).join(file)).unwrap();
            let theirs = std::fs::read(prom.data.join(ulid).join(file)).unwrap();
            assert!(ours == theirs, "{ulid}/{file} differs from Prometheus's");
        }
    }
    // The state file names what was shipped; blocks are shipped once (one meta PUT each).
    let state: Value = serde_json::from_slice(
        &std::fs::read(prom.data.join("thanos.shipper.json")).expect("thanos.shipper.json"),
    )
    .unwrap();
    assert_eq!(state["version"], 1);
    let listed: Vec<String> = state["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for ulid in metas.keys() {
        assert!(
            listed.contains(ulid),
            "{ulid} missing from thanos.shipper.json"
        );
    }
    let puts = s3.meta_puts();
    let mut unique = puts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        puts.len(),
        unique.len(),
        "a block was uploaded twice: {puts:?}"
    );

    // promtool reads the shipped blocks back with Prometheus's own figures.
    let dl = strata_testing::temp_dir();
    let store = s3.store();
    for ulid in metas.keys() {
        download_block(&store, ulid, dl.path()).await;
    }
    let theirs = promtool_list(&prom.data);
    let ours = promtool_list(dl.path());
    assert_eq!(ours.len(), metas.len());
    for (ulid, row) in &ours {
        assert_eq!(Some(row), theirs.get(ulid), "promtool tsdb list of {ulid}");
    }

    // Queries: old data (shipped) and recent data (remote read), as Prometheus answers them.
    let first_min = metas
        .values()
        .map(|m| m["minTime"].as_i64().unwrap())
        .min()
        .unwrap();
    let grid = scrape_time(&prom.base).await;
    let offset = grid.fract() + 0.5;
    let start = (first_min / 1000 + 25) as f64 + offset;
    let t = ((now_ms() - 3000) / 1000) as f64 + offset;
    let (failures, non_empty) =
        compare_queries(&query.base, &prom.base, INSTANT, RANGE, start, t, "5").await;
    assert!(
        failures.is_empty(),
        "{} queries differ between Strata (bucket + sidecar) and Prometheus:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(non_empty, INSTANT.len() + RANGE.len());
    // Instant queries inside the shipped range too.
    let old_t = start + 5.0;
    let (failures, _) =
        compare_queries(&query.base, &prom.base, INSTANT, &[], old_t, old_t, "5").await;
    assert!(
        failures.is_empty(),
        "old data differs:\n{}",
        failures.join("\n\n")
    );

    // The shipped range comes from the bucket alone once Prometheus is gone.
    let shipped_max = metas
        .values()
        .map(|m| m["maxTime"].as_i64().unwrap())
        .max()
        .unwrap();
    let end = (shipped_max / 1000 - 5) as f64 + offset;
    let range = |base: String| async move {
        api(
            &base,
            "/api/v1/query_range",
            &[
                ("query", "prometheus_tsdb_head_chunks".to_string()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", "5".to_string()),
            ],
        )
        .await
    };
    let with_prom = range(prom.base.clone()).await;
    prom.guard.kill();
    let mut last = Err(String::new());
    for _ in 0..30 {
        let bucket_only = range(query.base.clone()).await;
        last = crate::remote_read::compare("bucket only", &bucket_only, &with_prom);
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Err(e) = last {
        let stores = query.get_json("/api/v1/stores").await;
        panic!("{e}\nstores: {stores}\nmetas: {metas:?}\nrange {start}..{end}");
    }
}

#[actix_rt::test]
async fn a_prometheus_that_compacts_locally_is_refused() {
    let prom = start_prometheus("30s", "1m", "{replica: prom-b}").await;
    let dir = strata_testing::temp_dir();
    let yaml = format!(
        "node:\n  id: refused\n  web_listen: 127.0.0.1:0\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n  roles: [scraper_shipper]\n{}",
        dir.path().join("data").display(),
        sidecar_yaml(&prom)
    );
    let config = Config::from_yaml_str(&yaml, "sidecar.yml").unwrap();
    let listeners = Listeners::bind(&config).unwrap();
    let err = node::start(
        config,
        listeners,
        CancellationToken::new(),
        StartOptions::default(),
    )
    .await
    .err()
    .expect("the node must not start beside a compacting Prometheus")
    .to_string();
    assert!(
        err.contains("storage.tsdb.min-block-duration=30s")
            && err.contains("storage.tsdb.max-block-duration=1m")
            && err.contains("local compaction must be off"),
        "unclear refusal: {err}"
    );

    // No external labels: refused too, as Thanos's sidecar refuses.
    let bare = start_prometheus("30s", "30s", "{}").await;
    let cfg = strata::config::SidecarConfig {
        prometheus_url: bare.base.clone(),
        prometheus_data_dir: bare.data.clone(),
    };
    let err = strata::sidecar::connect(&cfg, Path::new(""))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no external labels"), "{err}");
}
