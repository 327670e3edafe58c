//! Peak memory of the sidecar while it ships a big Prometheus block (a figure, not a pass/fail
//! test; run on demand). For each block directory named in `STRATA_SIDECAR_RSS_BLOCKS`
//! (comma-separated dirs, each holding Prometheus blocks, e.g. made with `promtool tsdb
//! create-blocks-from openmetrics`), a Prometheus 2.42 is started on a copy of it (2h blocks,
//! min = max), the `strata` binary runs as a process in sidecar mode beside it shipping to a
//! local s3s-fs server, and the process's `VmHWM` (/proc/<pid>/status) is read once every
//! block is in the bucket.
//! `STRATA_SIDECAR_RSS_BLOCKS=/a,/b cargo test --test integration sidecar_rss -- --ignored --nocapture`
//! (`STRATA_BIN=target/release/strata` measures a release build instead of the debug one).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_testing::http::try_wait_http_ok;
use strata_testing::process::copy_blocks;
use strata_testing::{free_port, require_binary, ChildGuard, S3Server};

/// `VmHWM` / `VmRSS` of a process in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            total += dir_bytes(&p);
        } else {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

async fn measure(blocks: &Path) -> String {
    let dir = strata_testing::temp_dir();
    let data = dir.path().join("prom");
    std::fs::create_dir_all(&data).unwrap();
    let n = copy_blocks(blocks, &data);
    assert!(n > 0, "no blocks in {}", blocks.display());
    let size = dir_bytes(&data);
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  external_labels: {replica: rss}\n").unwrap();
    let prom = Command::new(require_binary("prometheus"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--storage.tsdb.min-block-duration=2h",
            "--storage.tsdb.max-block-duration=2h",
            "--storage.tsdb.retention.time=100y",
            "--log.level=warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prom = ChildGuard::new(prom, "prometheus");
    let base = format!("http://127.0.0.1:{port}");
    try_wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(60))
        .await
        .unwrap();

    let s3 = S3Server::start();
    // `STRATA_SIDECAR_RSS_BUCKET=filesystem` ships to a filesystem bucket instead, to tell
    // the S3 client's share of the peak from the rest.
    let bucket_yaml = match std::env::var("STRATA_SIDECAR_RSS_BUCKET").as_deref() {
        Ok("filesystem") => format!(
            "bucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\n",
            dir.path().join("bucket").display()
        ),
        _ => s3.bucket_yaml(),
    };
    let web = free_port();
    let node_cfg = dir.path().join("strata.yml");
    std::fs::write(
        &node_cfg,
        format!(
            "node:\n  id: rss\n  web_listen: 127.0.0.1:{web}\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n  roles: [scraper_shipper]\n{}sidecar:\n  prometheus_url: {base}\n  prometheus_data_dir: {}\n",
            dir.path().join("strata").display(),
            bucket_yaml,
            data.display()
        ),
    )
    .unwrap();
    // `STRATA_BIN` runs another build of the binary (e.g. a release build) instead.
    let bin =
        std::env::var("STRATA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_strata").to_string());
    let child = Command::new(bin)
        .args(["node", "--config"])
        .arg(&node_cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _node = ChildGuard::new(child, "strata");
    try_wait_http_ok(
        &format!("http://127.0.0.1:{web}/-/ready"),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let ready_rss = status_kib(pid, "VmRSS:");
    let started = Instant::now();
    let state = data.join("thanos.shipper.json");
    loop {
        let shipped = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["uploaded"].as_array().map(Vec::len))
            .unwrap_or(0);
        if shipped >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "blocks not shipped in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    format!(
        "{}: {n} block(s), {:.0} MB on disk: VmRSS when ready {} KiB, VmHWM after shipping {} KiB ({:.1} MiB), shipped within {secs:.0}s of ready",
        blocks.display(),
        size as f64 / 1e6,
        ready_rss,
        status_kib(pid, "VmHWM:"),
        status_kib(pid, "VmHWM:") as f64 / 1024.0,
    )
}

#[actix_rt::test]
#[ignore = "a figure, run on demand with STRATA_SIDECAR_RSS_BLOCKS"]
async fn sidecar_rss_while_shipping_big_blocks() {
    let Ok(dirs) = std::env::var("STRATA_SIDECAR_RSS_BLOCKS") else {
        panic!("set STRATA_SIDECAR_RSS_BLOCKS to comma-separated block dirs");
    };
    for d in dirs.split(',').filter(|d| !d.is_empty()) {
        println!("{}", measure(Path::new(d)).await);
    }
}
