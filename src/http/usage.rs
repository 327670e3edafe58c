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
use super::{QueryState, StatusState};
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
    let suggestions = if unused_for.is_some() {
        drop_suggestions(&by_job, &unused, &status.config)
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

/// Per job with unused metrics: the relabel rule dropping them and what it saves.
fn drop_suggestions(
    by_job: &BTreeMap<String, BTreeMap<String, u64>>,
    unused: &BTreeSet<&str>,
    config: &Config,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (job, metrics) in by_job {
        let names: Vec<&String> = metrics
            .keys()
            .filter(|n| unused.contains(n.as_str()))
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

/// One regex matching exactly `names` (each escaped, the whole anchored).
fn drop_regex(names: &[&String]) -> String {
    let alts: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    format!("^(?:{})$", alts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
