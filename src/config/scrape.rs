//! `scrape_configs` in Prometheus 2.42 syntax: one job's targets (static, file, DNS and HTTP
//! discovery), how to scrape them, limits, and the relabeling applied to targets and samples.
//! Intervals left at zero inherit from `global` in `Config::finalize`, as Prometheus does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};

use super::http_client::{
    default_true, is_true, Authorization, BasicAuth, HttpClientView, Secret, TlsConfig,
};
use super::relabel::{LabelName, RelabelConfig};
use super::units::{ByteSize, PromDuration};
use super::unsupported::{self as refuse, Unsupported};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// The exposition formats a scrape may ask for (Prometheus 2.49's `scrape_protocols`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    PrometheusProto,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText001,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText100,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText004,
}

/// A group of fixed targets sharing labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default, deserialize_with = "targets")]
    pub targets: Vec<String>,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<LabelName, String>,
}

/// Prometheus's `CheckTargetAddress`: a target is `host[:port]`, never a URL or path.
fn targets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
    for t in &list {
        if t.contains('/') {
            return Err(serde::de::Error::custom(format!(
                "{t:?} is not a valid hostname"
            )));
        }
    }
    Ok(list)
}

/// Targets read from JSON or YAML files, re-read on change and every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    #[serde(deserialize_with = "sd_files")]
    pub files: Vec<String>,
    #[serde(default = "default_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_refresh() -> PromDuration {
    PromDuration::from_mins(5)
}

/// Prometheus's `patFileSDName`: at most one `*`, only in the last path element, and a
/// json/yml/yaml extension.
fn sd_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let list = Vec::<String>::deserialize(d)?;
    if list.is_empty() {
        return Err(serde::de::Error::custom(
            "file service discovery config must contain at least one path name",
        ));
    }
    let re =
        RE.get_or_init(|| Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").ok());
    for f in &list {
        if !re.as_ref().is_some_and(|re| re.is_match(f)) {
            return Err(serde::de::Error::custom(format!(
                "path name {f:?} is not valid for file discovery"
            )));
        }
    }
    Ok(list)
}

/// What a job does with the naming problems its targets expose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LintPolicy {
    /// Report them (`/api/v1/targets`, `strata_target_lint_problems`), store everything.
    #[default]
    Warn,
    /// Report them and store none of the samples of a family that has one.
    Drop,
}

impl LintPolicy {
    fn is_warn(&self) -> bool {
        *self == LintPolicy::Warn
    }
}

