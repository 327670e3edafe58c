//! Shared helpers for integration tests: the in-process S3 server, backend fixtures and
//! synthetic TSDB block directories.
#![allow(dead_code)]

pub mod recording;
pub mod s3;

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::memory::MemoryStore;
use strata::storage::bucket::ObjectStore;
use ulid::Ulid;

/// A store plus whatever must stay alive while it is used (temp dir, server).
pub struct Fixture {
    pub store: Arc<dyn ObjectStore>,
    pub guard: Box<dyn Any + Send>,
}

pub async fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        guard: Box::new(()),
    }
}

pub async fn filesystem() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FilesystemStore::new(dir.path()).expect("fs store");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

pub async fn s3() -> Fixture {
    let server = s3::S3TestServer::start().await;
    Fixture {
        store: Arc::new(server.store()),
        guard: Box::new(server),
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Writes a synthetic finished block `<tsdb_dir>/<ULID>/` with `meta.json`, `index`,
/// `chunks/000001..` of the given sizes and `tombstones`. Content is a deterministic pattern.
pub fn make_block(tsdb_dir: &Path, min_time: i64, level: u64, chunk_sizes: &[usize]) -> Ulid {
    let ulid = Ulid::new();
    let dir = tsdb_dir.join(ulid.to_string());
    std::fs::create_dir_all(dir.join("chunks")).expect("mkdir");
    for (i, size) in chunk_sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(dir.join(format!("chunks/{:06}", i + 1)), data).expect("chunk");
    }
    std::fs::write(dir.join("index"), vec![7u8; 1000]).expect("index");
    std::fs::write(
        dir.join("tombstones"),
        [0x0130_BA30u32.to_be_bytes().as_slice(), &[1]].concat(),
    )
    .expect("tombstones");
    let meta = serde_json::json!({
        "ulid": ulid.to_string(),
        "minTime": min_time,
        "maxTime": min_time + 7_200_000,
        "stats": {"numSamples": 1200, "numSeries": 10, "numChunks": 20},
        "compaction": {"level": level, "sources": [ulid.to_string()]},
        "version": 1,
        "x_unknown_field": {"keep": true}
    });
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec(&meta).expect("json"),
    )
    .expect("meta");
    ulid
}

/// Prometheus text exposition of a registry, for asserting metric values.
pub fn metrics_text(reg: &prometheus_client::registry::Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, reg).expect("encode");
    s
}

/// Value of the first sample line starting with `name` (exact series text, e.g.
/// `strata_shipper_pending_blocks`).
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
