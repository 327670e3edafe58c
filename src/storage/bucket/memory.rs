//! In-memory `ObjectStore` for tests: a sorted map of keys to bytes, with simple fault
//! injection (fail puts of matching keys) so shipper tests can simulate a broken bucket.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    group_by_delimiter, validate_key, validate_prefix, BucketError, ListEntry, ListResult,
    ObjectMeta, ObjectStore, Result,
};

type FailPredicate = Box<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, SystemTime)>>,
    fail_puts: Mutex<Option<FailPredicate>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every put whose key matches fail with a transient error (until cleared with None).
    pub fn fail_puts_when(&self, pred: Option<FailPredicate>) {
        if let Ok(mut guard) = self.fail_puts.lock() {
            *guard = pred;
        }
    }

    /// All keys currently stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, SystemTime)>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts),
        // so recovering the guard is safe.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_put(&self, op: &'static str, key: &str) -> Result<()> {
        let fail = self
            .fail_puts
            .lock()
            .map(|g| g.as_ref().is_some_and(|p| p(key)))
            .unwrap_or(false);
        if fail {
            return Err(BucketError::Transient {
                op,
                key: key.to_string(),
                message: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn fetch(&self, key: &str) -> Result<Bytes> {
        self.lock()
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| BucketError::NotFound {
                key: key.to_string(),
            })
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        validate_key(key)?;
        self.fetch(key)
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        validate_key(key)?;
        let data = self.fetch(key)?;
        let size = data.len() as u64;
        if len == 0 {
            return Ok(Bytes::new());
        }
        if offset >= size {
            return Err(BucketError::InvalidRange {
                key: key.to_string(),
                offset,
                len,
                size: Some(size),
            });
        }
        let end = offset.saturating_add(len).min(size);
        // Both bounds are <= size, which came from a usize length.
        Ok(data.slice(offset as usize..end as usize))
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key)?;
        self.check_put("put_bytes", key)?;
        self.lock()
            .insert(key.to_string(), (data, SystemTime::now()));
        Ok(())
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        validate_key(key)?;
        self.check_put("put_file", key)?;
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| BucketError::io(path, e))?;
        let len = data.len() as u64;
        self.lock()
            .insert(key.to_string(), (Bytes::from(data), SystemTime::now()));
        Ok(len)
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        validate_prefix(prefix)?;
        let entries: Vec<ListEntry> = self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, t))| ListEntry {
                key: k.clone(),
                size: b.len() as u64,
                last_modified: Some(*t),
            })
            .collect();
        Ok(group_by_delimiter(entries, prefix, delimiter))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        validate_key(key)?;
        Ok(self.lock().get(key).map(|(b, t)| ObjectMeta {
            size: b.len() as u64,
            last_modified: Some(*t),
        }))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        validate_key(key)?;
        let data = self.fetch(key)?;
        super::filesystem::write_file_atomic(path, &data).await?;
        Ok(data.len() as u64)
    }
}
