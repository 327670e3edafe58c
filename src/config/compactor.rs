//! The `compactor:` section: how the Compactor role (and `strata tools bucket compact`)
//! compacts, deduplicates, retains and deletes the bucket's blocks. Defaults are Thanos's where
//! Thanos has one (levels 2h/8h/2d/14d, 30m consistency delay, 48h delete delay, retention 0 =
//! forever); validation names the key that is wrong.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Result};
use super::units::{ByteSize, PromDuration};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactorConfig {
    /// Time between two passes over the bucket.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// The compaction levels: the first is the size of the blocks that arrive (2h), each next
    /// one a range that complete sets of smaller blocks are compacted into.
    #[serde(default = "default_block_ranges")]
    pub block_ranges: Vec<PromDuration>,
    /// Blocks younger than this (from their upload time) are left alone: they may still be
    /// uploading elsewhere. Blocks the compactor made itself are exempt.
    #[serde(default = "default_consistency_delay")]
    pub consistency_delay: PromDuration,
    /// Time between a block's deletion mark and its deletion, so queries that still read it
    /// finish and every store has moved to its replacement.
    #[serde(default = "default_delete_delay")]
    pub delete_delay: PromDuration,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Peak memory one compaction may use.
    #[serde(default = "default_memory_budget")]
    pub memory_budget: ByteSize,
    /// Streams compacted at once on one node.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Vertical compaction of HA replicas (blocks that differ only by `cluster.replica_label`)
    /// into one deduplicated stream.
    #[serde(default = "default_dedup")]
    pub dedup: bool,
    /// Downsample raw blocks spanning 40h or more to 5m, and 5m blocks spanning 10d or more
    /// to 1h, after compaction (the inverse of Thanos's `--downsampling.disable`).
    #[serde(default = "default_downsample")]
    pub downsample: bool,
}

/// Retention per resolution; `0s` keeps blocks forever.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default)]
    pub raw: PromDuration,
    #[serde(default, rename = "5m")]
    pub five_m: PromDuration,
    #[serde(default, rename = "1h")]
    pub one_h: PromDuration,
}

fn default_interval() -> PromDuration {
    PromDuration::from_mins(5)
}

fn default_block_ranges() -> Vec<PromDuration> {
    vec![
        PromDuration::from_hours(2),
        PromDuration::from_hours(8),
        PromDuration::from_days(2),
        PromDuration::from_days(14),
    ]
}

fn default_consistency_delay() -> PromDuration {
    PromDuration::from_mins(30)
}

fn default_delete_delay() -> PromDuration {
    PromDuration::from_hours(48)
}

fn default_memory_budget() -> ByteSize {
    ByteSize(512 << 20)
}

fn default_concurrency() -> usize {
    1
}

fn default_dedup() -> bool {
    true
}

fn default_downsample() -> bool {
    true
}

/// Thanos refuses to start with downsampling on and raw retention below this: a raw block
/// must live long enough to reach the 40h a 5m downsampling needs.
const MIN_RAW_RETENTION_MS: u64 = 40 * 3_600_000;
/// Likewise for 5m blocks and the 10d a 1h downsampling needs.
const MIN_5M_RETENTION_MS: u64 = 10 * 24 * 3_600_000;

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            interval: default_interval(),
            block_ranges: default_block_ranges(),
            consistency_delay: default_consistency_delay(),
            delete_delay: default_delete_delay(),
            retention: RetentionConfig::default(),
            memory_budget: default_memory_budget(),
            concurrency: default_concurrency(),
            dedup: default_dedup(),
            downsample: default_downsample(),
        }
    }
}

/// Below this a compaction cannot hold one series' chunks and the output's postings.
const MIN_MEMORY_BUDGET: u64 = 16 << 20;

