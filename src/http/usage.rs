//! `GET /api/v1/status/metric_usage`: which metrics the cluster's queries read, from the usage
//! every QueryPlanner records as it evaluates (`query::usage`), merged over the live planners
//! (each asked for its own; a planner that does not answer is named in the warnings). Each
//! metric of the data (series now, from `count by (__name__)`) is listed with its series
//! count and its usage, or none. With `unused_for=<duration>` only metrics not queried for at
//! least that long are listed; when usage has been collected for less than that, nothing can
//! be called unused and the answer says so in a warning instead of guessing. Then each job
//! that exposes unused metrics gets a ready `metric_relabel_configs` entry dropping exactly
//! those names (an anchored regex of the escaped names), with the series it removes and the
//! samples per day they cost at the job's scrape interval.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpRequest};
use serde_json::{json, Value};

use super::error::{success_with_annotations, ApiResult};
use super::params::Params;
use super::targets_cluster::{ask_peers, wants_local_only};
use super::{AdminState, QueryState, StatusState};
use crate::config::Config;
use crate::config::Role;
use crate::promql::Value as PromValue;
use crate::query::service::QueryOptions;
use crate::query::usage::{Source, UsageSnapshot};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/status/metric_usage", web::get().to(metric_usage));
}

async fn metric_usage(
    req: HttpRequest,
    state: web::Data<QueryState>,
    status: web::Data<StatusState>,
    admin: web::Data<AdminState>,
) -> ApiResult {
    if let Some(forwarded) =
        super::forward::forward_unless_local(&state.router, &req, &[], Role::QueryPlanner).await
    {
        return forwarded;
    }
    let local = state.service.usage().snapshot();
    if wants_local_only(&req) {
        return Ok(super::error::success(&local));
    }
    let params = Params::from_request(&req, &[]);
    let unused_for = params.duration("unused_for")?;
    let (peers, mut warnings) =
        ask_peers::<UsageSnapshot>(&state.router, &req, Role::QueryPlanner).await;
    let mut usage = local;
    for p in &peers {
        usage.merge(p);
    }
    let now = crate::time::now_ms();
    let by_job = series_by_job(&state, now, &mut warnings).await;
    let mut series: BTreeMap<String, u64> = BTreeMap::new();
    for metrics in by_job.values() {
        for (name, n) in metrics {
            *series.entry(name.clone()).or_default() += n;
        }
    }
    let mut metrics = Vec::new();
    for (name, count) in &series {
        let u = usage.metrics.get(name);
        if let Some(d) = unused_for {
            if u.is_some_and(|u| u.last_ms > now - d) {
                continue;
            }
        }
        metrics.push(json!({
            "name": name,
            "series": count,
            "usage": u,
        }));
    }
    if let Some(d) = unused_for {
        if usage.collected_since_ms > now - d {
            warnings.push(format!(
                "usage has been collected for {} only, less than unused_for; no metric can be called unused yet",
                humantime::format_duration(std::time::Duration::from_secs(
                    ((now - usage.collected_since_ms).max(0) / 1000) as u64
                ))
            ));
            metrics.clear();
        }
    }
    let unused: BTreeSet<&str> = metrics.iter().filter_map(|m| m["name"].as_str()).collect();
    let mut suggestions = if unused_for.is_some() {
        drop_suggestions(&by_job, &unused, &status.scrape.config())
    } else {
        Vec::new()
    };
    if !suggestions.is_empty() {
        match admin.api_configs.scrape.load_all().await {
            Ok(docs) => add_apply_calls(&mut suggestions, &docs, &req),
            Err(e) => warnings.push(format!(
                "cannot read the API jobs to prepare the calls: {e}"
            )),
        }
    }
    let aggregations = if unused_for.is_none() {
        aggregate_suggestions(&state, &series, &usage, now, &mut warnings).await
    } else {
        Vec::new()
    };
    // Selectors naming no metric exactly are counted under "" (see `query::usage`).
    let open_selectors = usage.metrics.get("");
    Ok(success_with_annotations(
        &json!({
            "collected_since": crate::time::rfc3339_millis(crate::time::from_unix_ms(usage.collected_since_ms)),
            "metrics": metrics,
            "open_selectors": open_selectors,
            "suggestions": suggestions,
            "aggregations": aggregations,
        }),
        &warnings,
        &[],
    ))
}

