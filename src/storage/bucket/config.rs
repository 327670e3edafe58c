//! Bucket configuration (the `bucket:` section of the Strata config file) and `open_bucket`,
//! which builds the configured backend and wraps it in the metrics and retry decorators.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use super::filesystem::FilesystemStore;
use super::metrics::{BucketMetrics, MetricsStore};
use super::retry::{RetryPolicy, RetryStore};
use super::s3::S3Store;
use super::{BucketError, ObjectStore, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    #[serde(rename = "type")]
    pub kind: BucketKind,
    #[serde(default)]
    pub filesystem: Option<FilesystemConfig>,
    #[serde(default)]
    pub s3: Option<S3Config>,
    #[serde(default)]
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketKind {
    Filesystem,
    S3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    pub dir: PathBuf,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host[:port]`; a bare host gets `https://`.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests are required for IP/localhost endpoints and most self-hosted S3.
    #[serde(default = "default_true")]
    pub path_style: bool,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Per HTTP request, including reading the body.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Files at least this large are uploaded with multipart (parts are 8 MiB).
    #[serde(default)]
    pub multipart_threshold_bytes: Option<u64>,
}

// Hand-written so the secret never lands in logs.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Total attempts including the first one.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Deadline for one attempt of a small operation (get, put_bytes, list, head, delete...).
    pub op_timeout_secs: u64,
    /// Deadline for one attempt of a file transfer (put_file, get_to_file).
    pub transfer_timeout_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
            op_timeout_secs: 120,
            transfer_timeout_secs: 3600,
        }
    }
}

impl RetryConfig {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms.max(self.initial_backoff_ms)),
            op_timeout: Duration::from_secs(self.op_timeout_secs.max(1)),
            transfer_timeout: Duration::from_secs(self.transfer_timeout_secs.max(1)),
        }
    }
}

fn default_region() -> String {
    "us-east-1".to_string()
}
fn default_true() -> bool {
    true
}
fn default_request_timeout() -> u64 {
    300
}

/// Builds the configured backend as `Retry(Metrics(backend))`: metrics see every attempt (so
/// transient failures are visible), retries wrap them. Metrics are registered into `registry`
/// with the `strata_bucket_` prefix.
/// The config file's `bucket:` section in the shape the bucket layer takes. S3 keys come from
/// the config or, when absent there, from the usual AWS environment variables.
pub fn from_config(cfg: &crate::config::BucketConfig) -> BucketConfig {
    use crate::config::BucketType;
    let secret = |s: &crate::config::Secret| (!s.is_empty()).then(|| s.expose().to_string());
    match cfg.bucket_type {
        BucketType::Filesystem => BucketConfig {
            kind: BucketKind::Filesystem,
            filesystem: Some(FilesystemConfig {
                dir: cfg.filesystem.dir.clone(),
            }),
            s3: None,
            retry: Default::default(),
        },
        BucketType::S3 => BucketConfig {
            kind: BucketKind::S3,
            filesystem: None,
            s3: Some(S3Config {
                endpoint: cfg.s3.endpoint.clone(),
                bucket: cfg.s3.bucket.clone(),
                region: cfg.s3.region.clone(),
                path_style: cfg.s3.path_style,
                access_key: secret(&cfg.s3.access_key),
                secret_key: secret(&cfg.s3.secret_key),
                request_timeout_secs: 300,
                multipart_threshold_bytes: None,
            }),
            retry: Default::default(),
        },
    }
}

pub fn open_bucket(cfg: &BucketConfig, registry: &mut Registry) -> Result<Arc<dyn ObjectStore>> {
    let inner: Arc<dyn ObjectStore> = match cfg.kind {
        BucketKind::Filesystem => {
            let fs = cfg.filesystem.as_ref().ok_or_else(|| {
                BucketError::Config("type: filesystem needs a filesystem: {dir} section".into())
            })?;
            Arc::new(FilesystemStore::new(&fs.dir)?)
        }
        BucketKind::S3 => {
            let s3 = cfg.s3.as_ref().ok_or_else(|| {
                BucketError::Config("type: s3 needs an s3: {endpoint, bucket, ...} section".into())
            })?;
            Arc::new(S3Store::new(s3)?)
        }
    };
    let metrics = BucketMetrics::register(registry);
    Ok(wrap(inner, metrics, cfg.retry.policy()))
}

/// The decorator stack without config parsing, for callers that build their own backend.
pub fn wrap(
    inner: Arc<dyn ObjectStore>,
    metrics: BucketMetrics,
    policy: RetryPolicy,
) -> Arc<dyn ObjectStore> {
    let measured: Arc<dyn ObjectStore> = Arc::new(MetricsStore::new(inner, metrics.clone()));
    Arc::new(RetryStore::new(measured, policy).with_metrics(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_with_defaults_and_rejects_unknown_fields() {
        let cfg: BucketConfig = serde_json::from_str(
            r#"{"type":"s3","s3":{"endpoint":"http://127.0.0.1:9000","bucket":"b"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.kind, BucketKind::S3);
        let s3 = cfg.s3.unwrap();
        assert_eq!(s3.region, "us-east-1");
        assert!(s3.path_style);
        assert_eq!(cfg.retry, RetryConfig::default());

        let err = serde_json::from_str::<BucketConfig>(
            r#"{"type":"s3","s3":{"endpoint":"e","bucket":"b","secret":"x"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(serde_json::from_str::<BucketConfig>(r#"{"type":"gcs"}"#).is_err());
    }

    #[test]
    fn debug_redacts_secret() {
        let s3 = S3Config {
            endpoint: "e".into(),
            bucket: "b".into(),
            region: default_region(),
            path_style: true,
            access_key: Some("AK".into()),
            secret_key: Some("SUPERSECRET".into()),
            request_timeout_secs: 1,
            multipart_threshold_bytes: None,
        };
        assert!(!format!("{s3:?}").contains("SUPERSECRET"));
    }

    #[test]
    fn open_filesystem_and_missing_section() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::default();
        let cfg = BucketConfig {
            kind: BucketKind::Filesystem,
            filesystem: Some(FilesystemConfig {
                dir: dir.path().to_path_buf(),
            }),
            s3: None,
            retry: RetryConfig::default(),
        };
        let store = open_bucket(&cfg, &mut reg).unwrap();
        assert_eq!(store.backend(), "filesystem");
        let bad = BucketConfig {
            kind: BucketKind::S3,
            ..cfg
        };
        assert!(matches!(
            open_bucket(&bad, &mut Registry::default()),
            Err(BucketError::Config(_))
        ));
    }
}
