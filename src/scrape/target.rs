//! Scrape targets: turning discovered target groups (static or file-based) into the targets a
//! scrape pool runs, exactly like Prometheus 2.42's `targetsFromGroup` + `PopulateLabels`
//! (job/interval/timeout/path/scheme defaults, `__param_*`, `relabel_configs`, default ports,
//! meta-label removal, `instance` default), plus the per-target facts a scrape loop needs: its
//! URL, its label set for stored series, its stable hash and its jittered start offset.

use std::collections::BTreeMap;
use std::time::Duration;

use xxhash_rust::xxh3::Xxh3;

use super::relabel::{process_builder, LabelsBuilder};
use crate::config::{PromDuration, ScrapeConfig};
use crate::storage::model::{Label, Labels};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_PREFIX: &str = "__";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("invalid scheme: {0:?}")]
    InvalidScheme(String),
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    #[error("error parsing scrape {what}: {reason}")]
    BadDuration { what: &'static str, reason: String },
    #[error("scrape {0} cannot be 0")]
    ZeroDuration(&'static str),
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutAboveInterval { timeout: String, interval: String },
    #[error("invalid label value for {name:?}: {value:?}")]
    InvalidLabelValue { name: String, value: String },
}

pub type Result<T> = std::result::Result<T, TargetError>;

/// A group of targets sharing labels, as service discovery hands it over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Where the group came from (`static/0`, a file path and index), for stable identity.
    pub source: String,
    /// Each target's own labels; always holds `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
}

/// One target a pool scrapes (or dropped by relabeling, then `labels` is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The labels before relabeling, as `/api/v1/targets` shows `discoveredLabels`.
    pub discovered: Labels,
    /// The labels after relabeling, including `__`-prefixed ones like `__address__`.
    pub labels: Labels,
    /// Query parameters from the scrape config (`__param_*` labels override them).
    pub params: BTreeMap<String, Vec<String>>,
}

/// The discovered labels plus the job's scrape defaults (job, interval, timeout, path, scheme,
/// `__param_*`): what Prometheus shows as a target's `discoveredLabels`.
pub fn with_scrape_defaults(discovered: &Labels, cfg: &ScrapeConfig) -> Labels {
    defaults_builder(discovered, cfg).labels()
}

fn defaults_builder(discovered: &Labels, cfg: &ScrapeConfig) -> LabelsBuilder {
    let mut lb = LabelsBuilder::new(discovered);
    let interval = cfg.scrape_interval.to_string();
    let timeout = cfg.scrape_timeout.to_string();
    let defaults = [
        ("job", cfg.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, interval.as_str()),
        (SCRAPE_TIMEOUT_LABEL, timeout.as_str()),
        (METRICS_PATH_LABEL, cfg.metrics_path.as_str()),
    ];
    for (name, value) in defaults {
        if lb.get(name).is_empty() {
            lb.set(name, value);
        }
    }
    if lb.get(SCHEME_LABEL).is_empty() {
        lb.set(SCHEME_LABEL, &cfg.scheme.to_string());
    }
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            lb.set(&format!("{PARAM_LABEL_PREFIX}{k}"), first);
        }
    }
    lb
}

/// Prometheus's `PopulateLabels`: `Ok(None)` when relabeling dropped the target.
pub fn populate_labels(discovered: &Labels, cfg: &ScrapeConfig) -> Result<Option<Labels>> {
    let interval = cfg.scrape_interval.to_string();
    let timeout = cfg.scrape_timeout.to_string();
    let mut lb = defaults_builder(discovered, cfg);
    if !process_builder(&mut lb, &cfg.relabel_configs) {
        return Ok(None);
    }
    let mut addr = lb.get(ADDRESS_LABEL).to_string();
    if addr.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if needs_port(&addr) {
        match lb.get(SCHEME_LABEL) {
            "http" | "" => addr.push_str(":80"),
            "https" => addr.push_str(":443"),
            _ => return Err(TargetError::InvalidScheme(cfg.scheme.to_string())),
        }
        lb.set(ADDRESS_LABEL, &addr);
    }
    if addr.contains('/') {
        return Err(TargetError::InvalidAddress(addr));
    }
    let (int_s, int_d) = duration_label(&lb, SCRAPE_INTERVAL_LABEL, &interval, "interval")?;
    let (to_s, to_d) = duration_label(&lb, SCRAPE_TIMEOUT_LABEL, &timeout, "timeout")?;
    // Prometheus compares only durations that relabeling changed (zero otherwise).
    if to_d > int_d {
        return Err(TargetError::TimeoutAboveInterval {
            timeout: to_s,
            interval: int_s,
        });
    }
    let mut out: Vec<Label> = Vec::new();
    for l in lb.labels().iter() {
        if !l.name.starts_with(META_LABEL_PREFIX) {
            out.push(l.clone());
        }
    }
    let mut labels = Labels::new(out);
    if labels.get("instance").is_none() {
        labels = labels.with("instance", &addr);
    }
    // Label values are Rust strings, so always valid UTF-8 (Prometheus's only value check).
    Ok(Some(labels))
}

/// The interval or timeout label's text and, when relabeling changed it, its parsed value
/// (zero when unchanged, as in Prometheus).
fn duration_label(
    lb: &LabelsBuilder,
    name: &str,
    configured: &str,
    what: &'static str,
) -> Result<(String, PromDuration)> {
    let text = lb.get(name).to_string();
    if text == configured {
        return Ok((text, PromDuration::ZERO));
    }
    let d: PromDuration =
        text.parse()
            .map_err(|e: crate::config::UnitError| TargetError::BadDuration {
                what,
                reason: e.to_string(),
            })?;
    if d.is_zero() {
        return Err(TargetError::ZeroDuration(what));
    }
    Ok((text, d))
}

