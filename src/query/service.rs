//! Query execution for every caller: the HTTP API, and next the rule evaluator and the UI. The
//! `QueryService` owns the engine, the sources a query reads (through the cluster fan-out with
//! HA dedup), the concurrency limit and the per-query options, so every caller runs queries the
//! same way and gets the same guards:
//!
//! - at most `max_concurrent` instant/range queries evaluate at once (Prometheus's
//!   `--query.max-concurrency`); the rest wait for a slot;
//! - queries run on the blocking pool, never on an async worker;
//! - the engine refuses deep nesting and more than 11,000 points per series, and enforces the
//!   timeout (the smaller of the engine's and the request's) and the sample limits;
//! - `dedup`, `replicaLabels[]` and `partial_response` (Thanos's parameters) arrive typed in
//!   `QueryOptions`; warnings of a partial answer travel with the result.

use std::sync::Arc;
use std::time::Duration;

use super::fanout::{ClusterQueryable, FanoutOptions};
use super::sources::SourceSet;
use crate::cluster::transport::TransportClient;
pub use crate::config::SourceResolution;
use crate::promql::{Engine, PromqlError, QueryValue, Value};
use crate::storage::model::{Labels, Matcher, Queryable, QueryableError, SelectHints};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The engine refused or failed the query; its kind decides the API's error type.
    #[error(transparent)]
    Promql(#[from] PromqlError),
    /// Reading series or labels failed.
    #[error("{0}")]
    Storage(#[from] QueryableError),
    /// The service is stopping and takes no more queries.
    #[error("query service is shutting down")]
    ShuttingDown,
    /// The worker thread running the query failed (a panic).
    #[error("query worker failed: {0}")]
    Worker(String),
}

pub type Result<T> = std::result::Result<T, QueryError>;

/// Per-query options: Thanos's query parameters and the request's own timeout.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// Deduplicate HA replicas (default true).
    pub dedup: bool,
    /// Replica labels to deduplicate by; empty means the service's configured ones.
    pub replica_labels: Vec<String>,
    /// Answer with a warning when a source fails, instead of failing (default true, as
    /// Thanos's querier).
    pub partial_response: bool,
    /// A tighter timeout than the engine's (`timeout` parameter); `None` keeps the engine's.
    pub timeout: Option<Duration>,
    /// Thanos's `max_source_resolution`; `None` takes the service's configured default.
    pub max_source_resolution: Option<SourceResolution>,
    /// Who asked, for metric usage (`usage`).
    pub source: super::usage::Source,
}

/// Thanos's dynamic lookback, grown to the coarsest resolution a query may read (the
/// engine grows it further, per sample, where coarser data fills a gap).
pub use crate::promql::lookback_for;

/// A query's value and the resolutions (ms, 0 = raw) of the data that answered it.
#[derive(Debug)]
pub struct Answer {
    pub value: QueryValue,
    pub resolutions: Vec<i64>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            dedup: true,
            replica_labels: Vec::new(),
            partial_response: true,
            timeout: None,
            max_source_resolution: None,
            source: super::usage::Source::AdHoc,
        }
    }
}

/// A query's answer for the label and series APIs: the values plus partial-answer warnings.
#[derive(Debug, Default)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub warnings: Vec<String>,
}

/// One source the planner reads, as `/api/v1/stores` lists it.
#[derive(Clone, Debug)]
pub struct StoreStatus {
    pub node: String,
    /// `None` for this node's own sources.
    pub rpc_addr: Option<String>,
    /// `None` when the node did not answer (see `last_error`) or holds no source.
    pub info: Option<super::storeapi::StoreInfo>,
    pub last_check_ms: i64,
    pub last_error: Option<String>,
}

/// What a node needs to run queries.
pub struct QueryService {
    engine: Engine,
    sources: Arc<SourceSet>,
    client: Arc<TransportClient>,
    /// Replica labels deduplicated by default (`replicaLabels[]` overrides per request).
    replica_labels: Vec<String>,
    concurrency: tokio::sync::Semaphore,
    max_concurrent: usize,
    /// The node's `global.external_labels`, added by federation.
    external_labels: Labels,
    /// `query.default_max_source_resolution`, for requests without the parameter.
    default_resolution: SourceResolution,
    /// What every evaluated query read (metric usage).
    usage: Arc<super::usage::Usage>,
    /// Whether queries are recorded in `usage` at all.
    record_usage: bool,
}

