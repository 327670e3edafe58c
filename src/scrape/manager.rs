//! The scrape manager: one pool per `scrape_configs` job, each holding the job's discovered
//! target groups (static, file, DNS and HTTP discovery), its HTTP client and one [`ScrapeLoop`] task per target
//! this node owns. The node owns the manager (so `/api/v1/targets` and reload work whichever
//! thread asks); the ScraperShipper role starts it on its runtime and stops it when the role
//! stops. Reload compares each job's config and restarts only the pools that changed; targets
//! that disappear get staleness markers. Jobs come from two places: the config file (through
//! `apply_config`) and the scrape-config API (through `set_api_jobs`); the manager scrapes
//! their union, and a file job always wins over an API job of the same name.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::file_sd::FileSdState;
use super::parser::Metadata;
use super::scrape_loop::{build_client, LoopShared, ScrapeLoop, TargetStatus};
use super::shard::{target_key, ShardView};
use super::target::{jitter_seed, static_groups, targets_from_group, Target, TargetGroup};
use crate::config::{Config, ScrapeConfig};
use crate::storage::db::Db;
use crate::storage::model::Labels;

/// How often file_sd files are checked for changes.
const FILE_SD_POLL: Duration = Duration::from_secs(1);

/// One running loop as the pool tracks it.
struct Running {
    target: Arc<Target>,
    shared: LoopShared,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    client: Option<reqwest::Client>,
    client_error: Option<String>,
    /// Discovered groups by provider (`static`, `file_sd/<i>`) then by source.
    groups: BTreeMap<String, Vec<TargetGroup>>,
    loops: HashMap<u64, Running>,
    dropped: Vec<Arc<Target>>,
    /// Stops this pool's discovery tasks.
    sd_cancel: CancellationToken,
}

struct Inner {
    /// The config in use: the file's with the API jobs added ([`with_api_jobs`]).
    config: Arc<Config>,
    /// The jobs of the scrape-config API, as last set.
    api_jobs: Vec<ScrapeConfig>,
    runtime: Option<Handle>,
    /// Bumped by every `start`, so a stale stop (an old role incarnation) is ignored.
    generation: u64,
    /// Cancelled when this generation stops; every loop's `shutdown` is a child.
    lifetime: CancellationToken,
    pools: BTreeMap<String, Pool>,
    shard: ShardView,
}

pub struct ScrapeManager {
    db: Arc<Db>,
    jitter_seed: u64,
    inner: Mutex<Inner>,
    /// Whether the last (re)load of the config worked, and when the config in use was loaded
    /// (`/api/v1/status/runtimeinfo`).
    reload_status: Mutex<(bool, SystemTime)>,
}

/// One active target's labels and the metric families it exposed with their metadata.
pub type TargetMetadata = (Labels, Vec<(String, Metadata)>);

/// One target as `/api/v1/targets` shows it.
#[derive(Clone, Debug)]
pub struct TargetView {
    pub pool: String,
    pub target: Arc<Target>,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub status: TargetStatus,
}

/// All targets, active ones with status, dropped ones with their discovered labels.
#[derive(Clone, Debug, Default)]
pub struct TargetsSnapshot {
    pub active: Vec<TargetView>,
    pub dropped: Vec<(String, Arc<Target>)>,
}

/// What a reload did, by job name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub unchanged: Vec<String>,
    pub restarted: Vec<String>,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

impl ScrapeManager {
    pub fn new(db: Arc<Db>, config: Arc<Config>) -> Arc<Self> {
        let seed = jitter_seed(&config.node.id, &config.shipping_labels());
        let shard = ShardView::alone(config.node.id.clone());
        Arc::new(ScrapeManager {
            db,
            jitter_seed: seed,
            inner: Mutex::new(Inner {
                config,
                api_jobs: Vec::new(),
                runtime: None,
                generation: 0,
                lifetime: CancellationToken::new(),
                pools: BTreeMap::new(),
                shard,
            }),
            reload_status: Mutex::new((true, SystemTime::now())),
        })
    }

    /// Starts every job's pool on `runtime` (the ScraperShipper's), replacing whatever an
    /// earlier start left running. Returns the generation to pass to [`Self::stop`].
    pub fn start(self: &Arc<Self>, runtime: Handle) -> u64 {
        let mut inner = self.inner.lock();
        for (_, pool) in std::mem::take(&mut inner.pools) {
            stop_pool(pool, false);
        }
        inner.lifetime.cancel();
        inner.lifetime = CancellationToken::new();
        inner.generation += 1;
        inner.runtime = Some(runtime);
        let config = inner.config.clone();
        for cfg in &config.scrape_configs {
            let pool = self.new_pool(&mut inner, &config, cfg);
            inner.pools.insert(cfg.job_name.clone(), pool);
            self.sync_pool(&mut inner, &cfg.job_name);
        }
        tracing::info!(jobs = config.scrape_configs.len(), "scrape manager started");
        inner.generation
    }