/// Go's `net.SplitHostPort` fails on the address but succeeds with a port appended.
fn needs_port(addr: &str) -> bool {
    !split_host_port(addr) && split_host_port(&format!("{addr}:1234"))
}

/// Whether Go's `net.SplitHostPort` accepts `s`.
fn split_host_port(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let after = &rest[end + 1..];
        let host = &rest[..end];
        return after.starts_with(':') && !after[1..].contains(':') && !host.contains('[');
    }
    match s.rfind(':') {
        Some(i) => {
            !s[..i].contains(':')
                && !s[..i].contains(['[', ']'])
                && !s[i + 1..].contains(['[', ']'])
        }
        None => false,
    }
}

/// Prometheus's `targetsFromGroup`: every target of the group, active or dropped, plus the
/// errors of targets whose labels were invalid.
pub fn targets_from_group(
    group: &TargetGroup,
    cfg: &ScrapeConfig,
) -> (Vec<Target>, Vec<TargetError>) {
    let mut targets = Vec::with_capacity(group.targets.len());
    let mut errors = Vec::new();
    for t in &group.targets {
        let mut pairs: Vec<Label> = t
            .iter()
            .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &group.labels {
            if !t.contains_key(k) {
                pairs.push(Label::new(k.as_str(), v.as_str()));
            }
        }
        let discovered = with_scrape_defaults(&Labels::new(pairs), cfg);
        match populate_labels(&discovered, cfg) {
            Ok(Some(labels)) => targets.push(Target {
                discovered,
                labels,
                params: cfg.params.clone(),
            }),
            Ok(None) => targets.push(Target {
                discovered,
                labels: Labels::empty(),
                params: cfg.params.clone(),
            }),
            Err(e) => errors.push(e),
        }
    }
    (targets, errors)
}

/// The target groups of a job's `static_configs`, as Prometheus's static provider emits them.
pub fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for (i, sc) in cfg.static_configs.iter().enumerate() {
        let targets = sc
            .targets
            .iter()
            .map(|a| BTreeMap::from([(ADDRESS_LABEL.to_string(), a.clone())]))
            .collect();
        let labels = sc
            .labels
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect();
        out.push(TargetGroup {
            source: i.to_string(),
            targets,
            labels,
        });
    }
    out
}

impl Target {
    pub fn is_dropped(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels every stored series of this target carries (no `__` labels).
    pub fn series_labels(&self) -> Labels {
        Labels::new(
            self.labels
                .iter()
                .filter(|l| !l.name.starts_with(RESERVED_PREFIX))
                .cloned()
                .collect(),
        )
    }

    fn label(&self, name: &str) -> &str {
        self.labels.get(name).unwrap_or("")
    }

    /// Prometheus's `Target.URL`: scheme://address/path?params, `__param_*` overriding the
    /// first value of a configured parameter; parameters sorted by name.
    pub fn url(&self) -> String {
        let mut params = self.params.clone();
        for l in self.labels.iter() {
            if let Some(k) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                let entry = params.entry(k.to_string()).or_default();
                match entry.first_mut() {
                    Some(first) => *first = l.value.to_string(),
                    None => entry.push(l.value.to_string()),
                }
            }
        }
        let mut url = format!(
            "{}://{}{}",
            self.label(SCHEME_LABEL),
            self.label(ADDRESS_LABEL),
            self.label(METRICS_PATH_LABEL)
        );
        if !params.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, vs) in &params {
                for v in vs {
                    q.append_pair(k, v);
                }
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        url
    }

    /// The target's scrape interval and timeout (relabeling may have changed them).
    pub fn interval_and_timeout(&self, cfg: &ScrapeConfig) -> (Duration, Duration) {
        let parse = |name: &str, dflt: PromDuration| {
            self.labels
                .get(name)
                .and_then(|s| s.parse::<PromDuration>().ok())
                .filter(|d| !d.is_zero())
                .unwrap_or(dflt)
        };
        let interval = parse(SCRAPE_INTERVAL_LABEL, cfg.scrape_interval);
        let timeout = parse(SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout);
        (interval.as_std(), timeout.as_std().min(interval.as_std()))
    }

    /// A hash identifying the target within its pool: its labels and URL.
    pub fn hash(&self) -> u64 {
        let mut h = Xxh3::new();
        for l in self.labels.iter() {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.update(self.url().as_bytes());
        h.digest()
    }

    /// Prometheus's `Target.offset`: when, after `now_nanos`, this target's first scrape
    /// falls, so that a target keeps the same phase in its interval across restarts and
    /// targets spread evenly over the interval.
    pub fn offset(&self, interval: Duration, jitter_seed: u64, now_nanos: u128) -> Duration {
        let iv = interval.as_nanos().max(1);
        let base = iv - now_nanos % iv;
        let off = u128::from(self.hash() ^ jitter_seed) % iv;
        let mut next = base + off;
        if next > iv {
            next -= iv;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }
}

/// The jitter seed of a node: its identity and external labels, like Prometheus's
/// hostname + external labels, so replicas scrape the same target at different phases.
pub fn jitter_seed(node_id: &str, external: &BTreeMap<String, String>) -> u64 {
    let mut h = Xxh3::new();
    h.update(node_id.as_bytes());
    for (k, v) in external {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    h.digest()
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
