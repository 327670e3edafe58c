//! Shipper and bucket tools against the memory and filesystem backends: Thanos upload order,
//! meta injection, skip rules, failure/retry, and the ls/inspect/verify/upload tools.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use serde_json::Value;
use strata::storage::bucket::memory::MemoryStore;
use strata::storage::bucket::shipper::{
    read_state, Shipper, ShipperConfig, ShipperError, StateRead,
};
use strata::storage::bucket::tools::{
    bucket_inspect, bucket_ls, bucket_verify, upload_dir, BlockContentCheck,
};
use strata::storage::bucket::upload::UploadEvent;
use strata::storage::bucket::{open_bucket, BucketConfig, ObjectStore};
use strata_testing::bucket::{labels, make_block, RecordingStore};
use strata_testing::metrics::{metric_value, metrics_text};
use ulid::Ulid;

fn config(dir: &std::path::Path) -> ShipperConfig {
    ShipperConfig::sidecar(dir, labels(&[("cluster", "eu1"), ("replica", "a")]))
}

async fn get_meta(store: &dyn ObjectStore, ulid: Ulid) -> Value {
    serde_json::from_slice(&store.get(&format!("{ulid}/meta.json")).await.unwrap()).unwrap()
}

#[tokio::test]
async fn uploads_in_thanos_order_with_injected_meta() {
    let tsdb = tempfile::tempdir().unwrap();
    let ulid = make_block(tsdb.path(), 1_000, 1, &[300, 200, 100]);
    let rec = Arc::new(RecordingStore::new(Arc::new(MemoryStore::new())));
    let mut reg = Registry::default();
    let shipper = Shipper::new(config(tsdb.path()), rec.clone(), &mut reg);
    let report = shipper.sync().await.unwrap();
    assert_eq!(report.uploaded, vec![ulid]);
    assert!(report.failed.is_empty());

    let expect: Vec<String> = [
        "chunks/000001",
        "chunks/000002",
        "chunks/000003",
        "index",
        "tombstones",
        "meta.json",
    ]
    .iter()
    .map(|f| format!("{ulid}/{f}"))
    .collect();
    assert_eq!(rec.puts(), expect);

    let meta = get_meta(rec.as_ref(), ulid).await;
    assert_eq!(
        meta["x_unknown_field"]["keep"], true,
        "unknown fields survive"
    );
    let t = &meta["thanos"];
    assert_eq!(t["labels"]["cluster"], "eu1");
    assert_eq!(t["source"], "sidecar");
    assert_eq!(t["version"], 1);
    assert_eq!(t["downsample"]["resolution"], 0);
    assert!(humantime::parse_rfc3339(t["upload_time"].as_str().unwrap()).is_ok());
    let files = t["files"].as_array().unwrap();
    let rel: Vec<&str> = files
        .iter()
        .map(|f| f["rel_path"].as_str().unwrap())
        .collect();
    assert_eq!(
        rel,
        [
            "chunks/000001",
            "chunks/000002",
            "chunks/000003",
            "index",
            "meta.json",
            "tombstones"
        ]
    );
    assert_eq!(files[0]["size_bytes"], 300);
    assert_eq!(files[3]["size_bytes"], 1000);

    // Local meta.json is untouched, the staging dir is gone, state records the block.
    let local: Value = serde_json::from_slice(
        &std::fs::read(tsdb.path().join(ulid.to_string()).join("meta.json")).unwrap(),
    )
    .unwrap();
    assert!(local.get("thanos").is_none());
    assert!(!tsdb
        .path()
        .join("thanos/upload")
        .join(ulid.to_string())
        .exists());
    match read_state(tsdb.path()) {
        StateRead::Ok(set) => assert!(set.contains(&ulid)),
        other => panic!("{other:?}"),
    }
    assert!(shipper.shipped_ulids().contains(&ulid));

    // Second sync: nothing new.
    let again = shipper.sync().await.unwrap();
    assert!(again.uploaded.is_empty());
    assert_eq!(again.skipped, vec![ulid]);
    assert_eq!(rec.meta_puts().len(), 1);
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(&text, "strata_shipper_pending_blocks"),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&text, "strata_shipper_uploads_total"),
        Some(1.0)
    );
}

