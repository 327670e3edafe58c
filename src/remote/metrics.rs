//! Remote write's metrics under Prometheus 2.42's names (`prometheus_remote_storage_*`,
//! labelled `remote_name` and `url`), so the dashboards users have for Prometheus's remote
//! write read Strata's unchanged. Prometheus's batch duration is a histogram there too.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub remote_name: String,
    pub url: String,
}

type Counters = Family<EndpointLabels, Counter>;
type Gauges = Family<EndpointLabels, Gauge>;

fn duration_histogram() -> Histogram {
    // Prometheus's buckets: DefBuckets plus 25, 60, 120 and 300 s; these span the same range.
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Handles to the remote-write metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteWriteMetrics {
    pub samples: Counters,
    pub samples_failed: Counters,
    pub samples_retried: Counters,
    pub samples_dropped: Counters,
    pub samples_pending: Gauges,
    pub samples_in: Counter,
    pub bytes: Counters,
    pub metadata: Counters,
    pub metadata_failed: Counters,
    pub metadata_retried: Counters,
    pub metadata_bytes: Counters,
    pub shards: Gauges,
    pub shards_desired: Gauges,
    pub shards_max: Gauges,
    pub shards_min: Gauges,
    pub shard_capacity: Gauges,
    pub highest_timestamp_in: Gauge,
    pub highest_sent: Gauges,
    pub sent_batch_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
}

impl Default for RemoteWriteMetrics {
    fn default() -> Self {
        RemoteWriteMetrics {
            samples: Counters::default(),
            samples_failed: Counters::default(),
            samples_retried: Counters::default(),
            samples_dropped: Counters::default(),
            samples_pending: Gauges::default(),
            samples_in: Counter::default(),
            bytes: Counters::default(),
            metadata: Counters::default(),
            metadata_failed: Counters::default(),
            metadata_retried: Counters::default(),
            metadata_bytes: Counters::default(),
            shards: Gauges::default(),
            shards_desired: Gauges::default(),
            shards_max: Gauges::default(),
            shards_min: Gauges::default(),
            shard_capacity: Gauges::default(),
            highest_timestamp_in: Gauge::default(),
            highest_sent: Gauges::default(),
            sent_batch_duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl RemoteWriteMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = RemoteWriteMetrics::default();
        let r = registry.sub_registry_with_prefix("prometheus_remote_storage");
        r.register(
            "samples",
            "Total number of samples sent to remote storage.",
            m.samples.clone(),
        );
        r.register(
            "samples_failed",
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            m.samples_failed.clone(),
        );
        r.register(
            "samples_retried",
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
            m.samples_retried.clone(),
        );
        r.register(
            "samples_dropped",
            "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
            m.samples_dropped.clone(),
        );
        r.register(
            "samples_pending",
            "The number of samples pending in the queues shards to be sent to the remote storage.",
            m.samples_pending.clone(),
        );
        r.register(
            "samples_in",
            "Samples in to remote storage, compare to samples out for queue managers.",
            m.samples_in.clone(),
        );
        r.register(
            "bytes",
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            m.bytes.clone(),
        );
        r.register(
            "metadata",
            "Total number of metadata entries sent to remote storage.",
            m.metadata.clone(),
        );
        r.register("metadata_failed", "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.", m.metadata_failed.clone());
        r.register("metadata_retried", "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.", m.metadata_retried.clone());
        r.register(
            "metadata_bytes",
            "The total number of bytes of metadata sent by the queue after compression.",
            m.metadata_bytes.clone(),
        );
        r.register(
            "shards",
            "The number of shards used for parallel sending to the remote storage.",
            m.shards.clone(),
        );
        r.register("shards_desired", "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.", m.shards_desired.clone());
        r.register(
            "shards_max",
            "The maximum number of shards that the queue is allowed to run.",
            m.shards_max.clone(),
        );
        r.register(
            "shards_min",
            "The minimum number of shards that the queue is allowed to run.",
            m.shards_min.clone(),
        );
        r.register("shard_capacity", "The capacity of each shard of the queue used for parallel sending to the remote storage.", m.shard_capacity.clone());
        r.register("highest_timestamp_in_seconds", "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.", m.highest_timestamp_in.clone());
        r.register("queue_highest_sent_timestamp_seconds", "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.", m.highest_sent.clone());
        r.register(
            "sent_batch_duration_seconds",
            "Duration of send calls to the remote storage.",
            m.sent_batch_duration.clone(),
        );
        m
    }
}
