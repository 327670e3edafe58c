//! The Alertmanager notifier of the RuleEvaluator (Prometheus 2.42's `notifier` package, with
//! Strata's fixes). In: the alerts the rule state machine says are due, via
//! [`Notifier::send`], which runs the pure pipeline (`payload`: external labels, alert
//! relabeling, the replica label always removed) and enqueues without waiting. Out: POSTs of
//! `/api/v2/alerts` to every Alertmanager of every `alerting.alertmanagers[]` set (`discovery`)
//! from a tokio task of its own (`sender`, with a bounded retry), metrics (`metrics`), and the
//! `/api/v1/alertmanagers` status. It owns the queue (`queue`), the discovered sets and their
//! HTTP clients. `api_version: v1` is refused when the notifier is built (and by
//! [`check_config`]): Alertmanager has served v2 since 0.16 and Prometheus 3 dropped v1.

pub mod discovery;
pub mod metrics;
pub mod payload;
pub mod queue;
pub mod sender;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use discovery::{alerts_path, SetView};
pub use metrics::NotifierMetrics;
pub use payload::{
    encode_body, from_rule_alert, generator_url, go_query_escape, OutgoingAlert, Pipeline,
    RelabelFn,
};
pub use queue::{AlertQueue, DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY};
pub use sender::RetryPolicy;

use crate::config::AlertingConfig;
use crate::storage::model::Labels;
use discovery::AmSet;

/// The `User-Agent` of every request to an Alertmanager.
pub const USER_AGENT: &str = concat!("Strata/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifierError {
    #[error("alerting.alertmanagers[{index}]: api_version v1 is not supported by Strata; use v2 (served by Alertmanager 0.16 and later)")]
    ApiV1Unsupported { index: usize },
    #[error("alerting.alertmanagers[{index}]: {reason}")]
    HttpClient { index: usize, reason: String },
    #[error("the notifier must be started inside a tokio runtime")]
    NoRuntime,
}

pub type Result<T> = std::result::Result<T, NotifierError>;

/// Checks every Alertmanager set of `cfg` the way [`Notifier::start`] will.
pub fn check_config(cfg: &AlertingConfig) -> Result<()> {
    for (i, am) in cfg.alertmanagers.iter().enumerate() {
        discovery::check_config(i, am)?;
    }
    Ok(())
}

/// What the notifier is built with besides the `alerting` section.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// `global.external_labels`.
    pub external_labels: Labels,
    /// `cluster.replica_label`; removed from every alert before sending.
    pub replica_label: String,
    /// Prometheus relabeling (`scrape::relabel::process`).
    pub relabel: RelabelFn,
    /// The config file's directory, for relative file names.
    pub config_dir: PathBuf,
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub retry: RetryPolicy,
    /// How often `file_sd_configs` files are checked for changes.
    pub sd_poll_interval: Duration,
}

impl NotifierOptions {
    /// Prometheus's defaults (queue 10000, batches of 64) and Strata's retry.
    pub fn new(relabel: RelabelFn) -> Self {
        NotifierOptions {
            external_labels: Labels::empty(),
            replica_label: String::new(),
            relabel,
            config_dir: PathBuf::from("."),
            queue_capacity: DEFAULT_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            retry: RetryPolicy::default(),
            sd_poll_interval: Duration::from_secs(5),
        }
    }
}

/// One entry of `/api/v1/alertmanagers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertmanagerUrl {
    pub url: String,
}

/// The `data` of `/api/v1/alertmanagers`, Prometheus's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagersStatus {
    pub active_alertmanagers: Vec<AlertmanagerUrl>,
    pub dropped_alertmanagers: Vec<AlertmanagerUrl>,
}

/// State shared by the handle, the sending task and the discovery task.
struct Shared {
    queue: Mutex<AlertQueue>,
    more: tokio::sync::Notify,
    pipeline: RwLock<Pipeline>,
    sets: RwLock<Arc<Vec<SetView>>>,
    am_sets: Mutex<Vec<AmSet>>,
    metrics: NotifierMetrics,
    batch_size: usize,
    retry: RetryPolicy,
    config_dir: PathBuf,
}

impl Shared {
    fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }

    fn next_batch(&self) -> Vec<OutgoingAlert> {
        let mut q = self.queue.lock();
        let batch = q.next_batch(self.batch_size);
        self.metrics.set_queue(q.len(), q.capacity());
        batch
    }

    fn sets(&self) -> Arc<Vec<SetView>> {
        self.sets.read().clone()
    }

    /// Recomputes the views of the sets after discovery or a reload.
    fn publish(&self, am_sets: &[AmSet]) {
        let relabel = self.pipeline.read().relabel;
        let views: Vec<SetView> = am_sets.iter().map(|s| s.view(relabel)).collect();
        let mut discovered = 0;
        for v in &views {
            discovered += v.active.len();
            for url in &v.active {
                self.metrics.init_am(url);
            }
        }
        self.metrics.set_discovered(discovered);
        *self.sets.write() = Arc::new(views);
    }

    /// One discovery round: re-reads changed files, republishes on change.
    fn poll(&self) {
        let mut am_sets = self.am_sets.lock();
        let mut changed = false;
        for s in am_sets.iter_mut() {
            changed |= s.poll();
        }
        if changed {
            self.publish(&am_sets);
        }
    }
}

