//! S3 backend on top of the `rust-s3` crate. Owns the traps of that crate against real servers:
//! keys validated before they reach it (it silently drops a leading `/`), inclusive range ends
//! with `start > end` never passed (the crate asserts), multipart with at most 2 parts in flight
//! (its default sizes itself from free RAM), the crate's own retries switched off (the retry
//! decorator owns policy) and HTTP/network failures mapped onto `BucketError` kinds.

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};

use super::{
    inclusive_range_end, validate_key, validate_prefix, BucketError, ListEntry, ListResult,
    ObjectMeta, ObjectStore, Result, S3Config,
};

/// rust-s3 always uploads in fixed 8 MiB parts; below this a single PUT is cheaper.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Parts in flight per multipart upload (each costs about 2× the 8 MiB part in memory).
const MAX_CONCURRENT_PARTS: usize = 2;
/// Large downloads are split into ranged GETs of this size so that one request never has to
/// outlive the per-request timeout and memory stays flat.
const DOWNLOAD_CHUNK: u64 = 64 * 1024 * 1024;
/// S3's maximum object size (5 TiB).
const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Longest error body kept in messages (S3 error XML is short; proxies may send HTML pages).
const MAX_BODY_IN_MESSAGE: usize = 512;

#[derive(Clone)]
pub struct S3Store {
    bucket: Box<Bucket>,
    multipart_threshold: u64,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.host())
            .finish()
    }
}

impl S3Store {
    /// Builds the client (no network I/O). Credentials come from the config, or else from
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and optional `AWS_SESSION_TOKEN`).
    pub fn new(cfg: &S3Config) -> Result<Self> {
        // Process-global in the crate: our retry decorator is the single owner of retries.
        s3::set_retries(0);
        if cfg.bucket.is_empty() {
            return Err(BucketError::Config("s3.bucket is empty".into()));
        }
        if cfg.endpoint.is_empty() {
            return Err(BucketError::Config("s3.endpoint is empty".into()));
        }
        let endpoint = if cfg.endpoint.contains("://") {
            cfg.endpoint.clone()
        } else {
            format!("https://{}", cfg.endpoint)
        };
        let region = Region::Custom {
            region: cfg.region.clone(),
            endpoint,
        };
        let creds = credentials(cfg)?;
        let mut bucket = Bucket::new(&cfg.bucket, region, creds)
            .map_err(|e| BucketError::Config(format!("s3 bucket {}: {e}", cfg.bucket)))?;
        if cfg.path_style {
            bucket.set_path_style();
        }
        bucket.set_request_timeout(Some(Duration::from_secs(cfg.request_timeout_secs.max(1))));
        Ok(Self {
            bucket,
            multipart_threshold: cfg
                .multipart_threshold_bytes
                .unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
        })
    }
}

fn credentials(cfg: &S3Config) -> Result<Credentials> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (ak, sk, token) = match (&cfg.access_key, &cfg.secret_key) {
        (Some(ak), Some(sk)) => (ak.clone(), sk.clone(), None),
        (None, None) => match (
            from_env("AWS_ACCESS_KEY_ID"),
            from_env("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(ak), Some(sk)) => (ak, sk, from_env("AWS_SESSION_TOKEN")),
            _ => {
                return Err(BucketError::Config(
                    "no S3 credentials: set s3.access_key and s3.secret_key, or \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .into(),
                ))
            }
        },
        _ => {
            return Err(BucketError::Config(
                "s3.access_key and s3.secret_key must be set together".into(),
            ))
        }
    };
    Credentials::new(Some(&ak), Some(&sk), None, token.as_deref(), None)
        .map_err(|e| BucketError::Config(format!("s3 credentials: {e}")))
}