#[tokio::test]
async fn refuses_empty_external_labels() {
    let tsdb = tempfile::tempdir().unwrap();
    make_block(tsdb.path(), 0, 1, &[10]);
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(tsdb.path());
    cfg.external_labels.clear();
    let shipper = Shipper::new(cfg, store.clone(), &mut Registry::default());
    let err = shipper.sync().await.unwrap_err();
    assert!(matches!(err, ShipperError::EmptyExternalLabels));
    assert!(err
        .to_string()
        .contains("empty external labels are not allowed"));
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn skips_unfinished_compacted_empty_and_present_blocks() {
    let tsdb = tempfile::tempdir().unwrap();
    let p = tsdb.path();
    let normal = make_block(p, 3_000, 1, &[10]);
    let compacted = make_block(p, 100_000_000, 2, &[10]);
    let present = make_block(p, 2_000, 1, &[10]);
    let empty = make_block(p, 4_000, 1, &[10]);
    let meta_path = p.join(empty.to_string()).join("meta.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    m["stats"]["numSamples"] = 0.into();
    std::fs::write(&meta_path, serde_json::to_vec(&m).unwrap()).unwrap();
    // Blocks still being written: no meta.json, or a non-ULID dir name.
    std::fs::create_dir_all(p.join(Ulid::new().to_string()).join("chunks")).unwrap();
    std::fs::create_dir_all(p.join(format!("{}.tmp-for-creation", Ulid::new()))).unwrap();
    std::fs::create_dir_all(p.join("wal")).unwrap();

    let mem = Arc::new(MemoryStore::new());
    mem.put_bytes(&format!("{present}/meta.json"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let rec = Arc::new(RecordingStore::new(mem.clone()));
    let shipper = Shipper::new(config(p), rec.clone(), &mut Registry::default());
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![normal]);
    let mut skipped = r.skipped.clone();
    skipped.sort();
    let mut expect = vec![compacted, present, empty];
    expect.sort();
    assert_eq!(skipped, expect);
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert!(rec
        .puts()
        .iter()
        .all(|k| k.starts_with(&normal.to_string())));
    // Present-in-bucket counts as shipped; compacted and empty do not.
    let shipped = shipper.shipped_ulids();
    assert!(shipped.contains(&present) && shipped.contains(&normal));
    assert!(!shipped.contains(&compacted));

    let mut cfg = config(p);
    cfg.upload_compacted = true;
    let shipper = Shipper::new(cfg, rec.clone(), &mut Registry::default());
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![compacted]);
}

#[tokio::test]
async fn failed_upload_is_retried_next_sync() {
    let tsdb = tempfile::tempdir().unwrap();
    let a = make_block(tsdb.path(), 1_000, 1, &[10]);
    let b = make_block(tsdb.path(), 2_000, 1, &[10]);
    let mem = Arc::new(MemoryStore::new());
    let bad = b.to_string();
    mem.fail_puts_when(Some(Box::new(move |k: &str| {
        k.starts_with(&bad) && k.ends_with("index")
    })));
    let mut reg = Registry::default();
    let shipper = Arc::new(Shipper::new(config(tsdb.path()), mem.clone(), &mut reg));
    // The integrator runs sync in a spawned task: the future must be Send + 'static.
    let s2 = shipper.clone();
    let r = tokio::spawn(async move { s2.sync().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.uploaded, vec![a]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, b);
    assert!(
        !mem.keys().contains(&format!("{b}/meta.json")),
        "no meta for a failed block"
    );
    assert!(!shipper.shipped_ulids().contains(&b));
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(&text, "strata_shipper_pending_blocks"),
        Some(1.0)
    );
    assert!(metric_value(&text, "strata_shipper_oldest_unshipped_age_seconds").unwrap() > 0.0);

    mem.fail_puts_when(None);
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![b]);
    assert!(r.failed.is_empty());
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(&text, "strata_shipper_pending_blocks"),
        Some(0.0)
    );
}

#[tokio::test]
async fn corrupt_meta_json_is_reported_not_fatal() {
    let tsdb = tempfile::tempdir().unwrap();
    let good = make_block(tsdb.path(), 1_000, 1, &[10]);
    let broken = make_block(tsdb.path(), 2_000, 1, &[10]);
    std::fs::write(
        tsdb.path().join(broken.to_string()).join("meta.json"),
        b"{oops",
    )
    .unwrap();
    let shipper = Shipper::new(
        config(tsdb.path()),
        Arc::new(MemoryStore::new()),
        &mut Registry::default(),
    );
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![good]);
    assert_eq!(r.failed.len(), 1);
    assert!(r.failed[0].1.contains("meta.json"), "{}", r.failed[0].1);
}

struct RejectBlock(Ulid);

