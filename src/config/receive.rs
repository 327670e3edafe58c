//! The `receive:` section: how the pool takes Prometheus remote write (`/api/v1/write`,
//! `/api/v1/receive`). Tenants follow Thanos receive: the tenant comes from a request header
//! (`--receive.tenant-header`, default `THANOS-TENANT`), a request without it belongs to
//! `default-tenant` (`--receive.default-tenant-id`), and the tenant is stored as a label named
//! `tenant_id` (`--receive.tenant-label-name`). Limits follow Thanos's per-request limits
//! (body size, series, samples: 413) plus a per-tenant sample rate (429) and an in-flight
//! request gate (503). Zero means "no limit" for every limit, as in Thanos. The replication
//! factor is `cluster.receive_replication`.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Result};
use super::relabel::is_valid_label_name;
use super::units::{ByteSize, PromDuration};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveConfig {
    /// The request header naming the tenant.
    #[serde(default = "default_tenant_header")]
    pub tenant_header: String,
    /// The tenant of a request without the header.
    #[serde(default = "default_tenant")]
    pub default_tenant: String,
    /// The label every series of a tenant carries (on `/api/v1/write` only when the request
    /// names a tenant, so that plain Prometheus remote write stores series unchanged).
    #[serde(default = "default_tenant_label")]
    pub tenant_label: String,
    /// How long one replica write to a peer may take before it counts as failed.
    #[serde(default = "default_forward_timeout")]
    pub forward_timeout: PromDuration,
    #[serde(default)]
    pub limits: ReceiveLimits,
}

/// Limits; 0 is unlimited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveLimits {
    /// Compressed request body size (413).
    #[serde(default = "default_body_size")]
    pub max_body_size: ByteSize,
    /// Series in one request (413).
    #[serde(default)]
    pub max_series_per_request: usize,
    /// Samples in one request (413).
    #[serde(default)]
    pub max_samples_per_request: usize,
    /// Requests served at once by this node; more answer 503 so the sender retries.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Samples per second one tenant may write through this node (429).
    #[serde(default)]
    pub tenant_samples_per_second: u64,
}

fn default_tenant_header() -> String {
    "THANOS-TENANT".to_string()
}

fn default_tenant() -> String {
    "default-tenant".to_string()
}

fn default_tenant_label() -> String {
    "tenant_id".to_string()
}

fn default_forward_timeout() -> PromDuration {
    PromDuration::from_secs(5)
}

fn default_body_size() -> ByteSize {
    ByteSize(32 * 1024 * 1024)
}

fn default_max_concurrency() -> usize {
    256
}

impl Default for ReceiveConfig {
    fn default() -> Self {
        ReceiveConfig {
            tenant_header: default_tenant_header(),
            default_tenant: default_tenant(),
            tenant_label: default_tenant_label(),
            forward_timeout: default_forward_timeout(),
            limits: ReceiveLimits::default(),
        }
    }
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            max_body_size: default_body_size(),
            max_series_per_request: 0,
            max_samples_per_request: 0,
            max_concurrency: default_max_concurrency(),
            tenant_samples_per_second: 0,
        }
    }
}

impl ReceiveConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if actix_http_header_name_ok(&self.tenant_header).is_err() {
            return Err(ConfigError::invalid(
                "receive.tenant_header",
                format!("{:?} is not a valid HTTP header name", self.tenant_header),
            ));
        }
        if self.default_tenant.is_empty() {
            return Err(ConfigError::invalid(
                "receive.default_tenant",
                "must not be empty",
            ));
        }
        if !is_valid_label_name(&self.tenant_label) {
            return Err(ConfigError::invalid(
                "receive.tenant_label",
                format!("{:?} is not a valid label name", self.tenant_label),
            ));
        }
        if self.forward_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "receive.forward_timeout",
                "must be greater than 0s",
            ));
        }
        Ok(())
    }
}

fn actix_http_header_name_ok(name: &str) -> std::result::Result<(), ()> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_thanos_defaults() {
        let c: ReceiveConfig = serde_norway::from_str("{}").unwrap();
        assert_eq!(c, ReceiveConfig::default());
        assert_eq!(c.tenant_header, "THANOS-TENANT");
        assert_eq!(c.default_tenant, "default-tenant");
        assert_eq!(c.tenant_label, "tenant_id");
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let c: ReceiveConfig = serde_norway::from_str("tenant_label: a-b").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("receive.tenant_label"));
        let c: ReceiveConfig = serde_norway::from_str("tenant_header: 'a b'").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("receive.tenant_header"));
        let c: ReceiveConfig =
            serde_norway::from_str("limits: {max_body_size: 1MiB, max_series_per_request: 10}")
                .unwrap();
        assert_eq!(c.limits.max_body_size, ByteSize(1024 * 1024));
        assert_eq!(c.limits.max_series_per_request, 10);
        assert!(serde_norway::from_str::<ReceiveConfig>("nope: 1").is_err());
    }
}
