//! The Prometheus beside a sidecar as a query source: `select` is a remote read of
//! `<prometheus_url>/api/v1/read` asking for `STREAMED_XOR_CHUNKS` (Prometheus ≥ 2.13 answers
//! with chunks as stored), whose frames are decoded as the body arrives (`FrameDecoder`), so
//! the raw answer is never held whole; labels come from Prometheus's labels API. Matchers on
//! Prometheus's external labels are dropped before asking (its stored series do not carry them;
//! its read handler adds them to every series, as the planner expects of a source).
//!
//! `Queryable` is synchronous: calls run on the runtime handle given at construction (the
//! node's fan-out runtime) while the calling blocking-pool thread waits.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::prometheus::PromApi;
use super::Sidecar;
use crate::remote::read::{encode_request, streamed_request, FrameDecoder};
use crate::storage::model::{Matcher, QueryResult, Queryable, QueryableError, SelectHints, Series};

pub struct PrometheusQueryable {
    sidecar: Arc<Sidecar>,
    runtime: tokio::runtime::Handle,
}

impl PrometheusQueryable {
    pub fn new(sidecar: Arc<Sidecar>, runtime: tokio::runtime::Handle) -> Self {
        PrometheusQueryable { sidecar, runtime }
    }

    /// The matchers to send: those on an external label are answered by the label itself.
    fn own_matchers(&self, matchers: &[Matcher]) -> Vec<Matcher> {
        let ext = self.sidecar.external_labels();
        matchers
            .iter()
            .filter(|m| !ext.contains_key(&m.name))
            .cloned()
            .collect()
    }
}

fn storage_err(e: impl std::fmt::Display) -> QueryableError {
    QueryableError::Storage(format!("prometheus remote read: {e}"))
}

/// One streamed remote read of `[mint, maxt]`, decoded frame by frame.
pub async fn remote_read(
    api: &PromApi,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> super::Result<Vec<Series>> {
    let url = format!("{}/api/v1/read", api.base);
    let body = encode_request(&streamed_request(matchers, mint, maxt));
    let mut resp = api
        .http
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .map_err(|e| super::SidecarError::Http(format!("POST {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(super::SidecarError::Http(format!(
            "POST {url}: {status}: {}",
            text.trim()
        )));
    }
    let streamed = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-streamed-protobuf"));
    if !streamed {
        // A Prometheus older than 2.13 answers with samples; Strata needs chunks.
        return Err(super::SidecarError::Http(format!(
            "POST {url}: the answer is not streamed chunks; Prometheus 2.13 or newer is needed"
        )));
    }
    let mut decoder = FrameDecoder::default();
    while let Some(bytes) = resp
        .chunk()
        .await
        .map_err(|e| super::SidecarError::Http(format!("POST {url}: reading the body: {e}")))?
    {
        decoder.push(&bytes)?;
    }
    let mut queries = decoder.finish()?;
    let mut series = queries.remove(&0).unwrap_or_default();
    if !series.windows(2).all(|w| w[0].labels < w[1].labels) {
        // Prometheus sends each series once, sorted; merge defensively if not.
        series = crate::storage::dedup::merge_sources(vec![series]);
    }
    Ok(series)
}

impl Queryable for PrometheusQueryable {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        let mut own = self.own_matchers(matchers);
        if own.is_empty() {
            // Only external-label matchers, which the labels satisfy: every series matches.
            own.push(
                Matcher::new(crate::storage::model::MatchOp::RegexMatch, "__name__", ".+")
                    .map_err(storage_err)?,
            );
        }
        let api = self.sidecar.data.clone();
        let mut series = self
            .runtime
            .block_on(async move { remote_read(&api, &own, mint, maxt).await })
            .map_err(storage_err)?;
        if hints.labels_only {
            for s in series.iter_mut() {
                s.chunks.clear();
            }
        }
        if hints.limit > 0 {
            series.truncate(hints.limit);
        }
        Ok(series)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        let own = self.own_matchers(matchers);
        let api = self.sidecar.data.clone();
        self.runtime
            .block_on(async move { api.labels(None, &own, mint, maxt).await })
            .map_err(storage_err)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        let own = self.own_matchers(matchers);
        let api = self.sidecar.data.clone();
        let name = name.to_string();
        self.runtime
            .block_on(async move { api.labels(Some(&name), &own, mint, maxt).await })
            .map_err(storage_err)
    }
}

/// The external labels as the planner's `Labels`.
pub fn labels_of(map: &BTreeMap<String, String>) -> crate::storage::model::Labels {
    crate::storage::model::Labels::from_pairs(map.iter().map(|(k, v)| (k.clone(), v.clone())))
}