/// Maps a crate error onto our kinds: 404 → NotFound, 416 → InvalidRange, connect/timeout/
/// 408/429/5xx → Transient, every other HTTP status → Permanent.
pub fn map_s3_error(op: &'static str, key: &str, err: S3Error) -> BucketError {
    let key_s = key.to_string();
    match err {
        S3Error::HttpFailWithBody(404, _) => BucketError::NotFound { key: key_s },
        // The caller knows the offset/len and fills them in.
        S3Error::HttpFailWithBody(416, _) => BucketError::InvalidRange {
            key: key_s,
            offset: 0,
            len: 0,
            size: None,
        },
        S3Error::HttpFailWithBody(status, body) => classified(
            status == 408 || status == 429 || status >= 500,
            op,
            key_s,
            format!("HTTP {status}: {}", truncate(&body)),
        ),
        S3Error::Reqwest(e) => classified(
            e.is_timeout() || e.is_connect() || e.is_request() || e.is_body(),
            op,
            key_s,
            e.to_string(),
        ),
        S3Error::Io(e) if is_transient_io(&e) => BucketError::Transient {
            op,
            key: key_s,
            message: e.to_string(),
        },
        other => BucketError::Permanent {
            op,
            key: key_s,
            message: other.to_string(),
        },
    }
}

/// A transient or a permanent failure of `op` on `key`.
fn classified(transient: bool, op: &'static str, key: String, message: String) -> BucketError {
    if transient {
        BucketError::Transient { op, key, message }
    } else {
        BucketError::Permanent { op, key, message }
    }
}

fn is_transient_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset
            | ConnectionAborted
            | ConnectionRefused
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
    )
}

fn truncate(body: &str) -> String {
    if body.len() <= MAX_BODY_IN_MESSAGE {
        return body.trim().to_string();
    }
    let mut end = MAX_BODY_IN_MESSAGE;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", body[..end].trim())
}

fn parse_list_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()
}

fn check_status(op: &'static str, key: &str, status: u16) -> Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(map_s3_error(
        op,
        key,
        S3Error::HttpFailWithBody(status, String::new()),
    ))
}

