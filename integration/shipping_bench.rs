//! Shipping figures (not a pass/fail test; run on demand): `strata tools bench ship` uploads
//! synthetic blocks through the node's `Shipper` to a local s3s-fs server and to the
//! filesystem bucket, and prints MB/s and CPU seconds per GB of the strata process.
//! `cargo test --test integration shipping_bench -- --ignored --nocapture`
//! (`STRATA_BENCH_SHIP_MB` sets the size, default 512).

use std::path::Path;
use std::process::Command;

use strata_testing::S3Server;

fn bench(cfg: &Path, size_mb: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "tools",
            "bench",
            "ship",
            "--blocks",
            "2",
            "--size-mb",
            size_mb,
            "--config",
        ])
        .arg(cfg)
        .output()
        .expect("run strata");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("MB/s") && stdout.contains("CPU s per GB"),
        "{stdout}"
    );
    stdout
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn shipping_throughput_and_cpu_per_gb() {
    let size = std::env::var("STRATA_BENCH_SHIP_MB").unwrap_or_else(|_| "512".into());
    let dir = tempfile::tempdir().unwrap();
    let labels = "global:\n  external_labels: {cluster: bench}\n";

    let s3 = S3Server::start();
    let cfg = dir.path().join("s3.yml");
    std::fs::write(&cfg, format!("{labels}{}", s3.bucket_yaml())).unwrap();
    let out = bench(&cfg, &size);
    println!("s3s-fs on 127.0.0.1 ({size} MiB):\n{out}");
    assert!(
        crate::shipping::bucket_metas(&s3.bucket_dir()).is_empty(),
        "the bench removes its blocks"
    );

    let cfg = dir.path().join("fs.yml");
    std::fs::write(
        &cfg,
        format!(
            "{labels}bucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\n",
            dir.path().join("bucket").display()
        ),
    )
    .unwrap();
    let out = bench(&cfg, &size);
    println!("filesystem bucket ({size} MiB):\n{out}");
}
