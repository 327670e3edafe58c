//! The dry run of one scrape job, before the scrape-config API stores it: discover its
//! targets now (static configs, and file_sd files read once), relabel them as the pool would,
//! scrape each active target once with the job's own client, timeout, auth and limits, and
//! report per target whether it answered, how many samples it exposed and how many series
//! would be stored after metric relabeling (and the `lint: drop` policy), its naming problems,
//! and what it would cost per day. Nothing is written to the TSDB.
//!
//! The cost estimate is the series count times the scrapes per day (86 400 s / the job's
//! interval) for samples, and that times [`BYTES_PER_SAMPLE`] for bytes: Prometheus's
//! documentation puts a compressed sample at 1–2 bytes, and regular scrapes of slowly moving
//! values sit at the low end, so 1.5 is an estimate, not a measurement of this target.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::append::{mutate_sample_labels, AppendCtx};
use super::file_sd;
use super::lint::{lint_body, Problem};
use super::parser::{Entry, Parser};
use super::scrape_loop::{build_client, fetch_body};
use super::target::{static_groups, targets_from_group, Target};
use crate::config::{LintPolicy, ScrapeConfig};

/// Bytes one stored sample costs in the estimate (see the module doc).
pub const BYTES_PER_SAMPLE: f64 = 1.5;

/// One target's dry run.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetDryRun {
    /// Labels after relabeling, without the `__` ones (the target's series labels).
    pub labels: BTreeMap<String, String>,
    pub scrape_url: String,
    /// Whether the target answered with a body that parses.
    pub reachable: bool,
    /// Why not, in the words `/api/v1/targets` would use.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub scrape_duration_seconds: f64,
    /// Samples in the body (`scrape_samples_scraped`).
    pub samples_scraped: u64,
    /// Series that would be stored (`scrape_samples_post_metric_relabeling`).
    pub series: u64,
    pub samples_per_day: u64,
    pub estimated_bytes_per_day: u64,
    pub lint_problems: Vec<Problem>,
}

/// The dry run of a job.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunReport {
    pub targets: Vec<TargetDryRun>,
    /// Targets relabeling drops (not scraped).
    pub dropped_targets: usize,
    /// Discovery problems: unreadable file_sd files, invalid target labels.
    pub discovery_errors: Vec<String>,
    pub series: u64,
    pub samples_per_day: u64,
    pub estimated_bytes_per_day: u64,
}

/// Scrapes every target of `cfg` once. `cfg` has its interval and timeout filled in
/// (`Config::finalize`); `resolve` makes the config's relative paths absolute.
pub async fn dry_run(cfg: &ScrapeConfig, resolve: impl Fn(&Path) -> PathBuf) -> DryRunReport {
    let mut report = DryRunReport::default();
    let mut groups = static_groups(cfg);
    for sd in &cfg.file_sd_configs {
        let patterns: Vec<PathBuf> = sd.files.iter().map(|f| resolve(Path::new(f))).collect();
        let (found, errors) = file_sd::read_once(&patterns);
        groups.extend(found);
        report.discovery_errors.extend(errors);
    }
    let mut targets: Vec<Target> = Vec::new();
    for g in &groups {
        let (found, errors) = targets_from_group(g, cfg);
        report
            .discovery_errors
            .extend(errors.iter().map(|e| e.to_string()));
        for t in found {
            if t.is_dropped() {
                report.dropped_targets += 1;
            } else {
                targets.push(t);
            }
        }
    }
    let client = match build_client(cfg, &resolve) {
        Ok(c) => c,
        Err(e) => {
            report.discovery_errors.push(e);
            return report;
        }
    };
    let runs = targets.iter().map(|t| scrape_target(cfg, &client, t));
    report.targets = futures::future::join_all(runs).await;
    for t in &report.targets {
        report.series += t.series;
        report.samples_per_day += t.samples_per_day;
        report.estimated_bytes_per_day += t.estimated_bytes_per_day;
    }
    report
}

async fn scrape_target(cfg: &ScrapeConfig, client: &reqwest::Client, t: &Target) -> TargetDryRun {
    let target_labels = t.series_labels();
    let mut out = TargetDryRun {
        labels: target_labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
        scrape_url: t.url(),
        ..Default::default()
    };
    let (interval, timeout) = t.interval_and_timeout(cfg);
    let started = Instant::now();
    let mut body = Vec::new();
    let fetched = fetch_body(client, cfg, &out.scrape_url, timeout, &mut body).await;
    out.scrape_duration_seconds = started.elapsed().as_secs_f64();
    let format = match fetched {
        Ok(f) => f,
        Err(e) => {
            out.error = e.to_string();
            return out;
        }
    };
    let problems = match lint_body(&body, format) {
        Ok(p) => p,
        Err(e) => {
            out.error = e.to_string();
            return out;
        }
    };
    let dropped: HashSet<String> = match cfg.lint {
        LintPolicy::Drop => problems.iter().map(|p| p.metric.clone()).collect(),
        LintPolicy::Warn => HashSet::new(),
    };
    let ctx = AppendCtx {
        cfg,
        target_labels: &target_labels,
        lint_dropped: Some(&dropped),
    };
    let mut parser = Parser::new(&body, format);
    loop {
        match parser.next_entry() {
            Ok(Some(Entry::Sample(s))) => {
                out.samples_scraped += 1;
                if mutate_sample_labels(&s, &ctx).is_some() {
                    out.series += 1;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                out.error = e.to_string();
                return out;
            }
        }
    }
    out.reachable = true;
    out.lint_problems = problems;
    if cfg.sample_limit > 0 && out.series > cfg.sample_limit {
        out.error = format!(
            "sample limit exceeded: {} series, sample_limit {}; every scrape would fail",
            out.series, cfg.sample_limit
        );
    }
    out.samples_per_day = out.series * scrapes_per_day(interval);
    out.estimated_bytes_per_day = (out.samples_per_day as f64 * BYTES_PER_SAMPLE).round() as u64;
    out
}

fn scrapes_per_day(interval: Duration) -> u64 {
    let ms = interval.as_millis().max(1) as u64;
    86_400_000 / ms
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_day_has_5760_scrapes_at_15s() {
        assert_eq!(scrapes_per_day(Duration::from_secs(15)), 5760);
        assert_eq!(scrapes_per_day(Duration::from_secs(60)), 1440);
    }

    #[tokio::test]
    async fn an_unreachable_target_is_reported_not_an_error() {
        let mut cfg = ScrapeConfig::new("j");
        cfg.scrape_interval = crate::config::PromDuration::from_secs(15);
        cfg.scrape_timeout = crate::config::PromDuration::from_secs(1);
        cfg.static_configs = vec![serde_norway::from_str("targets: ['127.0.0.1:1']").unwrap()];
        let r = dry_run(&cfg, |p| p.to_path_buf()).await;
        assert_eq!(r.targets.len(), 1);
        let t = &r.targets[0];
        assert!(!t.reachable);
        assert!(t.error.contains("127.0.0.1:1"), "{}", t.error);
        assert_eq!(t.labels["instance"], "127.0.0.1:1");
        assert_eq!(r.series, 0);
    }
}