/// One scrape job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// Zero until `Config::finalize` fills it from `global`.
    #[serde(default)]
    pub scrape_interval: PromDuration,
    #[serde(default)]
    pub scrape_timeout: PromDuration,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default)]
    pub scheme: Scheme,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
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
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric_relabel_configs: Vec<RelabelConfig>,
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
    /// Zero means no limit, for all the limits below.
    #[serde(default)]
    pub sample_limit: u64,
    #[serde(default)]
    pub target_limit: u64,
    #[serde(default)]
    pub label_limit: u64,
    #[serde(default)]
    pub label_name_length_limit: u64,
    #[serde(default)]
    pub label_value_length_limit: u64,
    #[serde(default)]
    pub body_size_limit: ByteSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Strata's naming-lint policy (`warn`: report the problems; `drop`: also keep the
    /// families that have any out of the TSDB). Not a Prometheus key.
    #[serde(default, skip_serializing_if = "LintPolicy::is_warn")]
    pub lint: LintPolicy,
    /// Whether the job came through the scrape-config API rather than the config file:
    /// never read from or written to YAML.
    #[serde(skip)]
    pub from_api: bool,

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
        rename = "consul_sd_configs",
        deserialize_with = "refuse::consul_sd_configs"
    )]
    pub _consul_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "digitalocean_sd_configs",
        deserialize_with = "refuse::digitalocean_sd_configs"
    )]
    pub _digitalocean_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "docker_sd_configs",
        deserialize_with = "refuse::docker_sd_configs"
    )]
    pub _docker_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "dockerswarm_sd_configs",
        deserialize_with = "refuse::dockerswarm_sd_configs"
    )]
    pub _dockerswarm_sd_configs: Unsupported,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dns_sd_configs: Vec<super::sd::DnsSdConfig>,
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
        rename = "eureka_sd_configs",
        deserialize_with = "refuse::eureka_sd_configs"
    )]
    pub _eureka_sd_configs: Unsupported,
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
        rename = "hetzner_sd_configs",
        deserialize_with = "refuse::hetzner_sd_configs"
    )]
    pub _hetzner_sd_configs: Unsupported,
    #[serde(
        default,
        deserialize_with = "super::nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub http_sd_configs: Vec<super::sd::HttpSdConfig>,
    #[serde(
        default,
        skip_serializing,
        rename = "ionos_sd_configs",
        deserialize_with = "refuse::ionos_sd_configs"
    )]
    pub _ionos_sd_configs: Unsupported,
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
        rename = "kuma_sd_configs",
        deserialize_with = "refuse::kuma_sd_configs"
    )]
    pub _kuma_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "lightsail_sd_configs",
        deserialize_with = "refuse::lightsail_sd_configs"
    )]
    pub _lightsail_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "linode_sd_configs",
        deserialize_with = "refuse::linode_sd_configs"
    )]
    pub _linode_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "marathon_sd_configs",
        deserialize_with = "refuse::marathon_sd_configs"
    )]
    pub _marathon_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "nerve_sd_configs",
        deserialize_with = "refuse::nerve_sd_configs"
    )]
    pub _nerve_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "nomad_sd_configs",
        deserialize_with = "refuse::nomad_sd_configs"
    )]
    pub _nomad_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "openstack_sd_configs",
        deserialize_with = "refuse::openstack_sd_configs"
    )]
    pub _openstack_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "ovhcloud_sd_configs",
        deserialize_with = "refuse::ovhcloud_sd_configs"
    )]
    pub _ovhcloud_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "puppetdb_sd_configs",
        deserialize_with = "refuse::puppetdb_sd_configs"
    )]
    pub _puppetdb_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "scaleway_sd_configs",
        deserialize_with = "refuse::scaleway_sd_configs"
    )]
    pub _scaleway_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "serverset_sd_configs",
        deserialize_with = "refuse::serverset_sd_configs"
    )]
    pub _serverset_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "triton_sd_configs",
        deserialize_with = "refuse::triton_sd_configs"
    )]
    pub _triton_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "uyuni_sd_configs",
        deserialize_with = "refuse::uyuni_sd_configs"
    )]
    pub _uyuni_sd_configs: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "vultr_sd_configs",
        deserialize_with = "refuse::vultr_sd_configs"
    )]
    pub _vultr_sd_configs: Unsupported,
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
        rename = "no_proxy",
        deserialize_with = "refuse::no_proxy"
    )]
    pub _no_proxy: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "proxy_from_environment",
        deserialize_with = "refuse::proxy_from_environment"
    )]
    pub _proxy_from_environment: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "proxy_connect_header",
        deserialize_with = "refuse::proxy_connect_header"
    )]
    pub _proxy_connect_header: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "native_histogram_bucket_limit",
        deserialize_with = "refuse::native_histogram_bucket_limit"
    )]
    pub _native_histogram_bucket_limit: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "scrape_classic_histograms",
        deserialize_with = "refuse::scrape_classic_histograms"
    )]
    pub _scrape_classic_histograms: Unsupported,
    #[serde(
        default,
        skip_serializing,
        rename = "keep_dropped_targets",
        deserialize_with = "refuse::keep_dropped_targets"
    )]
    pub _keep_dropped_targets: Unsupported,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

impl ScrapeConfig {
    /// A job with Prometheus's defaults and nothing to scrape; intervals stay zero (inherit).
    pub fn new(job_name: impl Into<String>) -> Self {
        ScrapeConfig {
            job_name: job_name.into(),
            scrape_interval: PromDuration::ZERO,
            scrape_timeout: PromDuration::ZERO,
            metrics_path: default_metrics_path(),
            scheme: Scheme::Http,
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            basic_auth: None,
            authorization: None,
            bearer_token: Secret::default(),
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: ByteSize(0),
            scrape_protocols: None,
            lint: LintPolicy::Warn,
            from_api: false,
            _azure_sd_configs: Unsupported,
            _consul_sd_configs: Unsupported,
            _digitalocean_sd_configs: Unsupported,
            _docker_sd_configs: Unsupported,
            _dockerswarm_sd_configs: Unsupported,
            dns_sd_configs: Vec::new(),
            _ec2_sd_configs: Unsupported,
            _eureka_sd_configs: Unsupported,
            _gce_sd_configs: Unsupported,
            _hetzner_sd_configs: Unsupported,
            http_sd_configs: Vec::new(),
            _ionos_sd_configs: Unsupported,
            _kubernetes_sd_configs: Unsupported,
            _kuma_sd_configs: Unsupported,
            _lightsail_sd_configs: Unsupported,
            _linode_sd_configs: Unsupported,
            _marathon_sd_configs: Unsupported,
            _nerve_sd_configs: Unsupported,
            _nomad_sd_configs: Unsupported,
            _openstack_sd_configs: Unsupported,
            _ovhcloud_sd_configs: Unsupported,
            _puppetdb_sd_configs: Unsupported,
            _scaleway_sd_configs: Unsupported,
            _serverset_sd_configs: Unsupported,
            _triton_sd_configs: Unsupported,
            _uyuni_sd_configs: Unsupported,
            _vultr_sd_configs: Unsupported,
            _oauth2: Unsupported,
            _proxy_url: Unsupported,
            _no_proxy: Unsupported,
            _proxy_from_environment: Unsupported,
            _proxy_connect_header: Unsupported,
            _native_histogram_bucket_limit: Unsupported,
            _scrape_classic_histograms: Unsupported,
            _keep_dropped_targets: Unsupported,
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
