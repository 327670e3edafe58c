//! Shipper fault tests against a real S3 server (in-process s3s-fs) that is stopped and
//! restarted mid-run: no block is marked uploaded unless its meta.json is in the bucket, a
//! recovered bucket gets every block exactly once, partial uploads are redone completely with
//! meta.json last, and a corrupt state file is rebuilt from the bucket without re-uploads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use strata::storage::bucket::config::wrap;
use strata::storage::bucket::metrics::BucketMetrics;
use strata::storage::bucket::retry::RetryPolicy;
use strata::storage::bucket::shipper::{read_state, Shipper, ShipperConfig, StateRead, STATE_FILE};
use strata::storage::bucket::tools::bucket_verify;
use strata::storage::bucket::ObjectStore;
use strata_testing::bucket::{labels, make_block, RecordingStore};
use strata_testing::metrics::{metric_value, metrics_text};
use strata_testing::S3Server;
use tokio::sync::Mutex;
use ulid::Ulid;

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        op_timeout: Duration::from_secs(30),
        transfer_timeout: Duration::from_secs(120),
    }
}

/// The production decorator stack over the real S3 backend, with a recorder on top.
fn stack(server: &S3Server, reg: &mut Registry) -> (Arc<RecordingStore>, BucketMetrics) {
    let metrics = BucketMetrics::register(reg);
    let store = wrap(Arc::new(server.store()), metrics.clone(), fast_retries());
    (Arc::new(RecordingStore::new(store)), metrics)
}

fn shipper_cfg(dir: &Path) -> ShipperConfig {
    ShipperConfig {
        tsdb_dir: dir.to_path_buf(),
        external_labels: labels(&[("cluster", "eu1"), ("replica", "0")]),
        source: "sidecar".into(),
        upload_compacted: false,
    }
}

/// Blocks whose meta.json is in the bucket, read straight from the server's disk (works while
/// the server is stopped).
fn metas_on_server_disk(server: &S3Server) -> BTreeSet<Ulid> {
    let mut out = BTreeSet::new();
    let Ok(rd) = std::fs::read_dir(server.bucket_dir()) else {
        return out;
    };
    for e in rd.flatten() {
        if let Some(u) = e
            .file_name()
            .to_str()
            .and_then(|n| Ulid::from_string(n).ok())
        {
            if e.path().join("meta.json").is_file() {
                out.insert(u);
            }
        }
    }
    out
}

