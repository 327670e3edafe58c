//! Retry decorator: repeats operations that failed with a transient error (network, timeout,
//! 408/429/5xx) with capped exponential backoff and jitter, and bounds every attempt with a
//! deadline. Never retries NotFound, InvalidKey, InvalidRange or other permanent errors.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::metrics::BucketMetrics;
use super::{BucketError, ListResult, ObjectMeta, ObjectStore, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first one (>= 1).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline for one attempt of a small operation.
    pub op_timeout: Duration,
    /// Deadline for one attempt of `put_file` / `get_to_file`.
    pub transfer_timeout: Duration,
}

impl RetryPolicy {
    /// Wait before attempt `retry` (1 = first retry): `initial * 2^(retry-1)` capped at
    /// `max_backoff`, then "equal jitter" (uniform in [d/2, d]) so that many clients hit by the
    /// same outage do not come back in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let half = base / 2;
        let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let extra = if jitter_ns == 0 {
            0
        } else {
            rand::random_range(0..=jitter_ns)
        };
        half + Duration::from_nanos(extra)
    }
}

#[derive(Debug)]
pub struct RetryStore {
    inner: Arc<dyn ObjectStore>,
    policy: RetryPolicy,
    metrics: Option<BucketMetrics>,
}

impl RetryStore {
    pub fn new(inner: Arc<dyn ObjectStore>, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            metrics: None,
        }
    }

    /// Counts retries in `strata_bucket_retries_total`.
    pub fn with_metrics(mut self, metrics: BucketMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        deadline: Duration,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            let result = match tokio::time::timeout(deadline, f()).await {
                Ok(r) => r,
                Err(_) => Err(BucketError::Timeout {
                    op,
                    key: key.to_string(),
                    after: deadline,
                }),
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.policy.max_attempts => {
                    let wait = self.policy.backoff(attempt);
                    tracing::warn!(
                        op,
                        key,
                        attempt,
                        max_attempts = self.policy.max_attempts,
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "bucket operation failed, retrying"
                    );
                    if let Some(m) = &self.metrics {
                        m.inc_retry(op);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl ObjectStore for RetryStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.run("get", key, self.policy.op_timeout, || self.inner.get(key))
            .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.run("get_range", key, self.policy.op_timeout, || {
            self.inner.get_range(key, offset, len)
        })
        .await
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        self.run("put_bytes", key, self.policy.op_timeout, || {
            self.inner.put_bytes(key, data.clone())
        })
        .await
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.run("put_file", key, self.policy.transfer_timeout, || {
            self.inner.put_file(key, path)
        })
        .await
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        self.run("list", prefix, self.policy.op_timeout, || {
            self.inner.list(prefix, delimiter)
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.run("head", key, self.policy.op_timeout, || self.inner.head(key))
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.run("exists", key, self.policy.op_timeout, || {
            self.inner.exists(key)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run("delete", key, self.policy.op_timeout, || {
            self.inner.delete(key)
        })
        .await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.run("get_to_file", key, self.policy.transfer_timeout, || {
            self.inner.get_to_file(key, path)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast_policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            op_timeout: Duration::from_secs(5),
            transfer_timeout: Duration::from_secs(5),
        }
    }

    /// Fails the first `fail_first` calls of every op with the given error kind.
    #[derive(Debug)]
    struct Flaky {
        inner: MemoryStore,
        calls: AtomicU32,
        fail_first: u32,
        transient: bool,
    }

    impl Flaky {
        fn maybe_fail(&self) -> Result<()> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                return Err(if self.transient {
                    BucketError::Transient {
                        op: "x",
                        key: "k".into(),
                        message: "503".into(),
                    }
                } else {
                    BucketError::Permanent {
                        op: "x",
                        key: "k".into(),
                        message: "403".into(),
                    }
                });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ObjectStore for Flaky {
        fn backend(&self) -> &'static str {
            "flaky"
        }
        async fn get(&self, key: &str) -> Result<Bytes> {
            self.maybe_fail()?;
            self.inner.get(key).await
        }
        async fn get_range(&self, key: &str, o: u64, l: u64) -> Result<Bytes> {
            self.maybe_fail()?;
            self.inner.get_range(key, o, l).await
        }
        async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
            self.maybe_fail()?;
            self.inner.put_bytes(key, data).await
        }
        async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
            self.maybe_fail()?;
            self.inner.put_file(key, path).await
        }
        async fn list(&self, p: &str, d: Option<&str>) -> Result<ListResult> {
            self.maybe_fail()?;
            self.inner.list(p, d).await
        }
        async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
            self.maybe_fail()?;
            self.inner.head(key).await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.maybe_fail()?;
            self.inner.delete(key).await
        }
        async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
            self.maybe_fail()?;
            self.inner.get_to_file(key, path).await
        }
    }

    fn flaky(fail_first: u32, transient: bool) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: MemoryStore::new(),
            calls: AtomicU32::new(0),
            fail_first,
            transient,
        })
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let f = flaky(2, true);
        let store = RetryStore::new(f.clone(), fast_policy(3));
        store
            .put_bytes("k", Bytes::from_static(b"v"))
            .await
            .unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
        assert_eq!(&store.get("k").await.unwrap()[..], b"v");
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let f = flaky(10, true);
        let store = RetryStore::new(f.clone(), fast_policy(3));
        let err = store.put_bytes("k", Bytes::new()).await.unwrap_err();
        assert!(err.is_transient());
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_and_not_found_are_not_retried() {
        let f = flaky(1, false);
        let store = RetryStore::new(f.clone(), fast_policy(5));
        assert!(store.put_bytes("k", Bytes::new()).await.is_err());
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);

        let f = flaky(0, true);
        let store = RetryStore::new(f.clone(), fast_policy(5));
        assert!(store.get("missing").await.unwrap_err().is_not_found());
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..fast_policy(10)
        };
        for retry in 1..40 {
            let d = p.backoff(retry);
            assert!(d <= Duration::from_secs(1), "{retry}: {d:?}");
        }
        let d1 = p.backoff(1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d3 = p.backoff(3);
        assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_time_out() {
        #[derive(Debug)]
        struct Hang;
        #[async_trait]
        impl ObjectStore for Hang {
            fn backend(&self) -> &'static str {
                "hang"
            }
            async fn get(&self, _: &str) -> Result<Bytes> {
                std::future::pending().await
            }
            async fn get_range(&self, _: &str, _: u64, _: u64) -> Result<Bytes> {
                std::future::pending().await
            }
            async fn put_bytes(&self, _: &str, _: Bytes) -> Result<()> {
                std::future::pending().await
            }
            async fn put_file(&self, _: &str, _: &Path) -> Result<u64> {
                std::future::pending().await
            }
            async fn list(&self, _: &str, _: Option<&str>) -> Result<ListResult> {
                std::future::pending().await
            }
            async fn head(&self, _: &str) -> Result<Option<ObjectMeta>> {
                std::future::pending().await
            }
            async fn delete(&self, _: &str) -> Result<()> {
                std::future::pending().await
            }
            async fn get_to_file(&self, _: &str, _: &Path) -> Result<u64> {
                std::future::pending().await
            }
        }
        let store = RetryStore::new(Arc::new(Hang), fast_policy(2));
        let err = store.get("k").await.unwrap_err();
        assert!(matches!(err, BucketError::Timeout { .. }), "{err}");
    }
}
