//! What the sidecar asks the Prometheus beside it over its HTTP API, and the pure checks on
//! the answers (Thanos's `cmd/thanos/sidecar.go`): `/api/v1/status/flags` must show
//! `storage.tsdb.min-block-duration` equal to `storage.tsdb.max-block-duration` (local
//! compaction off, so every block Prometheus cuts is a level-1 block the shipper may upload;
//! 2h is recommended, other equal values only warn), and `/api/v1/status/config`'s
//! `global.external_labels` are the labels the shipped blocks and the served series carry,
//! which must not be empty. Labels and label values of the recent data come from
//! `/api/v1/labels` and `/api/v1/label/<name>/values`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Result, SidecarError};
use crate::config::PromDuration;
use crate::storage::model::Matcher;

const MIN_BLOCK_FLAG: &str = "storage.tsdb.min-block-duration";
const MAX_BLOCK_FLAG: &str = "storage.tsdb.max-block-duration";
/// The block duration Thanos recommends.
pub const RECOMMENDED_BLOCK: Duration = Duration::from_secs(2 * 3600);

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

/// Just the part of Prometheus's config the sidecar needs.
#[derive(Deserialize, Default)]
struct PromConfig {
    #[serde(default)]
    global: Option<PromGlobal>,
}

#[derive(Deserialize, Default)]
struct PromGlobal {
    #[serde(default)]
    external_labels: Option<BTreeMap<String, String>>,
}

/// Checks the block durations Prometheus runs with; returns the block duration.
pub fn check_block_durations(flags: &BTreeMap<String, String>) -> Result<Duration> {
    let get = |name: &str| -> Result<Duration> {
        let raw = flags
            .get(name)
            .ok_or_else(|| SidecarError::Flags(format!("flag {name} is missing")))?;
        raw.parse::<PromDuration>()
            .map(|d| d.as_std())
            .map_err(|e| SidecarError::Flags(format!("flag {name}={raw:?}: {e}")))
    };
    let min = get(MIN_BLOCK_FLAG)?;
    let max = get(MAX_BLOCK_FLAG)?;
    if min != max {
        return Err(SidecarError::Compaction {
            min: flags.get(MIN_BLOCK_FLAG).cloned().unwrap_or_default(),
            max: flags.get(MAX_BLOCK_FLAG).cloned().unwrap_or_default(),
        });
    }
    if min != RECOMMENDED_BLOCK {
        tracing::warn!(block = ?min, "Prometheus's TSDB block duration is not 2h; only 2h is recommended");
    }
    Ok(min)
}

/// `global.external_labels` of a Prometheus config file's text.
pub fn external_labels_from_yaml(yaml: &str) -> Result<BTreeMap<String, String>> {
    let cfg: PromConfig = serde_norway::from_str(yaml)
        .map_err(|e| SidecarError::Config(format!("cannot parse Prometheus's config: {e}")))?;
    Ok(cfg
        .global
        .and_then(|g| g.external_labels)
        .unwrap_or_default())
}

/// A client of one Prometheus's HTTP API.
#[derive(Clone)]
pub struct PromApi {
    pub base: String,
    pub http: reqwest::Client,
}

impl PromApi {
    pub fn new(base: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SidecarError::Http(e.to_string()))?;
        Ok(PromApi {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| SidecarError::Http(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body: Envelope<T> = resp
            .json()
            .await
            .map_err(|e| SidecarError::Http(format!("GET {url}: {status}: {e}")))?;
        match (body.status.as_str(), body.data) {
            ("success", Some(d)) => Ok(d),
            _ => Err(SidecarError::Http(format!(
                "GET {url}: {status}: {}",
                body.error.unwrap_or_else(|| "no data".to_string())
            ))),
        }
    }

    /// Prometheus's command-line flags.
    pub async fn flags(&self) -> Result<BTreeMap<String, String>> {
        self.get("/api/v1/status/flags", &[]).await
    }

    /// Prometheus's external labels, from its loaded config.
    pub async fn external_labels(&self) -> Result<BTreeMap<String, String>> {
        let cfg: ConfigData = self.get("/api/v1/status/config", &[]).await?;
        external_labels_from_yaml(&cfg.yaml)
    }

    /// Label names (`name` `None`) or the values of label `name` in `[mint, maxt]`.
    pub async fn labels(
        &self,
        name: Option<&str>,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let mut query = vec![("start", format_ts(mint)), ("end", format_ts(maxt))];
        if !matchers.is_empty() {
            let parts: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
            query.push(("match[]", format!("{{{}}}", parts.join(","))));
        }
        let path = match name {
            None => "/api/v1/labels".to_string(),
            Some(n) => format!("/api/v1/label/{}/values", url_segment(n)),
        };
        self.get(&path, &query).await
    }
}

/// A ms timestamp as the API's seconds, clamped to what Prometheus parses.
fn format_ts(ms: i64) -> String {
    // Prometheus's API min/max times (`minTime`/`maxTime` of web/api/v1), in ms.
    const MAX: i64 = 9_223_309_901_257_973_000;
    const MIN: i64 = -MAX;
    let clamped = ms.clamp(MIN, MAX);
    format!(
        "{}.{:03}",
        clamped.div_euclid(1000),
        clamped.rem_euclid(1000)
    )
}

/// A label name as a path segment (names are `[a-zA-Z_][a-zA-Z0-9_]*`; anything else is
/// percent-encoded).
fn url_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn flags(min: &str, max: &str) -> BTreeMap<String, String> {
        [
            (MIN_BLOCK_FLAG.to_string(), min.to_string()),
            (MAX_BLOCK_FLAG.to_string(), max.to_string()),
        ]
        .into()
    }

    #[test]
    fn equal_block_durations_pass_and_unequal_are_refused_clearly() {
        assert_eq!(
            check_block_durations(&flags("2h", "2h")).unwrap(),
            RECOMMENDED_BLOCK
        );
        assert_eq!(
            check_block_durations(&flags("1m", "1m")).unwrap(),
            Duration::from_secs(60)
        );
        let err = check_block_durations(&flags("2h", "31d")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("min-block-duration"), "{text}");
        assert!(text.contains("31d"), "{text}");
        assert!(check_block_durations(&BTreeMap::new()).is_err());
    }

    #[test]
    fn external_labels_come_from_the_global_section() {
        let yaml = "global:\n  scrape_interval: 15s\n  external_labels:\n    cluster: eu1\n    replica: a\nscrape_configs: []\n";
        let l = external_labels_from_yaml(yaml).unwrap();
        assert_eq!(l.get("cluster").map(String::as_str), Some("eu1"));
        assert_eq!(l.len(), 2);
        assert!(external_labels_from_yaml("global: {}\n")
            .unwrap()
            .is_empty());
        assert!(external_labels_from_yaml(": :").is_err());
    }

    #[test]
    fn timestamps_and_names_are_formatted_for_the_api() {
        assert_eq!(format_ts(1500), "1.500");
        assert_eq!(format_ts(-1500), "-2.500");
        assert_eq!(url_segment("job"), "job");
        assert_eq!(url_segment("a.b"), "a%2Eb");
    }
}