fn state(dir: &Path) -> BTreeSet<Ulid> {
    match read_state(dir) {
        StateRead::Ok(s) => s,
        other => panic!("state not readable: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_mid_sync_then_recovery_uploads_each_block_once() {
    let server = Arc::new(Mutex::new(S3Server::start()));
    let mut reg = Registry::default();
    let (rec, metrics) = stack(&*server.lock().await, &mut reg);
    let tsdb = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    for i in 0..5 {
        // One block has a 9 MiB chunk so the multipart path is part of the run.
        let sizes: &[usize] = if i == 1 {
            &[9 * 1024 * 1024, 1000]
        } else {
            &[4000, 1000]
        };
        blocks.push(make_block(tsdb.path(), i * 7_200_000, 1, sizes));
    }

    // Take the bucket away right after the 2nd meta.json lands.
    let metas = Arc::new(AtomicUsize::new(0));
    let (srv, n) = (server.clone(), metas.clone());
    rec.set_hook(Some(Box::new(move |key: String| {
        let (srv, n) = (srv.clone(), n.clone());
        Box::pin(async move {
            if key.ends_with("/meta.json") && n.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                srv.lock().await.stop().await;
            }
        })
    })));

    let shipper = Shipper::new(shipper_cfg(tsdb.path()), rec.clone(), &mut reg);
    let r1 = shipper.sync().await.unwrap();
    assert_eq!(r1.uploaded, blocks[..2].to_vec());
    let failed: Vec<Ulid> = r1.failed.iter().map(|(u, _)| *u).collect();
    assert_eq!(failed, blocks[2..].to_vec());
    let on_disk = metas_on_server_disk(&*server.lock().await);
    assert_eq!(on_disk, blocks[..2].iter().copied().collect());
    assert_eq!(
        state(tsdb.path()),
        on_disk,
        "state marks exactly what is in the bucket"
    );
    assert_eq!(shipper.shipped_ulids(), on_disk);
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(&text, "strata_shipper_pending_blocks"),
        Some(3.0)
    );
    assert!(
        metrics.retries("exists") + metrics.retries("put_file") > 0,
        "transient errors were retried"
    );

    rec.set_hook(None);
    server.lock().await.restart().await;
    let r2 = shipper.sync().await.unwrap();
    assert_eq!(r2.uploaded, blocks[2..].to_vec());
    assert_eq!(r2.skipped, blocks[..2].to_vec());
    assert!(r2.failed.is_empty(), "{:?}", r2.failed);
    let all: BTreeSet<Ulid> = blocks.iter().copied().collect();
    assert_eq!(state(tsdb.path()), all);

    // Exactly one meta.json PUT per block across both syncs.
    let mut meta_puts = rec.meta_puts();
    meta_puts.sort();
    let expect: Vec<String> = {
        let mut v: Vec<String> = blocks.iter().map(|u| format!("{u}/meta.json")).collect();
        v.sort();
        v
    };
    assert_eq!(meta_puts, expect);
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(&text, "strata_shipper_pending_blocks"),
        Some(0.0)
    );

    let r3 = shipper.sync().await.unwrap();
    assert!(r3.uploaded.is_empty() && r3.failed.is_empty());
    assert_eq!(rec.meta_puts().len(), 5);

    let mut out = Vec::new();
    let v = bucket_verify(rec.as_ref(), &mut out, None).await.unwrap();
    assert_eq!(v.blocks_checked, 5);
    assert!(
        v.problems.is_empty() && v.partial_uploads.is_empty(),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_down_from_start_marks_nothing() {
    let mut server = S3Server::start();
    let mut reg = Registry::default();
    let (rec, _) = stack(&server, &mut reg);
    let tsdb = tempfile::tempdir().unwrap();
    let a = make_block(tsdb.path(), 0, 1, &[100]);
    let b = make_block(tsdb.path(), 7_200_000, 1, &[100]);
    server.stop().await;
    let shipper = Shipper::new(shipper_cfg(tsdb.path()), rec.clone(), &mut reg);
    let r = shipper.sync().await.unwrap();
    assert!(r.uploaded.is_empty());
    assert_eq!(r.failed.len(), 2);
    assert!(
        r.failed
            .iter()
            .all(|(_, e)| e.contains("transient") || e.contains("timed out")),
        "{:?}",
        r.failed
    );
    assert!(state(tsdb.path()).is_empty());
    assert!(shipper.shipped_ulids().is_empty());
    server.restart().await;
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![a, b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_upload_without_meta_is_redone_completely_meta_last() {
    let server = S3Server::start();
    let mut reg = Registry::default();
    let (rec, _) = stack(&server, &mut reg);
    let tsdb = tempfile::tempdir().unwrap();
    let ulid = make_block(tsdb.path(), 0, 1, &[3000, 2000]);
    let bdir = tsdb.path().join(ulid.to_string());

    // Simulated crash: data files uploaded (one of them torn), no meta.json.
    let raw = server.store();
    raw.put_file(
        &format!("{ulid}/chunks/000001"),
        &bdir.join("chunks/000001"),
    )
    .await
    .unwrap();
    raw.put_bytes(
        &format!("{ulid}/chunks/000002"),
        bytes::Bytes::from_static(b"torn"),
    )
    .await
    .unwrap();
    raw.put_file(&format!("{ulid}/index"), &bdir.join("index"))
        .await
        .unwrap();
    assert!(!raw.exists(&format!("{ulid}/meta.json")).await.unwrap());

    let shipper = Shipper::new(shipper_cfg(tsdb.path()), rec.clone(), &mut reg);
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![ulid]);
    let puts = rec.puts();
    let expect: Vec<String> = [
        "chunks/000001",
        "chunks/000002",
        "index",
        "tombstones",
        "meta.json",
    ]
    .iter()
    .map(|f| format!("{ulid}/{f}"))
    .collect();
    assert_eq!(puts, expect, "every file re-uploaded, meta.json last");
    for f in ["chunks/000001", "chunks/000002", "index", "tombstones"] {
        let remote = raw.get(&format!("{ulid}/{f}")).await.unwrap();
        assert_eq!(
            &remote[..],
            &std::fs::read(bdir.join(f)).unwrap()[..],
            "{f}"
        );
    }
    let mut out = Vec::new();
    let v = bucket_verify(&raw, &mut out, None).await.unwrap();
    assert!(v.problems.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_is_rebuilt_from_bucket_without_reupload() {
    let server = S3Server::start();
    let mut reg = Registry::default();
    let (rec, _) = stack(&server, &mut reg);
    let tsdb = tempfile::tempdir().unwrap();
    let blocks: Vec<Ulid> = (0..3)
        .map(|i| make_block(tsdb.path(), i * 1000, 1, &[500]))
        .collect();
    let shipper = Shipper::new(shipper_cfg(tsdb.path()), rec.clone(), &mut reg);
    assert_eq!(shipper.sync().await.unwrap().uploaded, blocks);
    let puts_before = rec.puts().len();

    for garbage in [
        &b"{\"version\":1,\"uploaded\":[\"not-a-ulid\"]}"[..],
        b"\0\0\0",
        b"",
    ] {
        std::fs::write(tsdb.path().join(STATE_FILE), garbage).unwrap();
        let mut reg2 = Registry::default();
        let fresh = Shipper::new(shipper_cfg(tsdb.path()), rec.clone(), &mut reg2);
        assert!(
            fresh.shipped_ulids().is_empty(),
            "a corrupt state is not trusted"
        );
        let r = fresh.sync().await.unwrap();
        assert!(r.uploaded.is_empty(), "no re-upload: {:?}", r.uploaded);
        assert_eq!(r.skipped, blocks);
        assert_eq!(rec.puts().len(), puts_before);
        assert_eq!(state(tsdb.path()), blocks.iter().copied().collect());
        assert_eq!(fresh.shipped_ulids(), blocks.iter().copied().collect());
    }
    // A block added locally later is still uploaded after the rebuild.
    let late = make_block(tsdb.path(), 9_000, 1, &[10]);
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![late]);
}
