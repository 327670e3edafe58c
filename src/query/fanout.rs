//! The QueryPlanner's `Queryable` over the cluster: one `select` asks every source that may hold
//! matching data — this node's own TSDB when it runs a scraper_shipper, and every live peer
//! running a scraper_shipper or store_shard, over the StoreAPI — in parallel, merges series
//! with identical labels, and deduplicates HA replicas by the replica labels (the gap-fill rule
//! of `storage::dedup`, counters adjusted for rate/increase/irate/resets). With `partial_response` a
//! failed or slow source becomes a warning; without, the query fails. Every select carries the
//! request's `max_source_resolution` (capped at half the range for rate-like functions,
//! `effective_resolution`) to the stores, and the resolutions that answered are collected
//! for the `X-Strata-Resolutions` header; downsampled chunks pass through undecoded.
//!
//! `Queryable` is synchronous (the engine runs on the blocking pool), so remote calls run on a
//! small dedicated runtime (`FanoutRuntime`) that the node owns and that stops with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;

use super::storeapi::{
    self, label_series, LabelsRequest, SeriesFrame, SeriesRequest, METHOD_LABEL_NAMES,
    METHOD_LABEL_VALUES, METHOD_SERIES, STORE_TARGET,
};
use crate::cluster::transport::{Request, TransportClient};
use crate::storage::db::merge_strings;
use crate::storage::dedup::{dedup_replicas, merge_sources, normalize_chunks};
use crate::storage::model::{
    Labels, Matcher, QueryResult, Queryable, QueryableError, SelectHints, Series,
};

/// Functions whose input counters are adjusted across replica switches.
pub const COUNTER_FUNCS: [&str; 4] = ["rate", "increase", "irate", "resets"];

/// Per-request behaviour (API parameters `dedup`, `replicaLabels[]`, `partial_response`).
#[derive(Clone, Debug)]
pub struct FanoutOptions {
    pub dedup: bool,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub timeout: Duration,
    /// The request's `max_source_resolution` in ms (0 = raw), resolved (`auto` already
    /// turned into step/5 or the default).
    pub max_source_resolution_ms: i64,
}

/// Functions whose resolution is capped at half their range (Thanos PR #7012): finer data
/// answers them better wherever it exists, and the bucket store's coarser gap fill still
/// answers where only downsampled data is left.
pub const RANGE_CAPPED_FUNCS: [&str; 9] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "double_exponential_smoothing",
];

/// The resolution a select asks the stores for: the hint's, else the request's, capped at
/// half the range for `RANGE_CAPPED_FUNCS`.
pub fn effective_resolution(hints: &SelectHints, request_ms: i64) -> i64 {
    let max = hints.max_resolution_ms.unwrap_or(request_ms).max(0);
    let capped = hints
        .func
        .as_deref()
        .is_some_and(|f| RANGE_CAPPED_FUNCS.contains(&f));
    if capped && hints.range_ms > 0 {
        return max.min(hints.range_ms / 2);
    }
    max
}

/// A source on this node: queried directly, labelled like a remote one would label it.
#[derive(Clone)]
pub struct LocalSource {
    pub name: String,
    pub queryable: Arc<dyn Queryable>,
    pub external_labels: Labels,
}

#[derive(Clone, Debug)]
pub struct RemoteSource {
    pub node: String,
    pub rpc_addr: SocketAddr,
}

/// The runtime remote StoreAPI calls and bucket reads run on while a blocking-pool thread waits
/// for them. One per node, owned through the node's query sources: when the last holder drops
/// it, its threads stop (`shutdown_background`, because a runtime may not block while being
/// dropped inside the actix System).
pub struct FanoutRuntime(Option<tokio::runtime::Runtime>);

impl FanoutRuntime {
    /// Two worker threads: the calls only wait on the network and the bucket.
    pub fn start() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-fanout")
            .enable_all()
            .build()?;
        Ok(FanoutRuntime(Some(rt)))
    }

    /// Runs `f` to completion on this runtime, blocking the calling (non-async) thread.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> QueryResult<F::Output> {
        Ok(self.runtime()?.handle().block_on(f))
    }

    /// A handle to spawn on this runtime (`None` once it has stopped).
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }

    fn runtime(&self) -> QueryResult<&tokio::runtime::Runtime> {
        self.0
            .as_ref()
            .ok_or_else(|| QueryableError::Storage("the fan-out runtime has stopped".into()))
    }
}

