//! Which sources a query can read on this node and in the cluster: the local TSDB while this
//! node runs a scraper_shipper (labelled with its shipping external labels), and the live peers
//! that run a scraper_shipper or store_shard. Also the server half of the StoreAPI, answering
//! peers from the local sources.

use std::sync::Arc;

use futures::stream;

use super::fanout::{fanout_runtime, local_label_values, LocalSource, RemoteSource};
use super::storeapi::{
    self, label_series, LabelsRequest, SeriesFrame, SeriesRequest, BATCH_SERIES,
    METHOD_LABEL_NAMES, METHOD_LABEL_VALUES, METHOD_SERIES,
};
use crate::actors::membership::ClusterService;
use crate::actors::RunningRoles;
use crate::cluster::transport::{RemoteError, RemoteErrorKind, Request, ResponseStream};
use crate::config::Role;
use crate::storage::db::Db;
use crate::storage::model::{
    Labels, Matcher, QueryResult, Queryable, QueryableError, SelectHints, Series,
};
use crate::storage::store::{BucketStore, QueryLimits, SelectOptions};

/// The StoreShard's bucket store as a synchronous `Queryable`: its ranged reads run on the
/// fan-out runtime while the calling (blocking-pool) thread waits. Per-block failures are logged
/// by the store; a limit breach fails the select.
pub struct BucketStoreQueryable {
    pub store: Arc<BucketStore>,
    pub warnings: parking_lot::Mutex<Vec<String>>,
}

impl BucketStoreQueryable {
    pub fn new(store: Arc<BucketStore>) -> Self {
        BucketStoreQueryable {
            store,
            warnings: parking_lot::Mutex::new(Vec::new()),
        }
    }

    fn warn(&self, warnings: Vec<String>) {
        self.warnings.lock().extend(warnings);
    }
}

/// Per-query bounds at the store, so that no single query can take the node's memory: with 20
/// queries at once (the store's concurrency limit) the chunk bytes in flight stay under 10 GiB.
pub const STORE_QUERY_LIMITS: QueryLimits = QueryLimits {
    max_series: 2_000_000,
    max_chunk_bytes: 512 << 20,
};

fn store_error(e: crate::storage::store::StoreError) -> QueryableError {
    match e {
        crate::storage::store::StoreError::Limit(m) => QueryableError::Limit(m),
        other => QueryableError::Storage(other.to_string()),
    }
}

fn block_on<F: std::future::Future>(f: F) -> QueryResult<F::Output> {
    let rt = fanout_runtime()
        .ok_or_else(|| QueryableError::Storage("the fan-out runtime could not start".into()))?;
    Ok(rt.handle().block_on(f))
}

impl Queryable for BucketStoreQueryable {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        let opts = SelectOptions {
            labels_only: hints.labels_only,
            limits: STORE_QUERY_LIMITS,
            ..SelectOptions::default()
        };
        let res = block_on(self.store.select(matchers, mint, maxt, &opts))?.map_err(store_error)?;
        self.warn(res.warnings);
        Ok(res.series)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        let res = block_on(self.store.label_names(matchers, mint, maxt))?.map_err(store_error)?;
        self.warn(res.warnings);
        Ok(res.values)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        let res =
            block_on(self.store.label_values(name, matchers, mint, maxt))?.map_err(store_error)?;
        self.warn(res.warnings);
        Ok(res.values)
    }

    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock())
    }
}

pub struct SourceSet {
    /// The bucket blocks this node's StoreShard serves.
    pub store: Arc<BucketStore>,
    pub db: Arc<Db>,
    pub running: Arc<RunningRoles>,
    pub external_labels: Labels,
    pub cluster: Arc<ClusterService>,
}

impl SourceSet {
    pub fn local(&self) -> Vec<LocalSource> {
        let mut out = Vec::new();
        if self.running.contains(Role::ScraperShipper) {
            let q: Arc<dyn Queryable> = self.db.clone();
            out.push(LocalSource {
                name: "local tsdb".to_string(),
                queryable: q,
                external_labels: self.external_labels.clone(),
            });
        }
        if self.running.contains(Role::StoreShard) {
            let q: Arc<dyn Queryable> = Arc::new(BucketStoreQueryable::new(self.store.clone()));
            // Bucket blocks carry their own external labels (meta.json's thanos.labels).
            out.push(LocalSource {
                name: "bucket store".to_string(),
                queryable: q,
                external_labels: Labels::empty(),
            });
        }
        out
    }

