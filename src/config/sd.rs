//! `dns_sd_configs` and `http_sd_configs` in Prometheus 2.42 syntax and with its checks:
//! DNS names looked up as SRV (default), A, AAAA or MX records every `refresh_interval`
//! (default 30s), a port required for every type but SRV; and an HTTP endpoint returning
//! target groups as JSON every `refresh_interval` (default 60s), reached with the usual HTTP
//! client settings.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::http_client::{
    default_true, is_true, Authorization, BasicAuth, HttpClientView, Secret, TlsConfig,
};
use super::units::PromDuration;

/// The record type of a `dns_sd_config`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    #[default]
    Srv,
    A,
    Aaaa,
    Mx,
}

impl<'de> Deserialize<'de> for DnsRecordType {
    /// Case-insensitive, like Prometheus (`strings.ToUpper`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_uppercase().as_str() {
            "SRV" => Ok(DnsRecordType::Srv),
            "A" => Ok(DnsRecordType::A),
            "AAAA" => Ok(DnsRecordType::Aaaa),
            "MX" => Ok(DnsRecordType::Mx),
            _ => Err(serde::de::Error::custom(format!(
                "invalid DNS-SD records type {s}"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawDnsSdConfig")]
pub struct DnsSdConfig {
    pub names: Vec<String>,
    pub refresh_interval: PromDuration,
    #[serde(rename = "type")]
    pub record_type: DnsRecordType,
    pub port: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsSdConfig {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default = "default_dns_refresh")]
    refresh_interval: PromDuration,
    #[serde(default, rename = "type")]
    record_type: DnsRecordType,
    #[serde(default)]
    port: u16,
}

fn default_dns_refresh() -> PromDuration {
    PromDuration::from_secs(30)
}

impl TryFrom<RawDnsSdConfig> for DnsSdConfig {
    type Error = String;

    /// Prometheus's checks, with its words.
    fn try_from(r: RawDnsSdConfig) -> Result<Self, String> {
        if r.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".to_string());
        }
        if r.record_type != DnsRecordType::Srv && r.port == 0 {
            return Err(
                "a port is required in DNS-SD configs for all record types except SRV".to_string(),
            );
        }
        Ok(DnsSdConfig {
            names: r.names,
            refresh_interval: r.refresh_interval,
            record_type: r.record_type,
            port: r.port,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    #[serde(default = "default_http_refresh")]
    pub refresh_interval: PromDuration,
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
}

fn default_http_refresh() -> PromDuration {
    PromDuration::from_secs(60)
}

/// Prometheus's check: an http or https URL with a host.
fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let parsed = reqwest::Url::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(serde::de::Error::custom(
            "URL scheme must be 'http' or 'https'",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(serde::de::Error::custom("host is missing in URL"));
    }
    Ok(s)
}

impl HttpSdConfig {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn dns_configs_are_checked_as_prometheus_checks_them() {
        let c: DnsSdConfig = serde_norway::from_str("names: [_x._tcp.example.]").unwrap();
        assert_eq!(c.record_type, DnsRecordType::Srv);
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        let c: DnsSdConfig =
            serde_norway::from_str("names: [a.example]\ntype: a\nport: 9100").unwrap();
        assert_eq!(c.record_type, DnsRecordType::A);
        let e = serde_norway::from_str::<DnsSdConfig>("names: [a]\ntype: A").unwrap_err();
        assert!(e.to_string().contains("a port is required"), "{e}");
        let e = serde_norway::from_str::<DnsSdConfig>("names: []").unwrap_err();
        assert!(
            e.to_string().contains("at least one SRV record name"),
            "{e}"
        );
        let e = serde_norway::from_str::<DnsSdConfig>("names: [a]\ntype: TXT").unwrap_err();
        assert!(
            e.to_string().contains("invalid DNS-SD records type TXT"),
            "{e}"
        );
    }

    #[test]
    fn http_configs_need_an_http_url() {
        let c: HttpSdConfig = serde_norway::from_str("url: http://h:1/sd").unwrap();
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        let e = serde_norway::from_str::<HttpSdConfig>("url: ftp://h/sd").unwrap_err();
        assert!(
            e.to_string()
                .contains("URL scheme must be 'http' or 'https'"),
            "{e}"
        );
        assert!(serde_norway::from_str::<HttpSdConfig>("{}").is_err());
    }
}