    /// Stops every loop and discovery task of start `generation` (a later start wins);
    /// series are not marked stale (another node or a restart carries on).
    pub fn stop(&self, generation: u64) {
        let mut inner = self.inner.lock();
        if inner.generation != generation {
            return;
        }
        for (_, pool) in std::mem::take(&mut inner.pools) {
            stop_pool(pool, false);
        }
        inner.lifetime.cancel();
        inner.runtime = None;
    }

    pub fn is_running(&self) -> bool {
        self.inner.lock().runtime.is_some()
    }

    /// The config the manager scrapes by now.
    pub fn config(&self) -> Arc<Config> {
        self.inner.lock().config.clone()
    }

    /// Applies a new config: unchanged jobs keep running untouched, changed jobs restart,
    /// removed jobs stop and their targets go stale, new jobs start.
    /// `config`'s own API jobs (if it is one this manager handed out) are ignored: the API
    /// jobs are those of the last [`Self::set_api_jobs`].
    pub fn apply_config(self: &Arc<Self>, config: Arc<Config>) -> ReloadReport {
        *self.reload_status.lock() = (true, SystemTime::now());
        let api = self.inner.lock().api_jobs.clone();
        self.apply_effective(Arc::new(with_api_jobs(&config, &api)))
    }

    /// Replaces the jobs of the scrape-config API; the file's jobs stay as they are.
    pub fn set_api_jobs(self: &Arc<Self>, jobs: Vec<ScrapeConfig>) -> ReloadReport {
        let file = {
            let mut inner = self.inner.lock();
            inner.api_jobs = jobs.clone();
            inner.config.clone()
        };
        self.apply_effective(Arc::new(with_api_jobs(&file, &jobs)))
    }

    fn apply_effective(self: &Arc<Self>, config: Arc<Config>) -> ReloadReport {
        let mut inner = self.inner.lock();
        let mut report = ReloadReport::default();
        inner.config = config.clone();
        let wanted: BTreeMap<&str, &ScrapeConfig> = config
            .scrape_configs
            .iter()
            .map(|c| (c.job_name.as_str(), c))
            .collect();
        let existing: Vec<String> = inner.pools.keys().cloned().collect();
        for job in existing {
            if !wanted.contains_key(job.as_str()) {
                if let Some(pool) = inner.pools.remove(&job) {
                    stop_pool(pool, true);
                }
                report.stopped.push(job);
            }
        }
        let running = inner.runtime.is_some();
        for (job, cfg) in wanted {
            let same = inner.pools.get(job).is_some_and(|p| *p.cfg == *cfg);
            if same {
                report.unchanged.push(job.to_string());
                continue;
            }
            let old = inner.pools.remove(job);
            if old.is_some() {
                report.restarted.push(job.to_string());
            } else {
                report.started.push(job.to_string());
            }
            if !running {
                continue;
            }
            let mut pool = self.new_pool(&mut inner, &config, cfg);
            if let Some(old) = old {
                // Targets that survive the change hand over without staleness, like
                // Prometheus's reload; the others go stale once the new pool has synced.
                // When what is stored changed (relabeling, honor_*, lint policy), every old
                // loop writes its end-of-run markers, as Prometheus does when it cannot
                // reuse the scrape cache: they land only on series the new loop no longer
                // writes (on the others they are older than its samples and refused), so
                // dropped series end at once instead of lingering for the lookback.
                let reusable = same_stored_series(&old.cfg, cfg);
                pool.loops = HashMap::new();
                inner.pools.insert(job.to_string(), pool);
                self.sync_pool(&mut inner, job);
                let kept: Vec<u64> = inner
                    .pools
                    .get(job)
                    .map(|p| p.loops.keys().copied().collect())
                    .unwrap_or_default();
                old.sd_cancel.cancel();
                for (hash, r) in old.loops {
                    r.shared
                        .stale_on_stop
                        .store(!reusable || !kept.contains(&hash), Ordering::Release);
                    r.shared.cancel.cancel();
                }
            } else {
                inner.pools.insert(job.to_string(), pool);
                self.sync_pool(&mut inner, job);
            }
        }
        report
    }