impl Drop for FanoutRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub struct ClusterQueryable {
    pub local: Vec<LocalSource>,
    pub remote: Vec<RemoteSource>,
    pub client: Arc<TransportClient>,
    pub opts: FanoutOptions,
    runtime: Arc<FanoutRuntime>,
    warnings: Mutex<Vec<String>>,
    /// Resolutions of the data that answered (0 = raw), for the `X-Strata-Resolutions` header.
    resolutions: Mutex<std::collections::BTreeSet<i64>>,
}

impl ClusterQueryable {
    pub fn new(
        local: Vec<LocalSource>,
        remote: Vec<RemoteSource>,
        client: Arc<TransportClient>,
        opts: FanoutOptions,
        runtime: Arc<FanoutRuntime>,
    ) -> Self {
        ClusterQueryable {
            local,
            remote,
            client,
            opts,
            runtime,
            warnings: Mutex::new(Vec::new()),
            resolutions: Mutex::new(Default::default()),
        }
    }

    /// Resolutions (ms, 0 = raw) of the data that answered the selects so far, ascending.
    pub fn resolutions(&self) -> Vec<i64> {
        self.resolutions.lock().iter().copied().collect()
    }

    /// Warnings collected so far (failed sources under partial response).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock())
    }

    /// Sources answered but skipped data (e.g. a corrupt block): a warning with partial
    /// response, an error without, as Thanos's querier treats store warnings.
    fn incomplete(&self, warnings: Vec<String>) -> QueryResult<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        if !self.opts.partial_response {
            return Err(QueryableError::Storage(warnings.join("; ")));
        }
        self.warnings.lock().extend(warnings);
        Ok(())
    }

    /// Runs `remote_call` against every remote source in parallel while `local_call` runs on
    /// each local source in this thread; returns every successful part.
    fn gather<T, L, R, F>(&self, what: &str, local_call: L, remote_call: R) -> QueryResult<Vec<T>>
    where
        T: Send + 'static,
        L: Fn(&LocalSource) -> QueryResult<T>,
        R: Fn(Arc<TransportClient>, RemoteSource) -> F,
        F: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        let rt = self.runtime.runtime()?;
        let timeout = self.opts.timeout;
        let handles: Vec<(String, tokio::task::JoinHandle<Result<T, String>>)> = self
            .remote
            .iter()
            .map(|r| {
                let fut = remote_call(self.client.clone(), r.clone());
                let handle = rt.spawn(async move {
                    match tokio::time::timeout(timeout, fut).await {
                        Ok(res) => res,
                        Err(_) => Err(format!("no answer within {timeout:?}")),
                    }
                });
                (r.node.clone(), handle)
            })
            .collect();
        let mut parts = Vec::new();
        let mut failures = Vec::new();
        for l in &self.local {
            match local_call(l) {
                Ok(p) => parts.push(p),
                Err(e) => failures.push(format!("{what} from {}: {e}", l.name)),
            }
        }
        for (node, h) in handles {
            match rt.handle().block_on(h) {
                Ok(Ok(p)) => parts.push(p),
                Ok(Err(e)) => failures.push(format!("{what} from node {node}: {e}")),
                Err(e) => failures.push(format!("{what} from node {node}: task failed: {e}")),
            }
        }
        if !failures.is_empty() {
            if !self.opts.partial_response {
                return Err(QueryableError::Storage(failures.join("; ")));
            }
            self.warnings.lock().extend(failures);
        }
        Ok(parts)
    }
}

/// A remote source's series, warnings and the resolutions of its data.
type RemoteAnswer = (Vec<Series>, Vec<String>, Vec<i64>);

/// One source's answer to a select: local series still lack the source's external labels
/// (remote ones carry them already, so theirs are empty here).
#[derive(Default)]
struct Part {
    series: Vec<Series>,
    warnings: Vec<String>,
    external: Labels,
    resolutions: Vec<i64>,
}

/// The labels a series has after being labelled with `external` and losing the replica
/// labels, or `None` when that is its own label set (the usual case, so nothing is copied).
fn dedup_key(labels: &Labels, external: &Labels, replica: &[String]) -> Option<Labels> {
    let is_replica = |name: &str| replica.iter().any(|r| r == name);
    let has_replica = labels.iter().any(|l| is_replica(&l.name));
    let added: Vec<_> = external
        .iter()
        .filter(|l| !is_replica(&l.name) && labels.get(&l.name).is_none())
        .cloned()
        .collect();
    if !has_replica && added.is_empty() {
        return None;
    }
    let mut pairs: Vec<_> = labels
        .iter()
        .filter(|l| !is_replica(&l.name))
        .cloned()
        .collect();
    pairs.extend(added);
    Some(Labels::new(pairs))
}

