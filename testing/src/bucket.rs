//! Buckets for tests: one fixture per backend for the ObjectStore contract suite, a store
//! decorator that records every write and can run a hook after it, and synthetic block
//! directories for the shipper.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use strata::storage::bucket::filesystem::FilesystemStore;
use strata::storage::bucket::memory::MemoryStore;
use strata::storage::bucket::{ListResult, ObjectMeta, ObjectStore, Result};
use ulid::Ulid;

use crate::s3::S3Server;

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
    let dir = crate::temp_dir();
    let store = FilesystemStore::new(dir.path()).expect("filesystem store");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

pub async fn s3() -> Fixture {
    let server = S3Server::start();
    Fixture {
        store: Arc::new(server.store()),
        guard: Box::new(server),
    }
}

/// A label map from pairs.
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

/// Runs after each successful put with the key, e.g. to stop the S3 server after the Nth
/// `meta.json`.
pub type Hook = Box<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// A store decorator that records every successful write, in order, and runs a hook after
/// each.
pub struct RecordingStore {
    inner: Arc<dyn ObjectStore>,
    puts: Mutex<Vec<String>>,
    hook: Mutex<Option<Arc<Hook>>>,
}

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingStore")
    }
}

impl RecordingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            puts: Mutex::new(Vec::new()),
            hook: Mutex::new(None),
        }
    }

    pub fn set_hook(&self, hook: Option<Hook>) {
        *self.hook.lock().expect("hook") = hook.map(Arc::new);
    }

    /// Keys successfully written so far, in order.
    pub fn puts(&self) -> Vec<String> {
        self.puts.lock().expect("puts").clone()
    }

    /// The `meta.json` keys among [`RecordingStore::puts`].
    pub fn meta_puts(&self) -> Vec<String> {
        self.puts()
            .into_iter()
            .filter(|k| k.ends_with("/meta.json"))
            .collect()
    }

    async fn after_put(&self, key: &str) {
        self.puts.lock().expect("puts").push(key.to_string());
        let hook = self.hook.lock().expect("hook").clone();
        if let Some(h) = hook {
            h(key.to_string()).await;
        }
    }
}

#[async_trait]
impl ObjectStore for RecordingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.inner.get_range(key, offset, len).await
    }
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        self.inner.put_bytes(key, data).await?;
        self.after_put(key).await;
        Ok(())
    }
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let n = self.inner.put_file(key, path).await?;
        self.after_put(key).await;
        Ok(n)
    }
    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        self.inner.list(prefix, delimiter).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.inner.get_to_file(key, path).await
    }
}
