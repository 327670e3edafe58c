//! `remote_write` in Prometheus 2.42 syntax with its defaults: the endpoint and how to reach
//! it (timeout, headers, auth, TLS), the relabeling applied before sending, and the queue
//! (`queue_config`) and metadata (`metadata_config`) settings. Names must be unique, as
//! Prometheus requires; headers Prometheus reserves for the protocol are refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::http_client::{
    default_true, is_true, Authorization, BasicAuth, HttpClientView, Secret, TlsConfig,
};
use super::relabel::RelabelConfig;
use super::units::PromDuration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    pub url: String,
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub send_exemplars: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub bearer_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub tls_config: TlsConfig,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub follow_redirects: bool,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enable_http2: bool,
    #[serde(default)]
    pub queue_config: QueueConfig,
    #[serde(default)]
    pub metadata_config: MetadataConfig,
}

fn default_remote_timeout() -> PromDuration {
    PromDuration::from_secs(30)
}

/// Prometheus 2.42's `DefaultQueueConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: usize,
    pub max_shards: usize,
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: PromDuration,
    pub min_backoff: PromDuration,
    pub max_backoff: PromDuration,
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 2500,
            max_shards: 200,
            min_shards: 1,
            max_samples_per_send: 500,
            batch_send_deadline: PromDuration::from_secs(5),
            min_backoff: PromDuration::from_millis(30),
            max_backoff: PromDuration::from_secs(5),
            retry_on_http_429: false,
        }
    }
}

/// Prometheus 2.42's `DefaultMetadataConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: PromDuration,
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: PromDuration::from_mins(1),
            max_samples_per_send: 500,
        }
    }
}

/// Headers the protocol sets itself (Prometheus's `reservedHeaders`).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-prometheus-scrape-timeout-seconds",
];

impl RemoteWriteConfig {
    pub fn http_client(&self) -> HttpClientView<'_> {
        HttpClientView {
            basic_auth: self.basic_auth.as_ref(),
            authorization: self.authorization.as_ref(),
            bearer_token: &self.bearer_token,
            bearer_token_file: self.bearer_token_file.as_ref(),
            tls_config: &self.tls_config,
            follow_redirects: self.follow_redirects,
            enable_http2: self.enable_http2,
        }
    }

    /// Prometheus's checks of one entry; the message for the key `key`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            (
                "url".to_string(),
                format!("invalid URL {:?}: {e}", self.url),
            )
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(("url".into(), "URL scheme must be 'http' or 'https'".into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(("url".into(), "host is missing in URL".into()));
        }
        for h in self.headers.keys() {
            if RESERVED_HEADERS.contains(&h.to_lowercase().as_str()) {
                return Err((
                    "headers".into(),
                    format!("{h} is a reserved header. It must not be changed"),
                ));
            }
        }
        let q = &self.queue_config;
        if q.max_samples_per_send == 0 || q.capacity == 0 {
            return Err((
                "queue_config".into(),
                "capacity and max_samples_per_send must be positive".into(),
            ));
        }
        if q.min_shards == 0 || q.max_shards < q.min_shards {
            return Err((
                "queue_config".into(),
                "min_shards must be positive and not above max_shards".into(),
            ));
        }
        self.http_client().check().map_err(|m| (String::new(), m))?;
        Ok(())
    }

    /// The `remote_name` label: the configured name, else a short hash of the URL (Prometheus
    /// hashes the whole entry; the URL keeps it stable across unrelated edits).
    pub fn remote_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let mut h: u64 = 0xcbf29ce484222325;
        for b in self.url.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{:06x}", h & 0xff_ffff)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn defaults_and_checks_are_prometheus_s() {
        let c: RemoteWriteConfig =
            serde_norway::from_str("url: http://r:9090/api/v1/write").unwrap();
        assert_eq!(c.remote_timeout, PromDuration::from_secs(30));
        assert_eq!(c.queue_config.max_samples_per_send, 500);
        assert!(c.metadata_config.send);
        c.check().unwrap();
        assert_eq!(c.remote_name().len(), 6);
        let c: RemoteWriteConfig =
            serde_norway::from_str("url: http://r/w\nheaders: {Content-Type: x}").unwrap();
        assert!(c.check().unwrap_err().1.contains("reserved header"));
        let c: RemoteWriteConfig = serde_norway::from_str("url: ftp://r/w").unwrap();
        assert_eq!(c.check().unwrap_err().0, "url");
        assert!(serde_norway::from_str::<RemoteWriteConfig>("url: http://r\nsigv4: {}").is_err());
    }
}