impl QueryService {
    pub fn new(
        engine: Engine,
        sources: Arc<SourceSet>,
        client: Arc<TransportClient>,
        replica_labels: Vec<String>,
        max_concurrent: usize,
        external_labels: Labels,
    ) -> Self {
        QueryService {
            engine,
            sources,
            client,
            replica_labels,
            concurrency: tokio::sync::Semaphore::new(max_concurrent.max(1)),
            max_concurrent: max_concurrent.max(1),
            external_labels,
            default_resolution: SourceResolution::Auto,
            usage: Arc::new(super::usage::Usage::new(crate::time::now_ms(), None)),
            record_usage: true,
        }
    }

    /// Records metric usage into `usage` (shared with the node, which persists it), or
    /// nothing when `record` is false.
    pub fn with_usage(mut self, usage: Arc<super::usage::Usage>, record: bool) -> Self {
        self.usage = usage;
        self.record_usage = record;
        self
    }

    /// The metric usage this node recorded.
    pub fn usage(&self) -> &Arc<super::usage::Usage> {
        &self.usage
    }

    /// Queries running or waiting for a slot now.
    pub fn queries_in_flight(&self) -> usize {
        self.max_concurrent
            .saturating_sub(self.concurrency.available_permits())
    }

    /// Sets the `max_source_resolution` of requests that do not give one.
    pub fn with_default_resolution(mut self, r: SourceResolution) -> Self {
        self.default_resolution = r;
        self
    }

    /// The resolution in ms a query with these options reads (`step_ms` `None` = instant).
    pub fn resolution_for(&self, opts: &QueryOptions, step_ms: Option<i64>) -> i64 {
        opts.max_source_resolution
            .unwrap_or(self.default_resolution)
            .resolve(step_ms)
    }

    /// The node's `global.external_labels`.
    pub fn external_labels(&self) -> &Labels {
        &self.external_labels
    }

    /// The cluster-wide queryable for one query with these options.
    pub fn queryable(&self, opts: &QueryOptions) -> Arc<ClusterQueryable> {
        self.queryable_at(opts, self.resolution_for(opts, None))
    }

    /// The cluster-wide queryable reading data up to `resolution_ms`.
    fn queryable_at(&self, opts: &QueryOptions, resolution_ms: i64) -> Arc<ClusterQueryable> {
        let replica_labels = if opts.replica_labels.is_empty() {
            self.replica_labels.clone()
        } else {
            opts.replica_labels.clone()
        };
        let fanout = FanoutOptions {
            dedup: opts.dedup,
            replica_labels,
            partial_response: opts.partial_response,
            timeout: self.engine.opts.timeout,
            max_source_resolution_ms: resolution_ms,
        };
        Arc::new(ClusterQueryable::new(
            self.sources.local(),
            self.sources.remote(),
            self.client.clone(),
            fanout,
            self.sources.runtime.clone(),
        ))
    }

    fn engine_for(&self, opts: &QueryOptions) -> Engine {
        self.engine_at(opts, 0)
    }

    /// The engine for a query reading data up to `resolution_ms` (its lookback grows).
    fn engine_at(&self, opts: &QueryOptions, resolution_ms: i64) -> Engine {
        let mut engine = self.engine.clone();
        engine.opts.lookback_delta = lookback_for(engine.opts.lookback_delta, resolution_ms);
        if self.record_usage {
            let (usage, source) = (self.usage.clone(), opts.source.clone());
            engine.observe(Arc::new(move |expr| {
                usage.record(expr, &source, crate::time::now_ms())
            }));
        }
        if let Some(t) = opts.timeout.filter(|t| !t.is_zero()) {
            engine.opts.timeout = engine.opts.timeout.min(t);
        }
        engine
    }

    /// Evaluates `query` at `t_ms` over the cluster.
    pub async fn instant(&self, query: &str, t_ms: i64, opts: &QueryOptions) -> Result<QueryValue> {
        Ok(self.instant_answer(query, t_ms, opts).await?.value)
    }