impl CompactorConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.interval.is_zero() {
            return Err(ConfigError::invalid(
                "compactor.interval",
                "must be a positive duration, got 0s",
            ));
        }
        if self.block_ranges.len() < 2 {
            return Err(ConfigError::invalid(
                "compactor.block_ranges",
                "needs at least two ranges: the size blocks arrive in and one to compact into",
            ));
        }
        for (i, pair) in self.block_ranges.windows(2).enumerate() {
            let (small, big) = (pair[0].as_millis(), pair[1].as_millis());
            if small == 0 {
                return Err(ConfigError::invalid(
                    format!("compactor.block_ranges[{i}]"),
                    "must be a positive duration, got 0s",
                ));
            }
            if big <= small || big % small != 0 {
                return Err(ConfigError::invalid(
                    format!("compactor.block_ranges[{}]", i + 1),
                    format!(
                        "must be a larger multiple of the range before it ({}), got {}",
                        pair[0], pair[1]
                    ),
                ));
            }
        }
        if self.memory_budget.0 < MIN_MEMORY_BUDGET {
            return Err(ConfigError::invalid(
                "compactor.memory_budget",
                format!("must be at least 16MiB, got {} bytes", self.memory_budget.0),
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "compactor.concurrency",
                "must be at least 1",
            ));
        }
        if self.downsample {
            // Thanos's check (`cmd/thanos/compact.go`): with retention shorter than the span
            // downsampling needs, data would be deleted before it could be downsampled.
            let raw = self.retention.raw.as_millis();
            if raw != 0 && raw < MIN_RAW_RETENTION_MS {
                return Err(ConfigError::invalid(
                    "compactor.retention.raw",
                    format!(
                        "must be 0 (forever) or at least 40h while compactor.downsample is on \
                         (raw blocks are downsampled once they span 40h), got {}",
                        self.retention.raw
                    ),
                ));
            }
            let five_m = self.retention.five_m.as_millis();
            if five_m != 0 && five_m < MIN_5M_RETENTION_MS {
                return Err(ConfigError::invalid(
                    "compactor.retention.5m",
                    format!(
                        "must be 0 (forever) or at least 10d while compactor.downsample is on \
                         (5m blocks are downsampled once they span 10d), got {}",
                        self.retention.five_m
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> std::result::Result<CompactorConfig, String> {
        let c: CompactorConfig = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_thanos_defaults() {
        let c = parse("{}").unwrap();
        assert_eq!(c, CompactorConfig::default());
        assert_eq!(c.block_ranges.len(), 4);
        assert_eq!(c.block_ranges[3], PromDuration::from_days(14));
        assert_eq!(c.consistency_delay, PromDuration::from_mins(30));
        assert_eq!(c.delete_delay, PromDuration::from_hours(48));
        assert!(c.retention.raw.is_zero() && c.retention.five_m.is_zero());
        assert_eq!(c.memory_budget.0, 512 << 20);
        assert!(c.dedup);
        assert!(c.downsample);
    }

    #[test]
    fn short_retention_is_refused_only_while_downsampling() {
        for (yaml, key) in [
            ("retention: {raw: 39h}", "compactor.retention.raw"),
            ("retention: {raw: 2d, 5m: 9d}", "compactor.retention.5m"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(key), "{yaml}: {err}");
            let off = format!("{yaml}\ndownsample: false\n");
            assert!(parse(&off).is_ok(), "{off}");
        }
        let c = parse("retention: {raw: 40h, 5m: 10d, 1h: 1h}").unwrap();
        assert!(c.downsample);
        assert!(parse("retention: {raw: 0s, 5m: 0s}").is_ok());
    }

    #[test]
    fn every_key_parses() {
        let c = parse(
            "interval: 1m\nblock_ranges: [1h, 4h]\nconsistency_delay: 0s\ndelete_delay: 10s\n\
             retention: {raw: 30d, 5m: 90d, 1h: 1y}\nmemory_budget: 64MiB\nconcurrency: 2\ndedup: false\n",
        )
        .unwrap();
        assert_eq!(
            c.block_ranges,
            vec![PromDuration::from_hours(1), PromDuration::from_hours(4)]
        );
        assert_eq!(c.retention.five_m, PromDuration::from_days(90));
        assert_eq!(c.memory_budget.0, 64 << 20);
        assert_eq!((c.concurrency, c.dedup), (2, false));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (yaml, key) in [
            ("interval: 0s", "compactor.interval"),
            ("block_ranges: [2h]", "compactor.block_ranges"),
            ("block_ranges: [2h, 3h]", "compactor.block_ranges[1]"),
            ("block_ranges: [2h, 1h]", "compactor.block_ranges[1]"),
            ("memory_budget: 1MiB", "compactor.memory_budget"),
            ("concurrency: 0", "compactor.concurrency"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(key), "{yaml}: {err}");
        }
        assert!(
            parse("retention: {raw: 1d, 2h: 3d}").is_err(),
            "unknown resolution"
        );
        assert!(parse("compact_level: 3").is_err(), "unknown key");
    }
}
