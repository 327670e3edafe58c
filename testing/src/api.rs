//! Reading a Prometheus-compatible HTTP API (a Strata node or a real Prometheus) the same
//! way, so answers can be compared.

use serde_json::Value;

use crate::http::http_client;

/// Every series (name and labels) the API at `base` holds, as sorted `k=v,...` strings.
pub async fn all_series(base: &str) -> Vec<String> {
    let url = format!("{base}/api/v1/series");
    let resp = http_client()
        .get(&url)
        .query(&[("match[]", "{__name__=~\".+\"}"), ("start", "0")])
        .send()
        .await
        .expect("series request");
    let v: Value = resp.json().await.expect("series json");
    assert_eq!(v["status"], "success", "{url}: {v}");
    let mut out: Vec<String> = v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let m = s.as_object().cloned().unwrap_or_default();
                    let mut pairs: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// `/api/v1/targets` at `base`.
pub async fn targets(base: &str) -> Value {
    let resp = http_client()
        .get(format!("{base}/api/v1/targets"))
        .send()
        .await
        .expect("targets request");
    resp.json().await.expect("targets json")
}

/// The active target whose scrape URL ends with `suffix`.
pub fn target_with_url<'a>(targets: &'a Value, suffix: &str) -> Option<&'a Value> {
    targets["data"]["activeTargets"]
        .as_array()?
        .iter()
        .find(|t| t["scrapeUrl"].as_str().is_some_and(|u| u.ends_with(suffix)))
}
