//! The config file's `compactor:` section (with `cluster.replica_label`) in the shape the
//! executor takes; the Compactor role and `strata tools bucket compact` build their settings
//! here, so both run the same pass.

use std::path::PathBuf;

use super::exec::CompactorSettings;
use super::plan::{PlannerConfig, Retention};
use crate::config::Config;

fn ms(d: crate::config::PromDuration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The executor's settings for `cfg`, working in `scratch_dir`.
pub fn settings_from_config(cfg: &Config, scratch_dir: PathBuf) -> CompactorSettings {
    let c = &cfg.compactor;
    let planner = PlannerConfig {
        ranges_ms: c.block_ranges.iter().map(|d| ms(*d)).collect(),
        replica_labels: vec![cfg.cluster.replica_label.clone()],
        dedup: c.dedup,
    };
    let mut s = CompactorSettings::new(planner, scratch_dir);
    s.consistency_delay = c.consistency_delay.as_std();
    s.delete_delay = c.delete_delay.as_std();
    s.retention = Retention {
        raw_ms: ms(c.retention.raw),
        five_m_ms: ms(c.retention.five_m),
        one_h_ms: ms(c.retention.one_h),
    };
    s.memory_budget_bytes = c.memory_budget.0;
    s.concurrency = c.concurrency.max(1);
    s.downsample = c.downsample;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_section_reaches_the_executor() {
        let cfg = Config::from_yaml_str(
            "cluster: {replica_label: rep}\ncompactor:\n  block_ranges: [1h, 4h]\n  consistency_delay: 1m\n  retention: {raw: 2d}\n  memory_budget: 64MiB\n  dedup: false\n",
            "t.yml",
        )
        .unwrap();
        let s = settings_from_config(&cfg, PathBuf::from("/tmp/x"));
        assert_eq!(s.planner.ranges_ms, vec![3_600_000, 14_400_000]);
        assert_eq!(s.planner.replica_labels, vec!["rep".to_string()]);
        assert!(!s.planner.dedup);
        assert_eq!(s.consistency_delay.as_secs(), 60);
        assert_eq!(s.retention.raw_ms, 2 * 86_400_000);
        assert_eq!(s.retention.one_h_ms, 0);
        assert_eq!(s.memory_budget_bytes, 64 << 20);
        assert!(s.downsample, "on by default");
        let off = Config::from_yaml_str("compactor: {downsample: false}\n", "t.yml").unwrap();
        assert!(!settings_from_config(&off, PathBuf::from("/tmp/x")).downsample);
    }
}
