//! `BucketStore`: the set of served `BucketBlock`s, kept in step with the bucket and with the
//! caller's ownership decision ("does this node serve block X?") by `sync`, and the query
//! entry points that fan a request out over the blocks, merge series with identical labels,
//! enforce per-query limits, and turn a failing block into a warning (logged and counted)
//! instead of a failed query.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use super::bucket_block::BucketBlock;
use super::cache::{ByteLru, CacheStats};
use super::index_header::header_path;
use super::resolution::{select_blocks, BlockSpan};
use super::sync::{MetaSyncer, SyncedBlock};
use super::{QueryBudget, QueryLimits, Result, StoreConfig, StoreCounters, StoreError};
use crate::storage::block::BlockMeta;
use crate::storage::bucket::DynStore;
use crate::storage::compactor::plan::hidden_by_sources;
use crate::storage::model::{EncodedChunk, Labels, Matcher, Series};

/// What one sync pass changed.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Loadable blocks in the bucket.
    pub known: usize,
    /// Blocks this node owns and serves after the pass.
    pub serving: usize,
    pub added: Vec<Ulid>,
    pub removed: Vec<Ulid>,
    /// Owned blocks that could not be prepared, with the error.
    pub failed: Vec<(Ulid, String)>,
    pub partial: usize,
    pub deleted: usize,
    pub invalid_metas: usize,
}

/// One served block, as advertised for store matching.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockInfo {
    pub ulid: Ulid,
    /// Inclusive lower bound (ms).
    pub min_time: i64,
    /// Exclusive upper bound (ms), as in meta.json.
    pub max_time: i64,
    pub external_labels: Labels,
    pub resolution: i64,
    pub header_loaded: bool,
}

/// Options of one select.
#[derive(Clone, Debug, Default)]
pub struct SelectOptions {
    pub limits: QueryLimits,
    /// Only label sets are wanted: series come back without chunks.
    pub labels_only: bool,
    /// The query's maximum source resolution (ms; 0 = raw): which blocks answer follows
    /// `resolution::select_blocks` (coarsest allowed first, finer then coarser data in gaps).
    pub max_resolution_ms: i64,
}

/// Series of a select plus one warning per block that failed.
#[derive(Clone, Debug, Default)]
pub struct SelectResult {
    /// Sorted by labels, one entry per label set, chunks in time order.
    pub series: Vec<Series>,
    pub warnings: Vec<String>,
    pub blocks_queried: usize,
    pub chunk_bytes: u64,
    /// Resolutions (ms, 0 = raw) of the blocks that returned series, ascending.
    pub resolutions: Vec<i64>,
}

/// Names or values plus per-block warnings.
#[derive(Clone, Debug, Default)]
pub struct LabelsResult {
    pub values: Vec<String>,
    pub warnings: Vec<String>,
}

/// A snapshot of the store's gauges and counters, ready to be exported as metrics.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub blocks_serving: u64,
    pub blocks_failed: u64,
    pub headers_open: u64,
    pub header_heap_bytes: u64,
    pub cache: CacheStats,
    pub bucket_requests: u64,
    pub bucket_bytes: u64,
    pub headers_built: u64,
    pub headers_rebuilt: u64,
    pub header_opens: u64,
    pub header_releases: u64,
    pub block_load_failures: u64,
    pub block_query_failures: u64,
    pub corrupt_block_errors: u64,
    pub syncs: u64,
    pub sync_failures: u64,
    pub queries: u64,
    pub limit_hits: u64,
    pub chunk_bytes_touched: u64,
}

pub struct BucketStore {
    bucket: DynStore,
    cfg: StoreConfig,
    cache: Arc<ByteLru>,
    counters: Arc<StoreCounters>,
    blocks: RwLock<BTreeMap<Ulid, Arc<BucketBlock>>>,
    /// Extents of every loadable block of the bucket in this store's time window, served here
    /// or not: resolution selection must see what other shards serve.
    known: RwLock<Vec<BlockSpan>>,
    failed: RwLock<BTreeMap<Ulid, String>>,
    syncer: tokio::sync::Mutex<MetaSyncer>,
    query_slots: tokio::sync::Semaphore,
    ready: AtomicBool,
}

