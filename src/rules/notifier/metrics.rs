//! The notifier's metrics, named after Prometheus's `prometheus_notifications_*` with Strata's
//! `strata_` prefix so dashboards port by a prefix swap. Counts follow Prometheus 2.42:
//! `sent_total` adds the batch's alert count for every attempt to an Alertmanager (failed or
//! not), `errors_total` counts failed requests, `dropped_total` counts alerts lost (queue
//! overflow, or a batch no Alertmanager accepted). Prometheus's latency is a summary;
//! prometheus-client has none, so Strata exports a histogram of the same name.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AmLabel {
    pub alertmanager: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s: a local Alertmanager up to the default 10 s timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Handles to the notifier metrics; cheap to clone (the families are shared).
#[derive(Clone, Debug)]
pub struct NotifierMetrics {
    sent: Family<AmLabel, Counter>,
    errors: Family<AmLabel, Counter>,
    dropped: Counter,
    queue_length: Gauge,
    queue_capacity: Gauge,
    latency: Family<AmLabel, Histogram, fn() -> Histogram>,
    discovered: Gauge,
}

impl Default for NotifierMetrics {
    fn default() -> Self {
        Self::unregistered()
    }
}

impl NotifierMetrics {
    /// Creates the metrics and registers them as `strata_notifications_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let sub = registry.sub_registry_with_prefix("strata_notifications");
        sub.register(
            "sent",
            "Alerts sent to an Alertmanager (every attempt), by Alertmanager URL",
            m.sent.clone(),
        );
        sub.register(
            "errors",
            "Failed requests to an Alertmanager, by Alertmanager URL",
            m.errors.clone(),
        );
        sub.register(
            "dropped",
            "Alerts dropped: queue overflow, or a batch no Alertmanager accepted",
            m.dropped.clone(),
        );
        sub.register(
            "queue_length",
            "Alerts waiting in the notification queue",
            m.queue_length.clone(),
        );
        sub.register(
            "queue_capacity",
            "Capacity of the notification queue",
            m.queue_capacity.clone(),
        );
        sub.register(
            "latency_seconds",
            "Duration of requests to an Alertmanager, by Alertmanager URL",
            m.latency.clone(),
        );
        sub.register(
            "alertmanagers_discovered",
            "Alertmanagers the notifier currently sends to",
            m.discovered.clone(),
        );
        m
    }

    /// Metrics attached to no registry (tests, tools).
    pub fn unregistered() -> Self {
        NotifierMetrics {
            sent: Family::default(),
            errors: Family::default(),
            dropped: Counter::default(),
            queue_length: Gauge::default(),
            queue_capacity: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            discovered: Gauge::default(),
        }
    }

    fn am(url: &str) -> AmLabel {
        AmLabel {
            alertmanager: url.to_string(),
        }
    }

    pub fn sent(&self, url: &str) -> u64 {
        self.sent.get_or_create(&Self::am(url)).get()
    }

    pub fn errors(&self, url: &str) -> u64 {
        self.errors.get_or_create(&Self::am(url)).get()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub fn queue_length(&self) -> i64 {
        self.queue_length.get()
    }

    pub fn discovered(&self) -> i64 {
        self.discovered.get()
    }

    /// Shows an Alertmanager's counters at 0 from discovery on, as Prometheus does.
    pub(super) fn init_am(&self, url: &str) {
        let _ = self.sent.get_or_create(&Self::am(url));
        let _ = self.errors.get_or_create(&Self::am(url));
    }

    pub(super) fn record_attempt(&self, url: &str, alerts: usize, ok: bool, secs: f64) {
        let l = Self::am(url);
        self.sent.get_or_create(&l).inc_by(alerts as u64);
        if !ok {
            self.errors.get_or_create(&l).inc();
        }
        self.latency.get_or_create(&l).observe(secs);
    }

    pub(super) fn add_dropped(&self, n: usize) {
        if n > 0 {
            self.dropped.inc_by(n as u64);
        }
    }

    pub(super) fn set_queue(&self, length: usize, capacity: usize) {
        self.queue_length
            .set(i64::try_from(length).unwrap_or(i64::MAX));
        self.queue_capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    pub(super) fn set_discovered(&self, n: usize) {
        self.discovered.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