fn build_sets(cfg: &AlertingConfig, dir: &std::path::Path) -> Result<Vec<AmSet>> {
    let mut out = Vec::with_capacity(cfg.alertmanagers.len());
    for (i, am) in cfg.alertmanagers.iter().enumerate() {
        out.push(AmSet::new(i, am, dir)?);
    }
    Ok(out)
}

/// The running notifier. Dropping it (or [`Notifier::stop`]) ends its tasks; alerts still
/// queued are discarded.
pub struct Notifier {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Notifier {
    /// Checks and resolves the Alertmanager sets (files read once, so the first alerts have
    /// somewhere to go) and starts the sending and discovery tasks on the current runtime.
    pub fn start(
        cfg: &AlertingConfig,
        opts: NotifierOptions,
        metrics: NotifierMetrics,
    ) -> Result<Notifier> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| NotifierError::NoRuntime)?;
        let am_sets = build_sets(cfg, &opts.config_dir)?;
        let mut pipeline = Pipeline::new(opts.external_labels, &opts.replica_label, opts.relabel);
        pipeline.alert_relabel_configs = cfg.alert_relabel_configs.clone();
        let queue = AlertQueue::new(opts.queue_capacity);
        metrics.set_queue(0, queue.capacity());
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            more: tokio::sync::Notify::new(),
            pipeline: RwLock::new(pipeline),
            sets: RwLock::new(Arc::new(Vec::new())),
            am_sets: Mutex::new(Vec::new()),
            metrics,
            batch_size: opts.batch_size.max(1),
            retry: opts.retry,
            config_dir: opts.config_dir,
        });
        shared.publish(&am_sets);
        *shared.am_sets.lock() = am_sets;
        let cancel = CancellationToken::new();
        runtime.spawn(sender::run(shared.clone(), cancel.clone()));
        runtime.spawn(discover(
            shared.clone(),
            cancel.clone(),
            opts.sd_poll_interval,
        ));
        Ok(Notifier { shared, cancel })
    }

    /// Runs the pipeline over `alerts` and queues them; never waits for the network. When
    /// the queue is full the oldest alerts are dropped (and counted).
    pub fn send(&self, alerts: Vec<OutgoingAlert>) {
        let alerts = self.shared.pipeline.read().apply(alerts);
        if alerts.is_empty() {
            return;
        }
        let dropped = {
            let mut q = self.shared.queue.lock();
            let dropped = q.push(alerts);
            self.shared.metrics.set_queue(q.len(), q.capacity());
            dropped
        };
        if dropped > 0 {
            tracing::warn!(dropped, "notifier: queue full, dropped the oldest alerts");
            self.shared.metrics.add_dropped(dropped);
        }
        self.shared.more.notify_one();
    }

    /// Replaces the Alertmanager sets and `alert_relabel_configs` (config reload). The new
    /// sets are resolved before they replace the old ones, so no send finds them empty.
    pub fn apply_config(&self, cfg: &AlertingConfig) -> Result<()> {
        let am_sets = build_sets(cfg, &self.shared.config_dir)?;
        self.shared.pipeline.write().alert_relabel_configs = cfg.alert_relabel_configs.clone();
        let mut current = self.shared.am_sets.lock();
        self.shared.publish(&am_sets);
        *current = am_sets;
        Ok(())
    }

    /// Active and dropped Alertmanagers of all sets, for `/api/v1/alertmanagers`.
    pub fn status(&self) -> AlertmanagersStatus {
        let mut st = AlertmanagersStatus::default();
        for set in self.shared.sets().iter() {
            for url in &set.active {
                st.active_alertmanagers
                    .push(AlertmanagerUrl { url: url.clone() });
            }
            for url in &set.dropped {
                st.dropped_alertmanagers
                    .push(AlertmanagerUrl { url: url.clone() });
            }
        }
        st
    }

    pub fn metrics(&self) -> &NotifierMetrics {
        &self.shared.metrics
    }

    /// Alerts waiting to be sent.
    pub fn queue_length(&self) -> usize {
        self.shared.queue_len()
    }

    /// Ends the sending and discovery tasks.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Polls the sets' files off the async workers (file reads block).
async fn discover(shared: Arc<Shared>, cancel: CancellationToken, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = shared.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || s.poll()).await {
            tracing::error!(error = %e, "notifier: discovery round failed");
        }
    }
}

#[cfg(test)]
mod live_tests;

#[cfg(test)]
mod test_support;