    /// `instant`, with the resolutions that answered.
    pub async fn instant_answer(
        &self,
        query: &str,
        t_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Answer> {
        let res = self.resolution_for(opts, None);
        let engine = self.engine_at(opts, res);
        let q = self.queryable_at(opts, res);
        let query = query.to_string();
        let mut v = self
            .run_query({
                let q = q.clone();
                move || engine.instant(q.as_ref(), &query, t_ms)
            })
            .await?;
        v.warnings.extend(q.take_warnings());
        Ok(Answer {
            value: v,
            resolutions: q.resolutions(),
        })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` over the cluster.
    pub async fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<QueryValue> {
        Ok(self
            .range_answer(query, start_ms, end_ms, step_ms, opts)
            .await?
            .value)
    }

    /// `range`, with the resolutions that answered.
    pub async fn range_answer(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Answer> {
        let res = self.resolution_for(opts, Some(step_ms));
        let engine = self.engine_at(opts, res);
        let q = self.queryable_at(opts, res);
        let query = query.to_string();
        let mut v = self
            .run_query({
                let q = q.clone();
                move || engine.range(q.as_ref(), &query, start_ms, end_ms, step_ms)
            })
            .await?;
        v.warnings.extend(q.take_warnings());
        Ok(Answer {
            value: v,
            resolutions: q.resolutions(),
        })
    }

    /// Runs `f` on the blocking pool once a concurrency slot is free.
    async fn run_query<F>(&self, f: F) -> Result<QueryValue>
    where
        F: FnOnce() -> std::result::Result<QueryValue, PromqlError> + Send + 'static,
    {
        let _permit = self
            .concurrency
            .acquire()
            .await
            .map_err(|_| QueryError::ShuttingDown)?;
        blocking(move || f().map_err(QueryError::from)).await
    }

    /// Hands a finished answer to the engine's background freer (a large result takes a
    /// while to free; the answer need not wait for that).
    pub fn free_later(&self, v: QueryValue) {
        self.engine.free(Box::new(v));
    }

    /// Runs `f` over the cluster queryable for `opts` on the blocking pool; the answer carries
    /// the warnings of a partial response.
    async fn listing<T, F>(&self, opts: &QueryOptions, f: F) -> Result<Listing<T>>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Queryable) -> Result<Vec<T>> + Send + 'static,
    {
        let q = self.queryable(opts);
        let partial = q.clone();
        let items = blocking(move || f(q.as_ref())).await?;
        Ok(Listing {
            items,
            warnings: partial.take_warnings(),
        })
    }

    /// The label sets of the series matching any of `sets` in the time range, sorted, unique.
    pub async fn series(
        &self,
        sets: Vec<Vec<Matcher>>,
        start_ms: i64,
        end_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Listing<Labels>> {
        self.listing(opts, move |q| {
            let hints = SelectHints {
                labels_only: true,
                ..Default::default()
            };
            let mut all: Vec<Labels> = Vec::new();
            for set in &sets {
                all.extend(
                    q.select(set, start_ms, end_ms, &hints)?
                        .into_iter()
                        .map(|s| s.labels),
                );
            }
            all.sort();
            all.dedup();
            Ok(all)
        })
        .await
    }

    /// What every source the planner fans out to holds, this node's own and each live
    /// peer's (asked with the StoreAPI `info` method, in parallel); a peer that does not
    /// answer is listed with the error.
    pub async fn stores(&self) -> Vec<StoreStatus> {
        let now = crate::time::now_ms();
        let mut out: Vec<StoreStatus> = self
            .sources
            .info()
            .into_iter()
            .map(|info| StoreStatus {
                node: info.node.clone(),
                rpc_addr: None,
                info: Some(info),
                last_check_ms: now,
                last_error: None,
            })
            .collect();
        let remote = self.sources.remote();
        let asks = remote.iter().map(|r| {
            let req = crate::cluster::transport::Request::new(
                super::storeapi::STORE_TARGET,
                super::storeapi::METHOD_INFO,
                Vec::new(),
            );
            self.client.call(r.rpc_addr, req)
        });
        let answers = futures::future::join_all(asks).await;
        for (r, answer) in remote.iter().zip(answers) {
            let decoded = answer.map_err(|e| e.to_string()).and_then(|body| {
                super::storeapi::decode::<Vec<super::storeapi::StoreInfo>>(&body)
                    .map_err(|e| e.to_string())
            });
            let status = |info, last_error| StoreStatus {
                node: r.node.clone(),
                rpc_addr: Some(r.rpc_addr.to_string()),
                info,
                last_check_ms: now,
                last_error,
            };
            match decoded {
                Ok(list) if list.is_empty() => out.push(status(None, None)),
                Ok(list) => out.extend(list.into_iter().map(|i| status(Some(i), None))),
                Err(e) => out.push(status(None, Some(e))),
            }
        }
        out
    }

    /// Label names of the series matching any of `sets` (all series without sets).
    pub async fn label_names(
        &self,
        sets: Vec<Vec<Matcher>>,
        start_ms: i64,
        end_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Listing<String>> {
        self.listing(opts, move |q| {
            merged_strings(q, &sets, |q, m| q.label_names(m, start_ms, end_ms))
        })
        .await
    }

    /// Values of label `name` in the series matching any of `sets` (all series without sets).
    pub async fn label_values(
        &self,
        name: String,
        sets: Vec<Vec<Matcher>>,
        start_ms: i64,
        end_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Listing<String>> {
        self.listing(opts, move |q| {
            merged_strings(q, &sets, |q, m| q.label_values(&name, m, start_ms, end_ms))
        })
        .await
    }

    /// The latest sample at `t_ms` of every series matching any of `sets` (federation), as
    /// (labels, value, timestamp).
    pub async fn latest_samples(
        &self,
        sets: Vec<Vec<Matcher>>,
        t_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Vec<(Labels, f64, i64)>> {
        let engine = self.engine_for(opts);
        let q = self.queryable(opts);
        blocking(move || {
            let mut samples: Vec<(Labels, f64, i64)> = Vec::new();
            for set in &sets {
                let selector = selector_text(set);
                let v = engine.instant(q.as_ref(), &selector, t_ms)?;
                if let Value::Vector(vs) = v.value {
                    samples.extend(vs.into_iter().map(|s| (s.labels, s.v, s.t)));
                }
            }
            Ok(samples)
        })
        .await
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| QueryError::Worker(e.to_string()))?
}

/// Runs a per-matcher-set lookup over all sets (or once with none) and merges the answers.
fn merged_strings(
    q: &dyn Queryable,
    sets: &[Vec<Matcher>],
    f: impl Fn(&dyn Queryable, &[Matcher]) -> std::result::Result<Vec<String>, QueryableError>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if sets.is_empty() {
        out = f(q, &[])?;
    }
    for set in sets {
        out.extend(f(q, set)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A selector that selects exactly the series a matcher set matches.
fn selector_text(set: &[Matcher]) -> String {
    let parts: Vec<String> = set.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::model::MatchOp;

    #[test]
    fn auto_resolution_is_step_over_five_for_ranges_and_raw_for_instants() {
        assert_eq!(SourceResolution::Auto.resolve(Some(1_500_000)), 300_000);
        assert_eq!(SourceResolution::Auto.resolve(Some(60_000)), 12_000);
        assert_eq!(SourceResolution::Auto.resolve(None), 0);
        assert_eq!(SourceResolution::Max(3_600_000).resolve(None), 3_600_000);
        assert_eq!(SourceResolution::Max(0).resolve(Some(1 << 40)), 0);
    }

    #[test]
    fn lookback_grows_with_the_resolution_read() {
        let five = Duration::from_secs(300);
        assert_eq!(lookback_for(five, 0), five);
        assert_eq!(lookback_for(five, 300_000), five);
        assert_eq!(lookback_for(five, 3_600_000), Duration::from_secs(3600));
        let one = Duration::from_secs(60);
        assert_eq!(lookback_for(one, 0), one);
        assert_eq!(lookback_for(one, 300_000), five);
        assert_eq!(lookback_for(one, 3_600_000), Duration::from_secs(3600));
        let two_h = Duration::from_secs(7200);
        assert_eq!(lookback_for(two_h, 3_600_000), two_h);
    }

    #[test]
    fn selector_text_selects_the_matcher_set() {
        let set = vec![
            Matcher::new(MatchOp::Equal, "__name__", "up").unwrap(),
            Matcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap(),
        ];
        let text = selector_text(&set);
        let parsed = crate::promql::parse_series_selector(&text).unwrap();
        assert_eq!(parsed, vec![set]);
    }
}