#[async_trait]
impl BlockContentCheck for RejectBlock {
    async fn check(&self, _: &dyn ObjectStore, ulid: Ulid, _: &Value) -> Result<(), String> {
        if ulid == self.0 {
            Err("index checksum mismatch".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn tools_ls_inspect_verify_upload_on_filesystem_bucket() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let cfg: BucketConfig = serde_json::from_value(serde_json::json!({
        "type": "filesystem",
        "filesystem": {"dir": bucket_dir.path()}
    }))
    .unwrap();
    let mut reg = Registry::default();
    let store = open_bucket(&cfg, &mut reg).unwrap();
    let tsdb = tempfile::tempdir().unwrap();
    let a = make_block(tsdb.path(), 1_700_000_000_000, 1, &[100, 50]);
    let b = make_block(tsdb.path(), 1_700_007_200_000, 2, &[20]);

    let mut events = Vec::new();
    let lbls = labels(&[("tenant", "t1")]);
    let rep = upload_dir(
        store.as_ref(),
        tsdb.path(),
        &lbls,
        &mut |e: &UploadEvent| events.push(e.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        rep.uploaded,
        vec![a, b],
        "upload_dir also takes compacted blocks"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, UploadEvent::MetaUploaded { ulid } if *ulid == a)));
    assert_eq!(
        get_meta(store.as_ref(), a).await["thanos"]["source"],
        "bucket.upload"
    );
    let rep = upload_dir(store.as_ref(), tsdb.path(), &lbls, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(rep.already_present, vec![a, b]);

    let mut out = Vec::new();
    let rows = bucket_ls(store.as_ref(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].ulid, a);
    assert_eq!(rows[0].size_bytes, 100 + 50 + 1000 + 5);
    assert_eq!(rows[1].level, 2);
    assert!(
        text.contains(&a.to_string()) && text.contains("tenant=\"t1\""),
        "{text}"
    );
    assert!(text.contains("2023-11-14T22:13:20Z"), "{text}");
    assert!(text.contains("2h"), "{text}");

    let insp = bucket_inspect(store.as_ref(), a).await.unwrap();
    assert_eq!(insp.objects.len(), 5);
    assert!(insp.to_string().contains("chunks/000002"));

    let mut out = Vec::new();
    let v = bucket_verify(store.as_ref(), &mut out, None).await.unwrap();
    assert_eq!(v.blocks_checked, 2);
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // Damage: truncate a chunk of a, delete index of b, leave a partial upload.
    store
        .put_bytes(&format!("{a}/chunks/000001"), Bytes::from_static(b"short"))
        .await
        .unwrap();
    store.delete(&format!("{b}/index")).await.unwrap();
    let partial = Ulid::new();
    store
        .put_bytes(&format!("{partial}/index"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let mut out = Vec::new();
    let v = bucket_verify(store.as_ref(), &mut out, Some(&RejectBlock(a)))
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(v.partial_uploads, vec![partial]);
    assert!(
        v.problems
            .iter()
            .any(|(u, p)| *u == a && p.contains("chunks/000001 is 5 bytes")),
        "{text}"
    );
    assert!(
        v.problems
            .iter()
            .any(|(u, p)| *u == b && p.contains("missing file index")),
        "{text}"
    );
    assert!(
        v.problems
            .iter()
            .any(|(u, p)| *u == a && p.contains("index checksum mismatch")),
        "{text}"
    );

    let mut out = Vec::new();
    bucket_ls(store.as_ref(), &mut out).await.unwrap();
    assert!(String::from_utf8(out).unwrap().contains("partial upload"));

    let m = metrics_text(&reg);
    assert!(
        metric_value(&m, "strata_bucket_operations_total{operation=\"put_file\"}").unwrap() >= 7.0,
        "{m}"
    );
}

#[tokio::test]
async fn upload_dir_refuses_empty_labels() {
    let tsdb = tempfile::tempdir().unwrap();
    make_block(tsdb.path(), 0, 1, &[1]);
    let store = MemoryStore::new();
    let err = upload_dir(&store, tsdb.path(), &Default::default(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("empty external labels"), "{err}");
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn compacted_block_overlapping_the_bucket_is_refused() {
    let tsdb = tempfile::tempdir().unwrap();
    let first = make_block(tsdb.path(), 0, 1, &[10]);
    let store = Arc::new(MemoryStore::new());
    let shipper = Shipper::new(config(tsdb.path()), store.clone(), &mut Registry::default());
    assert_eq!(shipper.sync().await.unwrap().uploaded, vec![first]);
    // A compacted block covering the same time range as the shipped one.
    let compacted = make_block(tsdb.path(), 3_600_000, 2, &[10]);
    let apart = make_block(tsdb.path(), 100_000_000, 2, &[10]);
    let mut cfg = config(tsdb.path());
    cfg.upload_compacted = true;
    let shipper = Shipper::new(cfg, store.clone(), &mut Registry::default());
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![apart]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, compacted);
    assert!(r.failed[0].1.contains("overlaps"), "{}", r.failed[0].1);
    assert!(!store.keys().contains(&format!("{compacted}/meta.json")));

    // Two local compacted blocks overlapping each other: only the first goes up.
    let dup_a = make_block(tsdb.path(), 500_000_000, 2, &[10]);
    let dup_b = make_block(tsdb.path(), 501_000_000, 2, &[10]);
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![dup_a]);
    assert!(r.failed.iter().any(|(u, _)| *u == dup_b));
    assert!(r.failed.iter().any(|(u, _)| *u == compacted));

    // Other labels = other stream: no overlap.
    shipper.set_external_labels(labels(&[("cluster", "other")]));
    let r = shipper.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![compacted, dup_b]);
    assert_eq!(
        get_meta(store.as_ref(), compacted).await["thanos"]["labels"]["cluster"],
        "other"
    );
}