impl BucketStore {
    pub fn new(bucket: DynStore, cfg: StoreConfig) -> Result<Self> {
        cfg.validate()?;
        std::fs::create_dir_all(&cfg.cache_dir).map_err(|source| StoreError::HeaderIo {
            path: cfg.cache_dir.clone(),
            source,
        })?;
        Ok(BucketStore {
            bucket,
            cache: Arc::new(ByteLru::new(cfg.cache_bytes)),
            counters: Arc::new(StoreCounters::default()),
            blocks: RwLock::new(BTreeMap::new()),
            known: RwLock::new(Vec::new()),
            failed: RwLock::new(BTreeMap::new()),
            syncer: tokio::sync::Mutex::new(MetaSyncer::new(cfg.prepare_concurrency)),
            ready: AtomicBool::new(false),
            query_slots: tokio::sync::Semaphore::new(cfg.max_concurrent_queries),
            cfg,
        })
    }

    /// True once the first sync has finished (every owned block prepared or failed).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// One sync pass: lists the bucket, keeps the loadable blocks in the time window that
    /// `owns` says this node serves, prepares new ones (index headers) and releases the ones no
    /// longer owned.
    pub async fn sync(&self, owns: &(dyn Fn(&Ulid) -> bool + Sync)) -> Result<SyncReport> {
        self.counters.inc(&self.counters.syncs);
        let state = {
            let mut syncer = self.syncer.lock().await;
            syncer
                .sync(&*self.bucket, self.cfg.deletion_delay, SystemTime::now())
                .await
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                self.counters.inc(&self.counters.sync_failures);
                tracing::error!(error = %e, "bucket sync failed");
                return Err(e);
            }
        };
        for (u, reason) in &state.invalid {
            tracing::warn!(block = %u, %reason, "skipping block with invalid meta.json");
        }
        let in_window = |b: &SyncedBlock| {
            b.meta.min_time <= self.cfg.max_time && b.meta.max_time > self.cfg.min_time
        };
        let mut owned: BTreeSet<Ulid> = state
            .blocks
            .values()
            .filter(|b| in_window(b))
            .map(|b| b.meta.ulid)
            .filter(|u| owns(u))
            .collect();
        *self.known.write() = state
            .blocks
            .values()
            .filter(|b| in_window(b))
            .map(|b| BlockSpan::of(&b.meta))
            .collect();
        let mut report = SyncReport {
            known: state.blocks.len(),
            partial: state.partial.len(),
            deleted: state.deleted.len(),
            invalid_metas: state.invalid.len(),
            ..Default::default()
        };
        // New blocks are prepared before anything is released, and the swap happens under one
        // lock: a compacted block replaces its inputs without a moment where neither is served.
        let current: BTreeSet<Ulid> = self.blocks.read().keys().copied().collect();
        let new: Vec<&SyncedBlock> = owned
            .difference(&current)
            .filter_map(|u| state.blocks.get(u))
            .collect();
        let mut ready = self.prepare_all(new, &mut report).await;
        // A block that covers others but cannot be loaded must not hide them: its inputs are
        // served on (prepared now if they were not served yet).
        let failed: BTreeSet<Ulid> = report.failed.iter().map(|(u, _)| *u).collect();
        if !failed.is_empty() && !state.hidden.is_empty() {
            let loadable: Vec<BlockMeta> = state
                .blocks
                .values()
                .chain(state.hidden.values())
                .filter(|b| !failed.contains(&b.meta.ulid))
                .map(|b| b.meta.clone())
                .collect();
            let still_hidden = hidden_by_sources(&loadable);
            let revived: Vec<&SyncedBlock> = state
                .hidden
                .values()
                .filter(|b| !still_hidden.contains(&b.meta.ulid) && in_window(b))
                .filter(|b| owns(&b.meta.ulid))
                .collect();
            for b in &revived {
                owned.insert(b.meta.ulid);
            }
            let revived_new: Vec<&SyncedBlock> = revived
                .into_iter()
                .filter(|b| !current.contains(&b.meta.ulid))
                .collect();
            ready.extend(self.prepare_all(revived_new, &mut report).await);
        }
        let released: Vec<Ulid> = current.difference(&owned).copied().collect();
        {
            let mut blocks = self.blocks.write();
            for b in ready {
                blocks.insert(b.ulid(), b);
            }
            for u in &released {
                blocks.remove(u);
            }
        }
        for u in released {
            self.cache.remove_block(u);
            let path = header_path(&self.cfg.cache_dir, u);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove index header");
                }
            }
            report.removed.push(u);
        }
        self.failed.write().retain(|u, _| owned.contains(u));
        report.added.sort();
        report.serving = self.blocks.read().len();
        self.remove_stray_headers();
        if !report.added.is_empty() || !report.removed.is_empty() || !report.failed.is_empty() {
            tracing::info!(
                node = %self.cfg.node_id,
                serving = report.serving,
                added = report.added.len(),
                removed = report.removed.len(),
                failed = report.failed.len(),
                known = report.known,
                "store sync changed the served blocks"
            );
        }
        self.ready.store(true, Ordering::Release);
        Ok(report)
    }

    /// Prepares (index headers) the given blocks, `prepare_concurrency` at a time; returns the
    /// ones that loaded and records the others as failed in `report` and `self.failed`.
    async fn prepare_all(
        &self,
        blocks: Vec<&SyncedBlock>,
        report: &mut SyncReport,
    ) -> Vec<Arc<BucketBlock>> {
        let to_add: Vec<Arc<BucketBlock>> = blocks
            .into_iter()
            .map(|sb| {
                Arc::new(BucketBlock::new(
                    sb,
                    self.bucket.clone(),
                    self.cache.clone(),
                    self.counters.clone(),
                    self.cfg.fetch.clone(),
                    header_path(&self.cfg.cache_dir, sb.meta.ulid),
                ))
            })
            .collect();
        let prepared: Vec<(Arc<BucketBlock>, Result<()>)> = stream::iter(to_add)
            .map(|b| async move {
                let r = b.prepare().await;
                (b, r)
            })
            .buffer_unordered(self.cfg.prepare_concurrency)
            .collect()
            .await;
        let mut ready = Vec::new();
        for (b, r) in prepared {
            match r {
                Ok(()) => {
                    self.failed.write().remove(&b.ulid());
                    report.added.push(b.ulid());
                    ready.push(b);
                }
                Err(e) => {
                    self.counters.inc(&self.counters.block_load_failures);
                    if e.is_corruption() {
                        self.counters.inc(&self.counters.corrupt_block_errors);
                    }
                    tracing::error!(block = %b.ulid(), error = %e, "cannot load block; not serving it");
                    self.failed.write().insert(b.ulid(), e.to_string());
                    report.failed.push((b.ulid(), e.to_string()));
                }
            }
        }
        ready
    }

    /// Deletes header files (and leftover temp files) of blocks this store does not serve, e.g.
    /// from a previous run or rebuilt by a query that raced with the block's release.
    fn remove_stray_headers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.cfg.cache_dir) else {
            return;
        };
        let serving: BTreeSet<String> = self.blocks.read().keys().map(|u| u.to_string()).collect();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((ulid, _)) = name.split_once('.') else {
                continue;
            };
            if Ulid::from_string(ulid).is_err() {
                continue;
            }
            let stray = !serving.contains(ulid) || name.ends_with(".tmp");
            if stray {
                if let Err(err) = std::fs::remove_file(e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove stray header");
                }
            }
        }
    }

    /// Runs `sync` every `interval` and whenever `view` changes, and releases idle index
    /// headers every half idle timeout, until `shutdown` is cancelled. `view` is what ownership
    /// depends on (for the StoreShard role, the live StoreShards) and `owns(view, block)` says
    /// whether this node serves `block` under it.
    pub fn spawn_sync_loop<V, F>(
        self: Arc<Self>,
        interval: Duration,
        mut view: watch::Receiver<V>,
        owns: F,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()>
    where
        V: Clone + Send + Sync + 'static,
        F: Fn(&V, &Ulid) -> bool + Send + Sync + 'static,
    {
        tokio::spawn(async move {
            let release_every = (self.cfg.idle_timeout / 2).max(Duration::from_secs(1));
            let mut release_tick = tokio::time::interval(release_every);
            release_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_sync = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(next_sync) => {
                        let current = view.borrow_and_update().clone();
                        if let Err(e) = self.sync(&|u: &Ulid| owns(&current, u)).await {
                            tracing::warn!(error = %e, "store sync pass failed; retrying next interval");
                        }
                        next_sync = tokio::time::Instant::now() + interval;
                    }
                    changed = view.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Ownership may have changed: sync now.
                        next_sync = tokio::time::Instant::now();
                    }
                    _ = release_tick.tick() => {
                        self.release_idle();
                    }
                }
            }
        })
    }

    /// Releases index headers idle for longer than the configured timeout; returns how many.
    pub fn release_idle(&self) -> usize {
        let blocks: Vec<Arc<BucketBlock>> = self.blocks.read().values().cloned().collect();
        let mut n = 0;
        for b in blocks {
            if b.release_if_idle(self.cfg.idle_timeout) {
                n += 1;
                self.counters.inc(&self.counters.header_releases);
            }
        }
        n
    }

    /// The served blocks that answer `[mint, maxt]` at `max_resolution` (module
    /// `resolution`). Served blocks the bucket listing does not know (revived inputs of a
    /// failed block) take part in the choice too; blocks this store failed to load do not,
    /// or their range would count as answered and finer or coarser blocks would not fill it.
    fn blocks_for(&self, mint: i64, maxt: i64, max_resolution: i64) -> Vec<Arc<BucketBlock>> {
        let blocks = self.blocks.read();
        let failed = self.failed.read();
        let mut spans: Vec<BlockSpan> = self
            .known
            .read()
            .iter()
            .filter(|s| !failed.contains_key(&s.id))
            .cloned()
            .collect();
        for b in blocks.values() {
            if !spans.iter().any(|s| s.id == b.ulid()) {
                spans.push(BlockSpan::of(b.meta()));
            }
        }
        select_blocks(&spans, mint, maxt, max_resolution)
            .into_iter()
            .filter_map(|u| blocks.get(&u).cloned())
            .collect()
    }

    async fn query_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.query_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Internal("query semaphore closed".into()))
    }

    fn block_failed(&self, ulid: Ulid, e: &StoreError, warnings: &mut Vec<String>) {
        self.counters.inc(&self.counters.block_query_failures);
        if e.is_corruption() {
            self.counters.inc(&self.counters.corrupt_block_errors);
        }
        tracing::error!(block = %ulid, error = %e, "block failed during query");
        warnings.push(format!("block {ulid}: {e}"));
    }

    /// Series matching `matchers` with chunks in `[mint, maxt]` (inclusive ms) from every served
    /// block, merged by label set. A limit error fails the query; any other block error becomes
    /// a warning and the other blocks still answer.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        opts: &SelectOptions,
    ) -> Result<SelectResult> {
        let _slot = self.query_slot().await?;
        self.counters.inc(&self.counters.queries);
        let blocks = self.blocks_for(mint, maxt, opts.max_resolution_ms);
        let budget = QueryBudget::new(opts.limits);
        let budget_ref = &budget;
        // Blocks are polled concurrently within the query's task (bucket reads overlap); CPU
        // parallelism comes from concurrent queries. Spawning a task per block measured slower
        // for many small blocks.
        let mut results = stream::iter(blocks.iter().cloned())
            .map(|b| async move {
                let r = b
                    .select(matchers, mint, maxt, opts.labels_only, budget_ref)
                    .await;
                (b.ulid(), b.resolution(), r)
            })
            .buffer_unordered(self.cfg.query_concurrency);
        let mut merged: BTreeMap<Labels, Vec<EncodedChunk>> = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut resolutions = BTreeSet::new();
        while let Some((ulid, resolution, r)) = results.next().await {
            match r {
                Ok(series) => {
                    if !series.is_empty() {
                        resolutions.insert(resolution);
                    }
                    for s in series {
                        merged.entry(s.labels).or_default().extend(s.chunks);
                    }
                }
                Err(e @ StoreError::Limit(_)) => {
                    self.counters.inc(&self.counters.limit_hits);
                    return Err(e);
                }
                Err(e) => self.block_failed(ulid, &e, &mut warnings),
            }
        }
        drop(results);
        if let Err(e) = budget.check_series(merged.len()) {
            self.counters.inc(&self.counters.limit_hits);
            return Err(e);
        }
        let series = merged
            .into_iter()
            .map(|(labels, mut chunks)| {
                chunks.sort_by_key(|c| (c.min_time, c.max_time));
                chunks.dedup();
                Series { labels, chunks }
            })
            .collect();
        warnings.sort();
        Ok(SelectResult {
            series,
            warnings,
            blocks_queried: blocks.len(),
            chunk_bytes: budget.chunk_bytes(),
            resolutions: resolutions.into_iter().collect(),
        })
    }

    /// Sorted, unique label names of the matching series in blocks overlapping the range.
    pub async fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<LabelsResult> {
        self.labels_query(None, matchers, mint, maxt).await
    }

    /// Sorted, unique values of `name` among the matching series.
    pub async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<LabelsResult> {
        self.labels_query(Some(name), matchers, mint, maxt).await
    }

    async fn labels_query(
        &self,
        name: Option<&str>,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<LabelsResult> {
        let _slot = self.query_slot().await?;
        self.counters.inc(&self.counters.queries);
        // Labels do not depend on the resolution: every overlapping block answers.
        let blocks: Vec<Arc<BucketBlock>> = self
            .blocks
            .read()
            .values()
            .filter(|b| b.overlaps(mint, maxt))
            .cloned()
            .collect();
        let mut results = stream::iter(blocks)
            .map(|b| async move {
                let r = match name {
                    Some(n) => b.label_values(n, matchers, mint, maxt).await,
                    None => b.label_names(matchers, mint, maxt).await,
                };
                (b.ulid(), r)
            })
            .buffer_unordered(self.cfg.query_concurrency);
        let mut all = BTreeSet::new();
        let mut warnings = Vec::new();
        while let Some((ulid, r)) = results.next().await {
            match r {
                Ok(v) => all.extend(v),
                Err(e) => self.block_failed(ulid, &e, &mut warnings),
            }
        }
        warnings.sort();
        Ok(LabelsResult {
            values: all.into_iter().collect(),
            warnings,
        })
    }

    /// The served blocks overlapping `[mint, maxt]` (inclusive ms), every resolution.
    pub fn blocks_overlapping(&self, mint: i64, maxt: i64) -> Vec<Arc<BucketBlock>> {
        self.blocks
            .read()
            .values()
            .filter(|b| b.overlaps(mint, maxt))
            .cloned()
            .collect()
    }

    /// The served blocks, sorted by ULID.
    pub fn blocks(&self) -> Vec<BlockInfo> {
        self.blocks
            .read()
            .values()
            .map(|b| BlockInfo {
                ulid: b.ulid(),
                min_time: b.meta().min_time,
                max_time: b.meta().max_time,
                external_labels: b.external_labels().clone(),
                resolution: b.resolution(),
                header_loaded: b.header_loaded(),
            })
            .collect()
    }

    /// Owned blocks that failed to load, with the reason.
    pub fn failed_blocks(&self) -> Vec<(Ulid, String)> {
        self.failed
            .read()
            .iter()
            .map(|(u, r)| (*u, r.clone()))
            .collect()
    }

    /// The distinct external label sets of the served blocks (for store matching).
    pub fn label_sets(&self) -> Vec<Labels> {
        let sets: BTreeSet<Labels> = self
            .blocks
            .read()
            .values()
            .map(|b| b.external_labels().clone())
            .collect();
        sets.into_iter().collect()
    }

    /// Inclusive `(mint, maxt)` covered by the served blocks; `None` when serving nothing.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let blocks = self.blocks.read();
        let mint = blocks.values().map(|b| b.meta().min_time).min()?;
        let maxt = blocks.values().map(|b| b.meta().max_time).max()?;
        Some((mint, maxt.saturating_sub(1)))
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let blocks = self.blocks.read();
        StoreStats {
            blocks_serving: blocks.len() as u64,
            blocks_failed: self.failed.read().len() as u64,
            headers_open: blocks.values().filter(|b| b.header_loaded()).count() as u64,
            header_heap_bytes: blocks.values().map(|b| b.header_heap_bytes() as u64).sum(),
            cache: self.cache.stats(),
            bucket_requests: get(&c.bucket_requests),
            bucket_bytes: get(&c.bucket_bytes),
            headers_built: get(&c.headers_built),
            headers_rebuilt: get(&c.headers_rebuilt),
            header_opens: get(&c.header_opens),
            header_releases: get(&c.header_releases),
            block_load_failures: get(&c.block_load_failures),
            block_query_failures: get(&c.block_query_failures),
            corrupt_block_errors: get(&c.corrupt_block_errors),
            syncs: get(&c.syncs),
            sync_failures: get(&c.sync_failures),
            queries: get(&c.queries),
            limit_hits: get(&c.limit_hits),
            chunk_bytes_touched: get(&c.chunk_bytes_touched),
        }
    }
}