#[async_trait]
impl ObjectStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        validate_key(key)?;
        let resp = self
            .bucket
            .get_object(key)
            .await
            .map_err(|e| map_s3_error("get", key, e))?;
        check_status("get", key, resp.status_code())?;
        Ok(resp.into_bytes())
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        validate_key(key)?;
        if len == 0 {
            // S3 cannot express an empty range; answer it locally once the key is known.
            return match self.head(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(BucketError::NotFound { key: key.into() }),
            };
        }
        if offset >= MAX_OBJECT_SIZE {
            // No object can be this large; some servers reject such a Range header with 400
            // instead of 416, so answer locally.
            return match self.head(key).await? {
                Some(m) => Err(BucketError::InvalidRange {
                    key: key.into(),
                    offset,
                    len,
                    size: Some(m.size),
                }),
                None => Err(BucketError::NotFound { key: key.into() }),
            };
        }
        let end = inclusive_range_end(offset, len);
        let resp = self
            .bucket
            .get_object_range(key, offset, end)
            .await
            .map_err(|e| match map_s3_error("get_range", key, e) {
                BucketError::InvalidRange { key, size, .. } => BucketError::InvalidRange {
                    key,
                    offset,
                    len,
                    size,
                },
                other => other,
            })?;
        check_status("get_range", key, resp.status_code())?;
        Ok(resp.into_bytes())
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key)?;
        let resp = self
            .bucket
            .put_object(key, &data)
            .await
            .map_err(|e| map_s3_error("put", key, e))?;
        check_status("put", key, resp.status_code())
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        validate_key(key)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| BucketError::io(path, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| BucketError::io(path, e))?
            .len();
        if size < self.multipart_threshold {
            let data = tokio::fs::read(path)
                .await
                .map_err(|e| BucketError::io(path, e))?;
            let n = data.len() as u64;
            self.put_bytes(key, Bytes::from(data)).await?;
            return Ok(n);
        }
        let resp = self
            .bucket
            .put_object_stream_builder(key)
            .with_max_concurrent_chunks(MAX_CONCURRENT_PARTS)
            .execute_stream(&mut file)
            .await
            .map_err(|e| match e {
                S3Error::Io(io) if !is_transient_io(&io) => BucketError::io(path, io),
                other => map_s3_error("put_file", key, other),
            })?;
        check_status("put_file", key, resp.status_code())?;
        let uploaded = resp.uploaded_bytes() as u64;
        if uploaded != size {
            return Err(BucketError::Permanent {
                op: "put_file",
                key: key.into(),
                message: format!(
                    "uploaded {uploaded} bytes but {} is {size} bytes (file changed during upload?)",
                    path.display()
                ),
            });
        }
        Ok(uploaded)
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        validate_prefix(prefix)?;
        let mut out = ListResult::default();
        let mut token: Option<String> = None;
        loop {
            let (page, status) = self
                .bucket
                .list_page(
                    prefix.to_string(),
                    delimiter.map(str::to_string),
                    token.clone(),
                    None,
                    None,
                )
                .await
                .map_err(|e| map_s3_error("list", prefix, e))?;
            check_status("list", prefix, status)?;
            for obj in page.contents {
                out.objects.push(ListEntry {
                    last_modified: parse_list_time(&obj.last_modified),
                    key: obj.key,
                    size: obj.size,
                });
            }
            for cp in page.common_prefixes.unwrap_or_default() {
                out.common_prefixes.push(cp.prefix);
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated && Some(&next) != token.as_ref() => {
                    token = Some(next)
                }
                _ => break,
            }
        }
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.common_prefixes.sort();
        out.common_prefixes.dedup();
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        validate_key(key)?;
        match self.bucket.head_object(key).await {
            Ok((h, status)) => {
                check_status("head", key, status)?;
                let size = h.content_length.unwrap_or(0).max(0) as u64;
                let last_modified = h
                    .last_modified
                    .as_deref()
                    .and_then(|s| httpdate::parse_http_date(s).ok());
                Ok(Some(ObjectMeta {
                    size,
                    last_modified,
                }))
            }
            Err(e) => match map_s3_error("head", key, e) {
                BucketError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self.bucket.delete_object(key).await {
            Ok(resp) => check_status("delete", key, resp.status_code()),
            Err(e) => match map_s3_error("delete", key, e) {
                BucketError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        validate_key(key)?;
        let size = match self.head(key).await? {
            Some(m) => m.size,
            None => return Err(BucketError::NotFound { key: key.into() }),
        };
        let tmp = super::filesystem::sibling_tmp(path);
        let result = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| BucketError::io(&tmp, e))?;
            let mut offset = 0u64;
            while offset < size {
                let end = (offset + DOWNLOAD_CHUNK).min(size) - 1;
                let status = self
                    .bucket
                    .get_object_range_to_writer(key, offset, Some(end), &mut file)
                    .await
                    .map_err(|e| map_s3_error("get_to_file", key, e))?;
                check_status("get_to_file", key, status)?;
                offset = end + 1;
            }
            file.flush().await.map_err(|e| BucketError::io(&tmp, e))?;
            file.sync_all()
                .await
                .map_err(|e| BucketError::io(&tmp, e))?;
            let written = file
                .metadata()
                .await
                .map_err(|e| BucketError::io(&tmp, e))?
                .len();
            if written != size {
                return Err(BucketError::Transient {
                    op: "get_to_file",
                    key: key.into(),
                    message: format!("downloaded {written} bytes, expected {size}"),
                });
            }
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(|e| BucketError::io(path, e))?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_kinds() {
        let m = |s| map_s3_error("get", "k", S3Error::HttpFailWithBody(s, "<Error/>".into()));
        assert!(m(404).is_not_found());
        assert!(matches!(m(416), BucketError::InvalidRange { .. }));
        for s in [408, 429, 500, 502, 503] {
            assert!(m(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 409] {
            let e = m(s);
            assert!(matches!(e, BucketError::Permanent { .. }), "{s}: {e}");
            assert!(!e.is_transient());
        }
    }

    #[test]
    fn half_configured_credentials_are_rejected() {
        let cfg = S3Config {
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            path_style: true,
            access_key: Some("ak".into()),
            secret_key: None,
            request_timeout_secs: 5,
            multipart_threshold_bytes: None,
        };
        let err = S3Store::new(&cfg).unwrap_err();
        assert!(err.to_string().contains("must be set together"), "{err}");
        let ok = S3Store::new(&S3Config {
            secret_key: Some("sk".into()),
            ..cfg.clone()
        });
        assert!(ok.is_ok());
        let err = S3Store::new(&S3Config {
            bucket: String::new(),
            secret_key: Some("sk".into()),
            ..cfg
        })
        .unwrap_err();
        assert!(matches!(err, BucketError::Config(_)));
    }

    #[test]
    fn list_times_parse() {
        assert!(parse_list_time("2026-11-25T09:00:00.123Z").is_some());
        assert!(parse_list_time("garbage").is_none());
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "é".repeat(1000);
        assert!(truncate(&body).len() <= MAX_BODY_IN_MESSAGE + 4);
    }
}
