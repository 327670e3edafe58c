//! Metrics decorator: counts operations, failures and transferred bytes, and times every
//! operation, per operation name. Metrics are prometheus-client types registered under the
//! `strata_bucket_` prefix into a registry the caller passes in.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::{BucketError, ListResult, ObjectMeta, ObjectStore, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub operation: String,
    pub reason: String,
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~82 s: covers a HEAD on a local server up to a multi-GB upload part.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Handles to the bucket metrics. Cheap to clone (families are shared).
#[derive(Clone, Debug)]
pub struct BucketMetrics {
    operations: Family<OpLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    bytes: Family<OpLabels, Counter>,
    retries: Family<OpLabels, Counter>,
    duration: Family<OpLabels, Histogram, fn() -> Histogram>,
}

impl BucketMetrics {
    /// Creates the metrics and registers them as `strata_bucket_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let sub = registry.sub_registry_with_prefix("strata_bucket");
        sub.register(
            "operations",
            "Bucket operation attempts, by operation",
            m.operations.clone(),
        );
        sub.register(
            "operation_failures",
            "Failed bucket operation attempts (a missing object is not a failure), by operation and reason",
            m.failures.clone(),
        );
        sub.register(
            "transferred_bytes",
            "Bytes uploaded or downloaded, by operation",
            m.bytes.clone(),
        );
        sub.register(
            "retries",
            "Bucket operations retried after a transient error, by operation",
            m.retries.clone(),
        );
        sub.register(
            "operation_duration_seconds",
            "Duration of bucket operation attempts, by operation",
            m.duration.clone(),
        );
        m
    }

    /// Metrics not attached to any registry (tests, tools).
    pub fn unregistered() -> Self {
        Self {
            operations: Family::default(),
            failures: Family::default(),
            bytes: Family::default(),
            retries: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
        }
    }

    fn op(name: &str) -> OpLabels {
        OpLabels {
            operation: name.to_string(),
        }
    }

    pub fn operations(&self, op: &str) -> u64 {
        self.operations.get_or_create(&Self::op(op)).get()
    }

    pub fn bytes(&self, op: &str) -> u64 {
        self.bytes.get_or_create(&Self::op(op)).get()
    }

    pub fn failures(&self, op: &str, reason: &str) -> u64 {
        self.failures
            .get_or_create(&FailureLabels {
                operation: op.to_string(),
                reason: reason.to_string(),
            })
            .get()
    }

    pub fn retries(&self, op: &str) -> u64 {
        self.retries.get_or_create(&Self::op(op)).get()
    }

    pub(crate) fn inc_retry(&self, op: &str) {
        self.retries.get_or_create(&Self::op(op)).inc();
    }

    fn record<T>(&self, op: &str, start: Instant, result: &Result<T>, bytes: Option<u64>) {
        let labels = Self::op(op);
        self.operations.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        match result {
            Ok(_) => {
                if let Some(n) = bytes {
                    self.bytes.get_or_create(&labels).inc_by(n);
                }
            }
            Err(BucketError::NotFound { .. }) => {}
            Err(e) => {
                self.failures
                    .get_or_create(&FailureLabels {
                        operation: op.to_string(),
                        reason: failure_reason(e).to_string(),
                    })
                    .inc();
            }
        }
    }
}

fn failure_reason(e: &BucketError) -> &'static str {
    match e {
        BucketError::NotFound { .. } => "not_found",
        BucketError::InvalidKey { .. } => "invalid_key",
        BucketError::InvalidRange { .. } => "invalid_range",
        BucketError::Transient { .. } => "transient",
        BucketError::Timeout { .. } => "timeout",
        BucketError::Permanent { .. } => "permanent",
        BucketError::Io { .. } => "io",
        BucketError::Config(_) => "config",
    }
}

#[derive(Debug)]
pub struct MetricsStore {
    inner: Arc<dyn ObjectStore>,
    metrics: BucketMetrics,
}

impl MetricsStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: BucketMetrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl ObjectStore for MetricsStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let start = Instant::now();
        let r = self.inner.get(key).await;
        let n = r.as_ref().ok().map(|b| b.len() as u64);
        self.metrics.record("get", start, &r, n);
        r
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        let start = Instant::now();
        let r = self.inner.get_range(key, offset, len).await;
        let n = r.as_ref().ok().map(|b| b.len() as u64);
        self.metrics.record("get_range", start, &r, n);
        r
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        let start = Instant::now();
        let n = data.len() as u64;
        let r = self.inner.put_bytes(key, data).await;
        self.metrics.record("put_bytes", start, &r, Some(n));
        r
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.put_file(key, path).await;
        let n = r.as_ref().ok().copied();
        self.metrics.record("put_file", start, &r, n);
        r
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        let start = Instant::now();
        let r = self.inner.list(prefix, delimiter).await;
        self.metrics.record("list", start, &r, None);
        r
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let start = Instant::now();
        let r = self.inner.head(key).await;
        self.metrics.record("head", start, &r, None);
        r
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let start = Instant::now();
        let r = self.inner.exists(key).await;
        self.metrics.record("exists", start, &r, None);
        r
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.delete(key).await;
        self.metrics.record("delete", start, &r, None);
        r
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.get_to_file(key, path).await;
        let n = r.as_ref().ok().copied();
        self.metrics.record("get_to_file", start, &r, n);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;

    #[tokio::test]
    async fn counts_ops_bytes_failures_and_exposes_names() {
        let mut reg = Registry::default();
        let m = BucketMetrics::register(&mut reg);
        let store = MetricsStore::new(Arc::new(MemoryStore::new()), m.clone());
        store
            .put_bytes("a", Bytes::from_static(b"12345"))
            .await
            .unwrap();
        store.get("a").await.unwrap();
        assert!(store.get("missing").await.unwrap_err().is_not_found());
        assert!(store.get("../x").await.is_err());
        assert_eq!(m.operations("put_bytes"), 1);
        assert_eq!(m.bytes("put_bytes"), 5);
        assert_eq!(m.operations("get"), 3);
        assert_eq!(m.bytes("get"), 5);
        assert_eq!(m.failures("get", "invalid_key"), 1);
        assert_eq!(m.failures("get", "not_found"), 0);

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains("strata_bucket_operations_total{operation=\"get\"} 3"),
            "{text}"
        );
        assert!(text.contains("strata_bucket_operation_duration_seconds_bucket"));
        assert!(text.contains("strata_bucket_transferred_bytes_total"));
    }
}
