//! `GET /api/v1/status/metric_usage`: which metrics the cluster's queries read, from the usage
//! every QueryPlanner records as it evaluates (`query::usage`), merged over the live planners
//! (each asked for its own; a planner that does not answer is named in the warnings). Each
//! metric of the data (series now, from `count by (__name__)`) is listed with its series
//! count and its usage, or none. With `unused_for=<duration>` only metrics not queried for at
//! least that long are listed; when usage has been collected for less than that, nothing can
//! be called unused and the answer says so in a warning instead of guessing.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest};
use serde_json::json;

use super::error::{success_with_annotations, ApiResult};
use super::params::Params;
use super::targets_cluster::{ask_peers, wants_local_only};
use super::QueryState;
use crate::config::Role;
use crate::promql::Value as PromValue;
use crate::query::service::QueryOptions;
use crate::query::usage::{Source, UsageSnapshot};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/status/metric_usage", web::get().to(metric_usage));
}

async fn metric_usage(req: HttpRequest, state: web::Data<QueryState>) -> ApiResult {
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
    let series = series_by_metric(&state, now, &mut warnings).await;
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
    // Selectors naming no metric exactly are counted under "" (see `query::usage`).
    let open_selectors = usage.metrics.get("");
    Ok(success_with_annotations(
        &json!({
            "collected_since": crate::time::rfc3339_millis(crate::time::from_unix_ms(usage.collected_since_ms)),
            "metrics": metrics,
            "open_selectors": open_selectors,
        }),
        &warnings,
        &[],
    ))
}

/// Series per metric name now, cluster-wide.
async fn series_by_metric(
    state: &QueryState,
    now: i64,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, u64> {
    let opts = QueryOptions {
        source: Source::Internal,
        ..QueryOptions::default()
    };
    let mut out = BTreeMap::new();
    match state
        .service
        .instant(r#"count by (__name__) ({__name__=~".+"})"#, now, &opts)
        .await
    {
        Ok(v) => {
            warnings.extend(v.warnings);
            if let PromValue::Vector(samples) = v.value {
                for s in samples {
                    if let Some(name) = s.labels.get("__name__") {
                        out.insert(name.to_string(), s.v as u64);
                    }
                }
            }
        }
        Err(e) => warnings.push(format!("counting series per metric: {e}")),
    }
    out
}