    /// Live peers holding data (scraper_shipper or store_shard), one entry per node.
    pub fn remote(&self) -> Vec<RemoteSource> {
        let mut out: Vec<RemoteSource> = Vec::new();
        for role in [Role::ScraperShipper, Role::StoreShard] {
            for m in self.cluster.live_peers_with_role(role) {
                if !out.iter().any(|r| r.node == m.node_id) {
                    out.push(RemoteSource {
                        node: m.node_id,
                        rpc_addr: m.rpc_addr,
                    });
                }
            }
        }
        out
    }

    /// Answers a StoreAPI request from this node's local sources.
    pub async fn serve(&self, req: Request) -> Result<ResponseStream, RemoteError> {
        let sources = self.local();
        let bad = |e: storeapi::StoreApiError| {
            RemoteError::new(RemoteErrorKind::BadRequest, e.to_string())
        };
        let internal = |e: String| RemoteError::new(RemoteErrorKind::Internal, e);
        match req.method.as_str() {
            METHOD_SERIES => {
                let r: SeriesRequest = storeapi::decode(&req.body).map_err(bad)?;
                let matchers = storeapi::to_matchers(&r.matchers).map_err(bad)?;
                let hints = SelectHints {
                    labels_only: r.labels_only,
                    limit: r.limit,
                    func: None,
                };
                let (series, warnings) = tokio::task::spawn_blocking(move || {
                    let mut parts = Vec::new();
                    let mut warnings = Vec::new();
                    for s in &sources {
                        if storeapi::store_matches(&s.external_labels, &matchers) {
                            let got = s
                                .queryable
                                .select(&matchers, r.min_time, r.max_time, &hints)
                                .map_err(|e| e.to_string())?;
                            parts.push(label_series(got, &s.external_labels));
                            warnings.extend(s.queryable.take_warnings());
                        }
                    }
                    Ok::<_, String>((crate::storage::dedup::merge_sources(parts), warnings))
                })
                .await
                .map_err(|e| internal(e.to_string()))?
                .map_err(internal)?;
                let mut frames = Vec::new();
                for (i, batch) in series.chunks(BATCH_SERIES).enumerate() {
                    let frame = SeriesFrame {
                        series: batch
                            .iter()
                            .map(|s| (s.labels.clone(), s.chunks.clone()))
                            .collect(),
                        warnings: if i == 0 { warnings.clone() } else { Vec::new() },
                    };
                    frames.push(storeapi::encode(&frame).map_err(|e| internal(e.to_string())));
                }
                if series.is_empty() && !warnings.is_empty() {
                    frames.push(
                        storeapi::encode(&SeriesFrame {
                            series: Vec::new(),
                            warnings,
                        })
                        .map_err(|e| internal(e.to_string())),
                    );
                }
                Ok(Box::pin(stream::iter(frames)))
            }
            METHOD_LABEL_NAMES | METHOD_LABEL_VALUES => {
                let r: LabelsRequest = storeapi::decode(&req.body).map_err(bad)?;
                let matchers = storeapi::to_matchers(&r.matchers).map_err(bad)?;
                let values = tokio::task::spawn_blocking(move || {
                    let mut all = Vec::new();
                    for s in &sources {
                        if !storeapi::store_matches(&s.external_labels, &matchers) {
                            continue;
                        }
                        match &r.name {
                            None => {
                                all.extend(
                                    s.queryable
                                        .label_names(&matchers, r.min_time, r.max_time)
                                        .map_err(|e| e.to_string())?,
                                );
                                all.extend(s.external_labels.iter().map(|l| l.name.to_string()));
                            }
                            Some(name) => all.extend(
                                local_label_values(s, name, &matchers, r.min_time, r.max_time)
                                    .map_err(|e| e.to_string())?,
                            ),
                        }
                    }
                    all.sort();
                    all.dedup();
                    Ok::<_, String>(all)
                })
                .await
                .map_err(|e| internal(e.to_string()))?
                .map_err(internal)?;
                let body = storeapi::encode(&values).map_err(|e| internal(e.to_string()))?;
                Ok(crate::cluster::transport::single_response(body))
            }
            other => Err(RemoteError::new(
                RemoteErrorKind::NotFound,
                format!("unknown store method {other:?}"),
            )),
        }
    }
}