    /// Starts the job's DNS and HTTP discovery: each refreshes now and then every
    /// `refresh_interval`, handing its groups to the pool; a failed refresh keeps the last.
    fn spawn_network_sd(
        self: &Arc<Self>,
        rt: &Handle,
        config: &Config,
        cfg: &ScrapeConfig,
        cancel: &CancellationToken,
    ) {
        for (i, sd) in cfg.dns_sd_configs.iter().enumerate() {
            let resolver = match super::dns_sd::resolver(&config.node.resolv_conf) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(job = %cfg.job_name, error = %e, "DNS discovery cannot start");
                    continue;
                }
            };
            let (this, job, sd, cancel) = (
                Arc::downgrade(self),
                cfg.job_name.clone(),
                sd.clone(),
                cancel.clone(),
            );
            let provider = format!("dns_sd/{i}");
            rt.spawn(async move {
                // Each name refreshes on its own: a name that fails keeps its last group.
                let mut last: BTreeMap<String, TargetGroup> = BTreeMap::new();
                loop {
                    for (name, result) in super::dns_sd::refresh(&resolver, &sd).await {
                        match result {
                            Ok(group) => {
                                last.insert(name, group);
                            }
                            Err(e) => {
                                tracing::warn!(%job, error = %e, "DNS discovery refresh failed")
                            }
                        }
                    }
                    let Some(mgr) = this.upgrade() else { return };
                    mgr.set_groups(&job, &provider, last.values().cloned().collect());
                    drop(mgr);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(sd.refresh_interval.as_std()) => {}
                    }
                }
            });
        }
        for (i, sd) in cfg.http_sd_configs.iter().enumerate() {
            let base = config.base_dir.clone();
            let resolve = move |p: &std::path::Path| {
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                }
            };
            let client = match super::http_sd::client(sd, &resolve) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(job = %cfg.job_name, error = %e, "HTTP discovery cannot start");
                    continue;
                }
            };
            let (this, job, sd, cancel) = (
                Arc::downgrade(self),
                cfg.job_name.clone(),
                sd.clone(),
                cancel.clone(),
            );
            let provider = format!("http_sd/{i}");
            rt.spawn(async move {
                loop {
                    match super::http_sd::refresh(&client, &sd, &resolve).await {
                        Ok(groups) => {
                            let Some(mgr) = this.upgrade() else { return };
                            mgr.set_groups(&job, &provider, groups);
                        }
                        Err(e) => tracing::warn!(%job, url = %sd.url, error = %e, "HTTP discovery refresh failed"),
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(sd.refresh_interval.as_std()) => {}
                    }
                }
            });
        }
    }

    /// Feeds the cluster view: which ScraperShippers are live and how many replicas each
    /// target gets. Pools re-sync; targets this node no longer owns stop and their local series
    /// go stale (the new owner continues them under its own replica label).
    pub fn set_shard_view(&self, view: ShardView) {
        let mut inner = self.inner.lock();
        if inner.shard == view {
            return;
        }
        inner.shard = view;
        let jobs: Vec<String> = inner.pools.keys().cloned().collect();
        for job in jobs {
            self.sync_pool(&mut inner, &job);
        }
    }

    /// Keeps the shard view in step with the cluster: every `every`, `live_peers` gives the
    /// other live ScraperShippers; this node counts itself in. Runs until `cancel`.
    pub fn follow_membership<F>(
        self: &Arc<Self>,
        live_peers: F,
        every: Duration,
        cancel: CancellationToken,
    ) where
        F: Fn() -> Vec<crate::cluster::NodeId> + 'static,
    {
        let this = Arc::downgrade(self);
        actix_rt::spawn(async move {
            loop {
                let Some(mgr) = this.upgrade() else { return };
                let (me, replication) = {
                    let inner = mgr.inner.lock();
                    (
                        inner.shard.me.clone(),
                        inner.config.cluster.scrape_replication,
                    )
                };
                let mut live = live_peers();
                if !live.is_empty() {
                    live.push(me.clone());
                    live.sort();
                    live.dedup();
                }
                mgr.set_shard_view(ShardView {
                    live,
                    replication,
                    me,
                });
                drop(mgr);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// New groups from one discovery provider of a job.
    pub fn set_groups(&self, job: &str, provider: &str, groups: Vec<TargetGroup>) {
        let mut inner = self.inner.lock();
        let Some(pool) = inner.pools.get_mut(job) else {
            return;
        };
        pool.groups.insert(provider.to_string(), groups);
        self.sync_pool(&mut inner, job);
    }

    fn new_pool(self: &Arc<Self>, inner: &mut Inner, config: &Config, cfg: &ScrapeConfig) -> Pool {
        let (client, client_error) = match build_client(cfg, |p| config.resolve_path(p)) {
            Ok(c) => (Some(c), None),
            Err(e) => {
                tracing::error!(job = %cfg.job_name, error = %e, "scrape pool cannot build its HTTP client");
                (None, Some(e))
            }
        };
        let mut groups = BTreeMap::new();
        groups.insert("static".to_string(), static_groups(cfg));
        let sd_cancel = CancellationToken::new();
        if let Some(rt) = inner.runtime.as_ref() {
            for (i, sd) in cfg.file_sd_configs.iter().enumerate() {
                let patterns: Vec<PathBuf> =
                    sd.files.iter().map(|f| config.resolve_path(f)).collect();
                let refresh = sd.refresh_interval.as_std();
                let this = Arc::downgrade(self);
                let job = cfg.job_name.clone();
                let provider = format!("file_sd/{i}");
                let cancel = sd_cancel.clone();
                // The first read happens now, so the pool starts with its file targets.
                let mut state = FileSdState::default();
                if let Some(g) = state.poll(&patterns, refresh) {
                    groups.insert(provider.clone(), g);
                }
                rt.spawn(async move {
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(FILE_SD_POLL) => {}
                        }
                        if let Some(g) = state.poll(&patterns, refresh) {
                            let Some(mgr) = this.upgrade() else { return };
                            mgr.set_groups(&job, &provider, g);
                        }
                    }
                });
            }
        }
        if let Some(rt) = inner.runtime.as_ref() {
            self.spawn_network_sd(rt, config, cfg, &sd_cancel);
        }
        Pool {
            cfg: Arc::new(cfg.clone()),
            client,
            client_error,
            groups,
            loops: HashMap::new(),
            dropped: Vec::new(),
            sd_cancel,
        }
    }

    /// Recomputes a pool's targets from its groups and the shard view; starts loops for new
    /// targets and stops (with staleness) loops of vanished ones.
    fn sync_pool(&self, inner: &mut Inner, job: &str) {
        let Some(rt) = inner.runtime.clone() else {
            return;
        };
        let shard = inner.shard.clone();
        let lifetime = inner.lifetime.clone();
        let Some(pool) = inner.pools.get_mut(job) else {
            return;
        };
        let mut active: Vec<(u64, Target)> = Vec::new();
        let mut dropped = Vec::new();
        for groups in pool.groups.values() {
            for g in groups {
                let (targets, errors) = targets_from_group(g, &pool.cfg);
                for e in errors {
                    tracing::warn!(job, group = %g.source, error = %e, "creating target failed");
                }
                for t in targets {
                    if t.is_dropped() {
                        dropped.push(Arc::new(t));
                    } else {
                        let h = t.hash();
                        if !active.iter().any(|(x, _)| *x == h) && shard.owns(&target_key(job, h)) {
                            active.push((h, t));
                        }
                    }
                }
            }
        }
        pool.dropped = dropped;
        let limit = pool.cfg.target_limit;
        // Like Prometheus, every target of a pool over its target_limit fails its scrapes.
        let forced = (limit > 0 && active.len() as u64 > limit).then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                active.len()
            )
        });
        let mut next: HashMap<u64, Running> = HashMap::with_capacity(active.len());
        for (h, t) in active {
            if let Some(r) = pool.loops.remove(&h) {
                r.shared.forced_error.lock().clone_from(&forced);
                next.insert(h, r);
                continue;
            }
            let target = Arc::new(t);
            let shared = LoopShared {
                shutdown: lifetime.child_token(),
                ..LoopShared::default()
            };
            shared.forced_error.lock().clone_from(&forced);
            if let Some(client) = pool.client.clone() {
                let (interval, timeout) = target.interval_and_timeout(&pool.cfg);
                let sl = ScrapeLoop {
                    cfg: pool.cfg.clone(),
                    client,
                    target: target.clone(),
                    db: self.db.clone(),
                    interval,
                    timeout,
                    jitter_seed: self.jitter_seed,
                    shared: shared.clone(),
                };
                rt.spawn(sl.run());
            } else {
                let mut s = shared.status.lock();
                s.health = super::scrape_loop::Health::Down;
                s.last_error = pool.client_error.clone().unwrap_or_default();
            }
            next.insert(h, Running { target, shared });
        }
        for (_, r) in std::mem::replace(&mut pool.loops, next) {
            r.shared.stale_on_stop.store(true, Ordering::Release);
            r.shared.cancel.cancel();
        }
    }

    /// Every target with its status, pools in name order, targets by URL.
    pub fn snapshot(&self) -> TargetsSnapshot {
        let inner = self.inner.lock();
        let mut out = TargetsSnapshot::default();
        for (job, pool) in &inner.pools {
            let mut active: Vec<TargetView> = pool
                .loops
                .values()
                .map(|r| {
                    let (interval, timeout) = r.target.interval_and_timeout(&pool.cfg);
                    TargetView {
                        pool: job.clone(),
                        target: r.target.clone(),
                        url: r.target.url(),
                        interval,
                        timeout,
                        status: r.shared.status.lock().clone(),
                    }
                })
                .collect();
            active.sort_by(|a, b| {
                a.url
                    .cmp(&b.url)
                    .then_with(|| a.target.labels.cmp(&b.target.labels))
            });
            out.active.extend(active);
            out.dropped
                .extend(pool.dropped.iter().map(|t| (job.clone(), t.clone())));
        }
        out
    }

    /// A reload that failed: the running config stays, its load time too.
    pub fn record_failed_reload(&self) {
        self.reload_status.lock().0 = false;
    }

    /// (last reload worked, when the config in use was loaded).
    pub fn reload_status(&self) -> (bool, SystemTime) {
        *self.reload_status.lock()
    }

    /// The job names of the config in use, sorted.
    pub fn pool_names(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let mut names: Vec<String> = inner
            .config
            .scrape_configs
            .iter()
            .map(|c| c.job_name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every active target (pools in name order, targets by URL) with the metadata it exposed.
    pub fn target_metadata(&self) -> Vec<TargetMetadata> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for pool in inner.pools.values() {
            let mut targets: Vec<(String, TargetMetadata)> = pool
                .loops
                .values()
                .map(|r| {
                    let list = r
                        .shared
                        .metadata
                        .lock()
                        .iter()
                        .map(|(family, m)| (family.clone(), m.clone()))
                        .collect();
                    (r.target.url(), (r.target.series_labels(), list))
                })
                .collect();
            targets.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
            out.extend(targets.into_iter().map(|(_, t)| t));
        }
        out
    }

    /// The metadata the targets exposed, by metric family (one entry per distinct value).
    pub fn metadata(&self) -> BTreeMap<String, Vec<Metadata>> {
        let inner = self.inner.lock();
        let mut out: BTreeMap<String, Vec<Metadata>> = BTreeMap::new();
        for pool in inner.pools.values() {
            for r in pool.loops.values() {
                for (family, m) in r.shared.metadata.lock().iter() {
                    let list = out.entry(family.clone()).or_default();
                    if !list.contains(m) {
                        list.push(m.clone());
                    }
                }
            }
        }
        out
    }
}

