//! Which sources a query can read on this node and in the cluster: the local TSDB while this
//! node runs a scraper_shipper (labelled with its shipping external labels), the bucket blocks
//! while it runs a store_shard, and the live peers that run a scraper_shipper or store_shard.
//! The StoreAPI server (`storeapi::server`) answers peers from the same local sources.

use std::sync::Arc;

use super::fanout::{FanoutRuntime, LocalSource, RemoteSource};
use crate::cluster::running::RunningRoles;
use crate::cluster::service::ClusterService;
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
    runtime: Arc<FanoutRuntime>,
    pub warnings: parking_lot::Mutex<Vec<String>>,
    /// Resolutions of the blocks that answered since the last `take_resolutions`.
    resolutions: parking_lot::Mutex<std::collections::BTreeSet<i64>>,
}

impl BucketStoreQueryable {
    pub fn new(store: Arc<BucketStore>, runtime: Arc<FanoutRuntime>) -> Self {
        BucketStoreQueryable {
            store,
            runtime,
            warnings: parking_lot::Mutex::new(Vec::new()),
            resolutions: parking_lot::Mutex::new(Default::default()),
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
            max_resolution_ms: hints.max_resolution_ms.unwrap_or(0),
        };
        let res = self
            .runtime
            .block_on(self.store.select(matchers, mint, maxt, &opts))?
            .map_err(store_error)?;
        self.warn(res.warnings);
        self.resolutions.lock().extend(res.resolutions);
        Ok(res.series)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        let res = self
            .runtime
            .block_on(self.store.label_names(matchers, mint, maxt))?
            .map_err(store_error)?;
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
        let res = self
            .runtime
            .block_on(self.store.label_values(name, matchers, mint, maxt))?
            .map_err(store_error)?;
        self.warn(res.warnings);
        Ok(res.values)
    }

    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock())
    }

    fn take_resolutions(&self) -> Vec<i64> {
        std::mem::take(&mut *self.resolutions.lock())
            .into_iter()
            .collect()
    }
}

pub struct SourceSet {
    /// The bucket blocks this node's StoreShard serves.
    pub store: Arc<BucketStore>,
    pub db: Arc<Db>,
    pub running: Arc<RunningRoles>,
    pub external_labels: Labels,
    pub cluster: Arc<ClusterService>,
    /// Where bucket reads and remote calls run while a query thread waits.
    pub runtime: Arc<FanoutRuntime>,
    /// The Prometheus this node runs beside in sidecar mode: its recent data is a source
    /// while the scraper_shipper role runs, like the local head.
    pub sidecar: Option<Arc<crate::sidecar::Sidecar>>,
}

/// The source name of a sidecar's Prometheus.
pub const PROMETHEUS_SOURCE: &str = "prometheus";

impl SourceSet {
    pub fn local(&self) -> Vec<LocalSource> {
        let mut out = Vec::new();
        // Scraped samples and rule output both live in the local TSDB.
        if self.running.contains(Role::ScraperShipper) || self.running.contains(Role::RuleEvaluator)
        {
            let q: Arc<dyn Queryable> = self.db.clone();
            out.push(LocalSource {
                name: "local tsdb".to_string(),
                queryable: q,
                external_labels: self.external_labels.clone(),
            });
        }
        if let Some(src) = self.prometheus_source() {
            out.push(src);
        }
        if self.running.contains(Role::StoreShard) {
            let q: Arc<dyn Queryable> = Arc::new(BucketStoreQueryable::new(
                self.store.clone(),
                self.runtime.clone(),
            ));
            // Bucket blocks carry their own external labels (meta.json's thanos.labels).
            out.push(LocalSource {
                name: "bucket store".to_string(),
                queryable: q,
                external_labels: Labels::empty(),
            });
        }
        out
    }

    /// The sidecar's Prometheus, while this node's scraper_shipper runs in sidecar mode.
    fn prometheus_source(&self) -> Option<LocalSource> {
        let sc = self.sidecar.as_ref()?;
        if !self.running.contains(Role::ScraperShipper) {
            return None;
        }
        let handle = self.runtime.handle()?;
        let q: Arc<dyn Queryable> = Arc::new(crate::sidecar::source::PrometheusQueryable::new(
            sc.clone(),
            handle,
        ));
        Some(LocalSource {
            name: PROMETHEUS_SOURCE.to_string(),
            queryable: q,
            external_labels: crate::sidecar::source::labels_of(&sc.external_labels()),
        })
    }

    /// What each local source holds: label sets and time covered (the StoreAPI `info`).
    pub fn info(&self) -> Vec<super::storeapi::StoreInfo> {
        let node = self.cluster.node_id().to_string();
        let mut out = Vec::new();
        if self.running.contains(Role::ScraperShipper) || self.running.contains(Role::RuleEvaluator)
        {
            let head = self.db.head();
            let blocks = self.db.list_blocks();
            let mut mint = blocks.iter().map(|b| b.meta.min_time).min();
            let mut maxt = blocks.iter().map(|b| b.meta.max_time - 1).max();
            // An empty head reports i64::MAX / i64::MIN.
            if head.min_time() <= head.max_time() {
                mint = Some(mint.map_or(head.min_time(), |m| m.min(head.min_time())));
                maxt = Some(maxt.map_or(head.max_time(), |m| m.max(head.max_time())));
            }
            out.push(super::storeapi::StoreInfo {
                node: node.clone(),
                source: "local tsdb".to_string(),
                label_sets: vec![self.external_labels.clone()],
                min_time: mint,
                max_time: maxt,
            });
        }
        if let (Some(sc), true) = (&self.sidecar, self.running.contains(Role::ScraperShipper)) {
            // Like Thanos's sidecar: from the oldest block on, up to now and beyond.
            out.push(super::storeapi::StoreInfo {
                node: node.clone(),
                source: PROMETHEUS_SOURCE.to_string(),
                label_sets: vec![crate::sidecar::source::labels_of(&sc.external_labels())],
                min_time: sc.min_time(),
                max_time: Some(i64::MAX),
            });
        }
        if self.running.contains(Role::StoreShard) {
            let range = self.store.time_range();
            out.push(super::storeapi::StoreInfo {
                node,
                source: "bucket store".to_string(),
                label_sets: self.store.label_sets(),
                min_time: range.map(|r| r.0),
                max_time: range.map(|r| r.1),
            });
        }
        out
    }

    /// Live peers holding data (scraper_shipper, rule_evaluator or store_shard), one entry
    /// per node.
    pub fn remote(&self) -> Vec<RemoteSource> {
        let mut out: Vec<RemoteSource> = Vec::new();
        for role in [Role::ScraperShipper, Role::RuleEvaluator, Role::StoreShard] {
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
}
