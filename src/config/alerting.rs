//! The `alerting` section in Prometheus syntax: where the RuleEvaluator sends alerts
//! (Alertmanager endpoints found statically or from files) and the relabeling applied to alerts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::http_client::{
    default_true, is_true, Authorization, BasicAuth, HttpClientView, Secret, TlsConfig,
};
use super::relabel::RelabelConfig;
use super::scrape::{FileSdConfig, Scheme, StaticConfig};
use super::units::PromDuration;
use super::unsupported::{self as refuse, Unsupported};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

/// The Alertmanager HTTP API version to push alerts to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertmanagerApiVersion {
    V1,
    #[default]
    V2,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_configs: Vec<StaticConfig>,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub scheme: Scheme,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    #[serde(default)]
    pub api_version: AlertmanagerApiVersion,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub relabel_configs: Vec<RelabelConfig>,
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

    #[serde(
        default,
        skip_serializing,
        rename = "consul_sd_configs",
        deserialize_with = "refuse::consul_sd_configs"
    )]
    pub _consul_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "dns_sd_configs",
        deserialize_with = "refuse::dns_sd_configs"
    )]
    pub _dns_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "ec2_sd_configs",
        deserialize_with = "refuse::ec2_sd_configs"
    )]
    pub _ec2_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "http_sd_configs",
        deserialize_with = "refuse::http_sd_configs"
    )]
    pub _http_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "kubernetes_sd_configs",
        deserialize_with = "refuse::kubernetes_sd_configs"
    )]
    pub _kubernetes_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "gce_sd_configs",
        deserialize_with = "refuse::gce_sd_configs"
    )]
    pub _gce_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "azure_sd_configs",
        deserialize_with = "refuse::azure_sd_configs"
    )]
    pub _azure_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "oauth2",
        deserialize_with = "refuse::oauth2"
    )]
    pub _oauth2: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "proxy_url",
        deserialize_with = "refuse::proxy_url"
    )]
    pub _proxy_url: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "sigv4",
        deserialize_with = "refuse::sigv4"
    )]
    pub _sigv4: Unsupported,
}

fn default_path_prefix() -> String {
    "/".to_string()
}

fn default_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}

impl AlertmanagerConfig {
    /// Defaults as Prometheus has them, no targets.
    pub fn new() -> Self {
        AlertmanagerConfig {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            scheme: Scheme::Http,
            path_prefix: default_path_prefix(),
            timeout: default_timeout(),
            api_version: AlertmanagerApiVersion::V2,
            relabel_configs: Vec::new(),
            basic_auth: None,
            authorization: None,
            bearer_token: Secret::default(),
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            _consul_sd_configs: Unsupported,
            _dns_sd_configs: Unsupported,
            _ec2_sd_configs: Unsupported,
            _http_sd_configs: Unsupported,
            _kubernetes_sd_configs: Unsupported,
            _gce_sd_configs: Unsupported,
            _azure_sd_configs: Unsupported,
            _oauth2: Unsupported,
            _proxy_url: Unsupported,
            _sigv4: Unsupported,
        }
    }

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
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig::new()
    }
}