fn stop_pool(pool: Pool, stale: bool) {
    pool.sd_cancel.cancel();
    for (_, r) in pool.loops {
        r.shared.stale_on_stop.store(stale, Ordering::Release);
        r.shared.cancel.cancel();
    }
}

/// Whether two versions of a job store the same series from the same bodies (Prometheus's
/// `reusableCache`): they differ at most in timing, limits and how the target is reached.
fn same_stored_series(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    fn stored_part(c: &ScrapeConfig) -> ScrapeConfig {
        let mut z = c.clone();
        z.scrape_interval = Default::default();
        z.scrape_timeout = Default::default();
        z.sample_limit = 0;
        z.target_limit = 0;
        z.label_limit = 0;
        z.label_name_length_limit = 0;
        z.label_value_length_limit = 0;
        z.body_size_limit = Default::default();
        z.basic_auth = None;
        z.authorization = None;
        z.bearer_token = Default::default();
        z.bearer_token_file = None;
        z.tls_config = Default::default();
        z.follow_redirects = true;
        z.enable_http2 = true;
        z.scrape_protocols = None;
        z.static_configs.clear();
        z.file_sd_configs.clear();
        z.dns_sd_configs.clear();
        z.http_sd_configs.clear();
        z
    }
    stored_part(a) == stored_part(b)
}

/// The jobs to scrape: `file`'s own jobs (any API jobs in it dropped), then each API job
/// whose name no file job has, marked `from_api` and with its interval and timeout filled
/// from `file`'s `global` when it leaves them out.
pub fn with_api_jobs(file: &Config, api: &[ScrapeConfig]) -> Config {
    let mut out = file.clone();
    out.scrape_configs.retain(|j| !j.from_api);
    for job in api {
        if out
            .scrape_configs
            .iter()
            .any(|j| j.job_name == job.job_name)
        {
            tracing::warn!(job = %job.job_name, "the config file defines this job; its API version is ignored");
            continue;
        }
        let mut job = job.clone();
        job.from_api = true;
        out.scrape_configs.push(job);
    }
    out.finalize();
    out
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
