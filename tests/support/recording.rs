//! A store decorator for tests that records every successful write (in order) and can run an
//! async hook after each put, e.g. to stop the S3 server after the Nth `meta.json`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use strata::storage::bucket::{ListResult, ObjectMeta, ObjectStore, Result};

pub type Hook = Box<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

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
        *self.hook.lock().unwrap() = hook.map(Arc::new);
    }

    /// Keys successfully written so far, in order.
    pub fn puts(&self) -> Vec<String> {
        self.puts.lock().unwrap().clone()
    }

    pub fn meta_puts(&self) -> Vec<String> {
        self.puts()
            .into_iter()
            .filter(|k| k.ends_with("/meta.json"))
            .collect()
    }

    async fn after_put(&self, key: &str) {
        self.puts.lock().unwrap().push(key.to_string());
        let hook = self.hook.lock().unwrap().clone();
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
