//! The compactor's metrics (`strata_compactor_*`), prometheus-client types registered into a
//! registry the caller passes in, like `storage::bucket::metrics`. Counters are registered
//! without the `_total` suffix; the encoder appends it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    pub file: String,
}

/// Handles to the compactor metrics. Cheap to clone (the metrics are shared).
#[derive(Clone, Debug)]
pub struct CompactorMetrics {
    pub groups_planned: Counter,
    pub groups_compacted: Counter,
    pub blocks_marked: Family<ReasonLabels, Counter>,
    pub bytes_read: Counter,
    pub bytes_written: Counter,
    pub pass_duration: Histogram,
    pub last_successful_pass: Gauge<f64, AtomicU64>,
    pub pass_failures: Counter,
    pub group_progress: Gauge<f64, AtomicU64>,
    pub blocks_deleted: Counter,
    pub invalid_files: Family<FileLabels, Counter>,
    pub downsamples: Counter,
    pub downsample_failures: Counter,
}

impl Default for CompactorMetrics {
    fn default() -> Self {
        Self::unregistered()
    }
}

impl CompactorMetrics {
    /// Creates the metrics and registers them as `strata_compactor_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let sub = registry.sub_registry_with_prefix("strata_compactor");
        sub.register(
            "groups_planned",
            "Compaction plans the planner produced (one group of input blocks each)",
            m.groups_planned.clone(),
        );
        sub.register(
            "groups_compacted",
            "Compaction plans carried out: output uploaded and inputs marked for deletion",
            m.groups_compacted.clone(),
        );
        sub.register(
            "blocks_marked",
            "Marks written, by reason: deletion marks (compacted, retention, duplicate) and no-compact marks (their reason)",
            m.blocks_marked.clone(),
        );
        sub.register(
            "bytes_read",
            "Bytes of input blocks downloaded from the bucket",
            m.bytes_read.clone(),
        );
        sub.register(
            "bytes_written",
            "Bytes of compacted blocks uploaded to the bucket",
            m.bytes_written.clone(),
        );
        sub.register(
            "pass_duration_seconds",
            "Duration of compactor passes over the bucket",
            m.pass_duration.clone(),
        );
        sub.register(
            "last_successful_pass_timestamp_seconds",
            "Unix time of the last pass that ended without an error",
            m.last_successful_pass.clone(),
        );
        sub.register(
            "pass_failures",
            "Passes that failed or left errors to retry in the next pass",
            m.pass_failures.clone(),
        );
        sub.register(
            "group_progress_ratio",
            "Progress of the plan being carried out, 0 to 1 (download, merge, upload)",
            m.group_progress.clone(),
        );
        sub.register(
            "blocks_deleted",
            "Blocks deleted from the bucket (deletion mark past the delete delay, or abandoned partial uploads)",
            m.blocks_deleted.clone(),
        );
        sub.register(
            "invalid_block_files",
            "Unparseable meta.json or mark files met while listing; their blocks are skipped, never deleted",
            m.invalid_files.clone(),
        );
        sub.register(
            "downsample",
            "Blocks downsampled (raw to 5m, 5m to 1h) and uploaded",
            m.downsamples.clone(),
        );
        sub.register(
            "downsample_failures",
            "Downsamplings that failed: inputs marked no-downsample, or local errors retried next pass",
            m.downsample_failures.clone(),
        );
        m
    }

    /// Metrics not attached to any registry (tests, tools).
    pub fn unregistered() -> Self {
        CompactorMetrics {
            groups_planned: Counter::default(),
            groups_compacted: Counter::default(),
            blocks_marked: Family::default(),
            bytes_read: Counter::default(),
            bytes_written: Counter::default(),
            // 1 s .. ~9 h.
            pass_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            last_successful_pass: Gauge::default(),
            pass_failures: Counter::default(),
            group_progress: Gauge::default(),
            blocks_deleted: Counter::default(),
            invalid_files: Family::default(),
            downsamples: Counter::default(),
            downsample_failures: Counter::default(),
        }
    }

    pub fn inc_marked(&self, reason: &str) {
        self.blocks_marked
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn marked(&self, reason: &str) -> u64 {
        self.blocks_marked
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .get()
    }

    pub fn inc_invalid(&self, file: &str) {
        self.invalid_files
            .get_or_create(&FileLabels {
                file: file.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut reg = Registry::default();
        let m = CompactorMetrics::register(&mut reg);
        m.inc_marked("compacted");
        m.inc_invalid("meta.json");
        m.groups_planned.inc();
        m.pass_duration.observe(3.0);
        m.last_successful_pass.set(1.5);
        m.group_progress.set(0.5);
        let mut out = String::new();
        encode(&mut out, &reg).unwrap();
        for name in [
            "strata_compactor_groups_planned_total 1",
            "strata_compactor_groups_compacted_total 0",
            "strata_compactor_blocks_marked_total{reason=\"compacted\"} 1",
            "strata_compactor_bytes_read_total 0",
            "strata_compactor_bytes_written_total 0",
            "strata_compactor_pass_duration_seconds_count 1",
            "strata_compactor_last_successful_pass_timestamp_seconds 1.5",
            "strata_compactor_pass_failures_total 0",
            "strata_compactor_group_progress_ratio 0.5",
            "strata_compactor_blocks_deleted_total 0",
            "strata_compactor_invalid_block_files_total{file=\"meta.json\"} 1",
            "strata_compactor_downsample_total 0",
            "strata_compactor_downsample_failures_total 0",
        ] {
            assert!(out.contains(name), "{name} missing in:\n{out}");
        }
        assert_eq!(m.marked("compacted"), 1);
    }
}