/// Series per job and metric name now, cluster-wide (series without a job under `""`).
async fn series_by_job(
    state: &QueryState,
    now: i64,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let opts = QueryOptions {
        source: Source::Internal,
        ..QueryOptions::default()
    };
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    match state
        .service
        .instant(r#"count by (job, __name__) ({__name__=~".+"})"#, now, &opts)
        .await
    {
        Ok(v) => {
            warnings.extend(v.warnings);
            if let PromValue::Vector(samples) = v.value {
                for s in samples {
                    if let Some(name) = s.labels.get("__name__") {
                        let job = s.labels.get("job").unwrap_or_default().to_string();
                        out.entry(job)
                            .or_default()
                            .insert(name.to_string(), s.v as u64);
                    }
                }
            }
        }
        Err(e) => warnings.push(format!("counting series per metric: {e}")),
    }
    out
}

/// The series every scrape adds about itself (Prometheus 2.42's set).
const REPORT_SERIES: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Per job with unused metrics: the relabel rule dropping them and what it saves.
fn drop_suggestions(
    by_job: &BTreeMap<String, BTreeMap<String, u64>>,
    unused: &BTreeSet<&str>,
    config: &Config,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (job, metrics) in by_job {
        // The report series (`up`, `scrape_*`) are written by the scraper itself: metric
        // relabeling never sees them, so a rule naming them would drop nothing.
        let names: Vec<&String> = metrics
            .keys()
            .filter(|n| unused.contains(n.as_str()) && !REPORT_SERIES.contains(&n.as_str()))
            .collect();
        if job.is_empty() || names.is_empty() {
            continue;
        }
        let series: u64 = names.iter().map(|n| metrics[*n]).sum();
        let interval_s = config
            .scrape_configs
            .iter()
            .find(|c| &c.job_name == job)
            .map(|c| c.scrape_interval.as_millis() as f64 / 1000.0)
            .filter(|s| *s > 0.0);
        let regex = drop_regex(&names);
        out.push(json!({
            "job": job,
            "metrics": names,
            "series": series,
            "samples_per_day": interval_s.map(|s| (series as f64 * 86_400.0 / s).round() as u64),
            "metric_relabel_configs": [{
                "source_labels": ["__name__"],
                "regex": regex,
                "action": "drop",
            }],
        }));
    }
    out
}

/// For each suggestion whose job came through the scrape-config API, the one call that
/// applies it: the stored job with the rule added to its `metric_relabel_configs`, to `PUT`
/// (first with `?dry_run=true` for the before/after preview). A job of the config file gets a
/// note instead: the API may not change it.
fn add_apply_calls(
    suggestions: &mut [Value],
    docs: &crate::apiconfig::Documents,
    req: &HttpRequest,
) {
    let prefix = req
        .path()
        .split("/api/v1/")
        .next()
        .unwrap_or("")
        .to_string();
    for s in suggestions.iter_mut() {
        let Some(job) = s["job"].as_str().map(str::to_string) else {
            continue;
        };
        let stored = docs.get(&vec![job.clone()]);
        let body = stored.and_then(|text| with_rule(text, &s["metric_relabel_configs"][0]));
        match body {
            Some(body) => {
                let path = format!(
                    "{prefix}/api/v1/admin/scrape_configs/{}",
                    crate::apiconfig::encode_segment(&job)
                );
                s["apply"] = json!({
                    "method": "PUT",
                    "path": path,
                    "preview": format!("{path}?dry_run=true"),
                    "content_type": "application/yaml",
                    "body": body,
                });
            }
            None => {
                s["note"] = json!(format!(
                    "job {job:?} is defined in the config file: add the rule to its metric_relabel_configs there and reload"
                ));
            }
        }
    }
}

/// A stored job's YAML with `rule` appended to its `metric_relabel_configs`.
fn with_rule(stored: &str, rule: &Value) -> Option<String> {
    let mut job: serde_norway::Value = serde_norway::from_str(stored).ok()?;
    let rule: serde_norway::Value = serde_norway::to_value(rule).ok()?;
    let map = job.as_mapping_mut()?;
    let rules = map
        .entry("metric_relabel_configs".into())
        .or_insert_with(|| serde_norway::Value::Sequence(Vec::new()));
    if rules.is_null() {
        *rules = serde_norway::Value::Sequence(Vec::new());
    }
    rules.as_sequence_mut()?.push(rule);
    serde_norway::to_string(&job).ok()
}

/// At most this many metrics are checked for an aggregation (one count query each).
const MAX_AGGREGATION_CHECKS: usize = 20;

/// Metrics every query used through some labels only (never with all of them, see
/// `query::usage`): a recording rule aggregating by exactly the used labels answers those
/// queries with fewer series. Each suggestion gives the rule and the series before and after
/// (counted now). No label is ever dropped at scrape time: merging series that a label keeps
/// apart corrupts `rate()`; the raw metric can go once its readers use the recorded series.
async fn aggregate_suggestions(
    state: &QueryState,
    series: &BTreeMap<String, u64>,
    usage: &UsageSnapshot,
    now: i64,
    warnings: &mut Vec<String>,
) -> Vec<Value> {
    let mut candidates: Vec<(&String, u64, Vec<String>)> = Vec::new();
    for (name, u) in &usage.metrics {
        let Some(&n) = series.get(name) else { continue };
        if name.is_empty() || u.requests == 0 || u.all_labels_requests > 0 || n < 2 {
            continue;
        }
        let used: BTreeSet<String> = u
            .matcher_labels
            .iter()
            .chain(u.grouping_labels.iter())
            .filter(|l| l.as_str() != "__name__")
            .cloned()
            .collect();
        candidates.push((name, n, used.into_iter().collect()));
    }
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    candidates.truncate(MAX_AGGREGATION_CHECKS);
    let opts = QueryOptions {
        source: Source::Internal,
        ..QueryOptions::default()
    };
    let mut out = Vec::new();
    for (name, before, used) in candidates {
        let by = used.join(", ");
        let q = format!("count(count by ({by}) ({{__name__={name:?}}}))");
        let after = match state.service.instant(&q, now, &opts).await {
            Ok(v) => match v.value {
                PromValue::Vector(s) => s.first().map(|s| s.v as u64).unwrap_or(0),
                _ => 0,
            },
            Err(e) => {
                warnings.push(format!("counting the aggregated series of {name}: {e}"));
                continue;
            }
        };
        if after == 0 || after >= before {
            continue;
        }
        let (record, expr) = recording_rule(name, &used);
        out.push(json!({
            "metric": name,
            "used_labels": used,
            "series": before,
            "series_after": after,
            "recording_rule": {"record": record, "expr": expr},
        }));
    }
    out
}

/// The rule aggregating `metric` by `labels`, named `level:metric:operation` as Prometheus's
/// recording-rule convention says; counters (by their suffix) are summed as rates, since a
/// sum of raw counters breaks at every reset.
fn recording_rule(metric: &str, labels: &[String]) -> (String, String) {
    let level = if labels.is_empty() {
        "cluster".to_string()
    } else {
        labels.join("_")
    };
    let by = labels.join(", ");
    let counter = ["_total", "_count", "_sum", "_bucket"]
        .iter()
        .any(|s| metric.ends_with(s));
    if counter {
        let base = metric.strip_suffix("_total").unwrap_or(metric);
        (
            format!("{level}:{base}:rate5m"),
            format!("sum by ({by}) (rate({metric}[5m]))"),
        )
    } else {
        (
            format!("{level}:{metric}:sum"),
            format!("sum by ({by}) ({metric})"),
        )
    }
}

/// One regex matching exactly `names` (each escaped, the whole anchored).
fn drop_regex(names: &[&String]) -> String {
    let alts: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    format!("^(?:{})$", alts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_rule_is_appended_to_the_stored_job() {
        let rule = json!({"source_labels": ["__name__"], "regex": "^(?:a)$", "action": "drop"});
        let out = with_rule("job_name: j\nstatic_configs: [{targets: ['h:1']}]\n", &rule).unwrap();
        let job = crate::config::Config::parse_scrape_job(&out, "t").unwrap();
        assert_eq!(job.metric_relabel_configs.len(), 1);
        let out = with_rule(&out, &rule).unwrap();
        let job = crate::config::Config::parse_scrape_job(&out, "t").unwrap();
        assert_eq!(job.metric_relabel_configs.len(), 2);
        assert_eq!(crate::apiconfig::encode_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn recording_rules_rate_counters_and_sum_gauges() {
        let l = vec!["job".to_string(), "mode".to_string()];
        assert_eq!(
            recording_rule("node_cpu_seconds_total", &l),
            (
                "job_mode:node_cpu_seconds:rate5m".to_string(),
                "sum by (job, mode) (rate(node_cpu_seconds_total[5m]))".to_string()
            )
        );
        assert_eq!(
            recording_rule("mem_bytes", &[]),
            (
                "cluster:mem_bytes:sum".to_string(),
                "sum by () (mem_bytes)".to_string()
            )
        );
    }

    #[test]
    fn drop_regex_matches_exactly_the_names() {
        let a = "node_cpu_seconds_total".to_string();
        let b = "weird.name+x".to_string();
        let re = regex::Regex::new(&drop_regex(&[&a, &b])).unwrap();
        assert!(re.is_match(&a) && re.is_match(&b));
        assert!(!re.is_match("node_cpu_seconds_total_extra"));
        assert!(!re.is_match("weirdXname+x"));
        assert!(!re.is_match("x_node_cpu_seconds_total"));
    }
}
