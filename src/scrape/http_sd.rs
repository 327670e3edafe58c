//! HTTP service discovery (`http_sd_configs`) as Prometheus 2.42 does it: every
//! `refresh_interval` a GET of the URL (with the config's auth and TLS, and the
//! `X-Prometheus-Refresh-Interval-Seconds` header), which must answer 200 with an
//! `application/json` body: a list of `{targets, labels}` groups, the format file discovery
//! reads. Group `i` gets the source `<url>:<i>` and the label `__meta_url`. A failed refresh
//! (status, content type, body) keeps the previous groups, as Prometheus does, and is
//! logged with its reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file_sd::{groups_from_raw, RawGroup};
use super::target::TargetGroup;
use crate::config::HttpSdConfig;

/// The label naming the URL the targets came from.
pub const URL_LABEL: &str = "__meta_url";

#[derive(Debug, thiserror::Error)]
pub enum HttpSdError {
    #[error("{0}")]
    Client(String),
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    #[error("{url}: invalid target groups: {reason}")]
    Body { url: String, reason: String },
}

/// Bodies above this are refused (Prometheus reads at most what fits its memory; a
/// discovery answer of tens of megabytes is a mistake).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The client of one `http_sd_config`.
pub fn client(
    cfg: &HttpSdConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<reqwest::Client, HttpSdError> {
    crate::httpclient::build_client(
        &cfg.tls_config,
        cfg.follow_redirects,
        concat!("Strata/", env!("CARGO_PKG_VERSION")),
        resolve,
    )
    .map_err(HttpSdError::Client)
}

/// One refresh.
pub async fn refresh(
    client: &reqwest::Client,
    cfg: &HttpSdConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Vec<TargetGroup>, HttpSdError> {
    let refresh: Duration = cfg.refresh_interval.as_std();
    let req = client.get(&cfg.url).header(
        "X-Prometheus-Refresh-Interval-Seconds",
        refresh.as_secs_f64().to_string(),
    );
    let req = crate::httpclient::apply_auth(req, &cfg.http_client().auth_header(), resolve)
        .map_err(|e| HttpSdError::Client(e.to_string()))?;
    let request_err = |e: reqwest::Error| HttpSdError::Request {
        url: cfg.url.clone(),
        reason: crate::httpclient::error_chain(&e),
    };
    let resp = req.send().await.map_err(request_err)?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(HttpSdError::Status(resp.status().to_string()));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !is_json(&content_type) {
        return Err(HttpSdError::ContentType(content_type));
    }
    let body = resp.bytes().await.map_err(request_err)?;
    if body.len() > MAX_BODY {
        return Err(HttpSdError::Body {
            url: cfg.url.clone(),
            reason: format!("the body is larger than {MAX_BODY} bytes"),
        });
    }
    parse(&cfg.url, &body)
}

/// Prometheus's `^application/json(;.*)?$`.
fn is_json(content_type: &str) -> bool {
    content_type == "application/json" || content_type.starts_with("application/json;")
}

/// The groups of one answer.
pub fn parse(url: &str, body: &[u8]) -> Result<Vec<TargetGroup>, HttpSdError> {
    let body_err = |reason: String| HttpSdError::Body {
        url: url.to_string(),
        reason,
    };
    let raw: Vec<Option<RawGroup>> =
        serde_json::from_slice(body).map_err(|e| body_err(e.to_string()))?;
    let mut groups = Vec::with_capacity(raw.len());
    for g in raw {
        groups.push(g.ok_or_else(|| body_err("nil target group item found".to_string()))?);
    }
    groups_from_raw(groups, url, URL_LABEL)
        .map_err(|(i, reason)| body_err(format!("group {i}: {reason}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn answers_become_groups_with_the_url() {
        let g = parse(
            "http://sd/x",
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": []}]"#,
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "http://sd/x:0");
        assert_eq!(g[0].labels[URL_LABEL], "http://sd/x");
        assert_eq!(g[0].labels["env"], "prod");
        assert_eq!(g[0].targets[1]["__address__"], "b:2");
        assert_eq!(g[1].source, "http://sd/x:1");
        assert!(parse("u", b"[null]")
            .unwrap_err()
            .to_string()
            .contains("nil target group"));
        assert!(parse("u", br#"[{"labels": {"1x": "a"}}]"#).is_err());
        assert!(parse("u", b"{}").is_err());
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
    }
}