/// Deduplication when it has nothing to merge: if no two series of all parts share their
/// labels once labelled and stripped of the replica labels, every dedup group holds one
/// replica, and the answer is each series under those labels with its chunks untouched
/// (exactly what `label_series`, `merge_sources` and `dedup_replicas` would give, without
/// rebuilding and re-sorting every label set twice). Otherwise the parts come back unchanged.
#[allow(clippy::type_complexity)]
fn dedup_distinct(
    parts: Vec<(Vec<Series>, Labels)>,
    replica: &[String],
) -> Result<Vec<Series>, Vec<(Vec<Series>, Labels)>> {
    let mut keys: Vec<Vec<Option<Labels>>> = parts
        .iter()
        .map(|(series, ext)| {
            series
                .iter()
                .map(|s| dedup_key(&s.labels, ext, replica))
                .collect()
        })
        .collect();
    // One source whose series keep their labels (no replica label, no external label to
    // add): its answer is sorted and unique already, as every source's is.
    if parts.len() == 1 && keys.iter().flatten().all(Option::is_none) {
        let mut out = parts.into_iter().next().map(|(s, _)| s).unwrap_or_default();
        for s in out.iter_mut() {
            normalize_chunks(&mut s.chunks);
        }
        return Ok(out);
    }
    let mut order: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, (series, _))| (0..series.len()).map(move |i| (p, i)))
        .collect();
    {
        let key = |&(p, i): &(usize, usize)| -> Option<&Labels> {
            keys.get(p)?
                .get(i)?
                .as_ref()
                .or_else(|| parts.get(p).and_then(|(s, _)| s.get(i)).map(|s| &s.labels))
        };
        order.sort_by(|a, b| key(a).cmp(&key(b)));
        if order.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
            return Err(parts);
        }
    }
    let mut slots: Vec<Vec<Option<Series>>> = parts
        .into_iter()
        .map(|(series, _)| series.into_iter().map(Some).collect())
        .collect();
    let mut out = Vec::with_capacity(order.len());
    for (p, i) in order {
        let Some(mut s) = slots
            .get_mut(p)
            .and_then(|v| v.get_mut(i))
            .and_then(Option::take)
        else {
            continue;
        };
        if let Some(k) = keys
            .get_mut(p)
            .and_then(|v| v.get_mut(i))
            .and_then(Option::take)
        {
            s.labels = k;
        }
        normalize_chunks(&mut s.chunks);
        out.push(s);
    }
    Ok(out)
}

async fn remote_series(
    client: Arc<TransportClient>,
    src: RemoteSource,
    body: Vec<u8>,
) -> Result<RemoteAnswer, String> {
    let mut stream = client
        .call_stream(
            src.rpc_addr,
            Request::new(STORE_TARGET, METHOD_SERIES, body),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut resolutions = Vec::new();
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let f: SeriesFrame = storeapi::decode(&frame).map_err(|e| e.to_string())?;
        out.extend(
            f.series
                .into_iter()
                .map(|(labels, chunks)| Series { labels, chunks }),
        );
        warnings.extend(
            f.warnings
                .into_iter()
                .map(|w| format!("node {}: {w}", src.node)),
        );
        resolutions.extend(f.resolutions);
    }
    Ok((out, warnings, resolutions))
}

async fn remote_strings(
    client: Arc<TransportClient>,
    src: RemoteSource,
    method: &'static str,
    body: Vec<u8>,
) -> Result<Vec<String>, String> {
    let bytes = client
        .call(src.rpc_addr, Request::new(STORE_TARGET, method, body))
        .await
        .map_err(|e| e.to_string())?;
    storeapi::decode(&bytes).map_err(|e| e.to_string())
}

impl Queryable for ClusterQueryable {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        let max_resolution_ms = effective_resolution(hints, self.opts.max_source_resolution_ms);
        let local_hints = SelectHints {
            max_resolution_ms: Some(max_resolution_ms),
            ..hints.clone()
        };
        let hints = &local_hints;
        let req = SeriesRequest {
            min_time: mint,
            max_time: maxt,
            matchers: storeapi::to_wire(matchers),
            labels_only: hints.labels_only,
            limit: hints.limit,
            max_resolution_ms,
        };
        let body = storeapi::encode(&req).map_err(|e| QueryableError::Storage(e.to_string()))?;
        // Local series stay without their external labels for now: when deduplication drops
        // the replica labels again and no two series collide, they are never needed.
        let answers = self.gather(
            "series",
            |l| {
                if !storeapi::store_matches(&l.external_labels, matchers) {
                    return Ok(Part::default());
                }
                let series = l.queryable.select(matchers, mint, maxt, hints)?;
                let warnings = l
                    .queryable
                    .take_warnings()
                    .into_iter()
                    .map(|w| format!("{}: {w}", l.name))
                    .collect();
                let mut resolutions = l.queryable.take_resolutions();
                // A source of raw data reports nothing: its series are raw.
                if resolutions.is_empty() && !series.is_empty() {
                    resolutions.push(0);
                }
                Ok(Part {
                    series,
                    warnings,
                    external: l.external_labels.clone(),
                    resolutions,
                })
            },
            |client, src| {
                let answer = remote_series(client, src, body.clone());
                async move {
                    let (series, warnings, resolutions) = answer.await?;
                    Ok(Part {
                        series,
                        warnings,
                        external: Labels::empty(),
                        resolutions,
                    })
                }
            },
        )?;
        let mut parts = Vec::with_capacity(answers.len());
        let mut skipped = Vec::new();
        for p in answers {
            if !hints.labels_only {
                self.resolutions.lock().extend(p.resolutions);
            }
            parts.push((p.series, p.external));
            skipped.extend(p.warnings);
        }
        self.incomplete(skipped)?;
        let dedup = self.opts.dedup && !self.opts.replica_labels.is_empty();
        if dedup {
            match dedup_distinct(parts, &self.opts.replica_labels) {
                Ok(mut out) => {
                    if hints.limit > 0 {
                        out.truncate(hints.limit);
                    }
                    return Ok(out);
                }
                Err(back) => parts = back,
            }
        }
        let labelled = parts
            .into_iter()
            .map(|(series, external)| label_series(series, &external))
            .collect();
        let merged = merge_sources(labelled);
        if !dedup {
            return Ok(merged);
        }
        let counter = hints
            .func
            .as_deref()
            .is_some_and(|f| COUNTER_FUNCS.contains(&f));
        let mut out = dedup_replicas(merged, &self.opts.replica_labels, counter)
            .map_err(|e| QueryableError::Storage(e.to_string()))?;
        if hints.limit > 0 {
            out.truncate(hints.limit);
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        let req = LabelsRequest {
            name: None,
            matchers: storeapi::to_wire(matchers),
            min_time: mint,
            max_time: maxt,
        };
        let body = storeapi::encode(&req).map_err(|e| QueryableError::Storage(e.to_string()))?;
        let parts = self.gather(
            "label names",
            |l| {
                let mut names = l.queryable.label_names(matchers, mint, maxt)?;
                names.extend(l.external_labels.iter().map(|x| x.name.to_string()));
                Ok(names)
            },
            |client, src| remote_strings(client, src, METHOD_LABEL_NAMES, body.clone()),
        )?;
        let mut names = merge_strings(parts);
        if self.opts.dedup {
            names.retain(|n| !self.opts.replica_labels.contains(n));
        }
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        if self.opts.dedup && self.opts.replica_labels.iter().any(|r| r == name) {
            return Ok(Vec::new());
        }
        let req = LabelsRequest {
            name: Some(name.to_string()),
            matchers: storeapi::to_wire(matchers),
            min_time: mint,
            max_time: maxt,
        };
        let body = storeapi::encode(&req).map_err(|e| QueryableError::Storage(e.to_string()))?;
        let parts = self.gather(
            "label values",
            |l| local_label_values(l, name, matchers, mint, maxt),
            |client, src| remote_strings(client, src, METHOD_LABEL_VALUES, body.clone()),
        )?;
        Ok(merge_strings(parts))
    }
}

/// Label values of one source, external labels included where its series lack the label.
pub fn local_label_values(
    l: &LocalSource,
    name: &str,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> QueryResult<Vec<String>> {
    let mut values = l.queryable.label_values(name, matchers, mint, maxt)?;
    if let Some(v) = l.external_labels.get(name) {
        // Series that lack the label get the external one; an empty selector means all series.
        let hints = SelectHints {
            labels_only: true,
            ..SelectHints::default()
        };
        let any_missing = matchers.is_empty()
            || l.queryable
                .select(matchers, mint, maxt, &hints)?
                .iter()
                .any(|s| s.labels.get(name).is_none());
        if any_missing {
            values.push(v.to_string());
        }
    }
    values.sort();
    values.dedup();
    Ok(values)
}
