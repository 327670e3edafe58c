//! The scrape side of the HTTP API: `GET /api/v1/targets` in Prometheus 2.42's JSON shape
//! (`state=active|dropped|any`, `scrapePool=<job>`), `/api/v1/metadata` from what targets exposed, and
//! `POST|PUT /-/reload`, which re-reads the config file and restarts only changed scrape jobs.
//! The targets list covers the cluster (see `targets_cluster`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::{success, success_with_annotations, ApiError, ApiResult};
use super::TargetsState;
use crate::config::Role;
use crate::scrape::manager::TargetView;
use crate::scrape::scrape_loop::Health;
use crate::scrape::TargetsSnapshot;
use crate::storage::model::Labels;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/targets", web::get().to(targets))
        .route("/api/v1/metadata", web::get().to(metadata))
        .route("/-/reload", web::post().to(reload))
        .route("/-/reload", web::put().to(reload));
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActiveTarget {
    pub(super) discovered_labels: BTreeMap<String, String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) scrape_pool: String,
    pub(super) scrape_url: String,
    pub(super) global_url: String,
    pub(super) last_error: String,
    pub(super) last_scrape: String,
    pub(super) last_scrape_duration: f64,
    pub(super) health: Health,
    pub(super) scrape_interval: String,
    pub(super) scrape_timeout: String,
    /// Strata's addition: naming problems of the target's exposition (`scrape::lint`), absent
    /// when there are none so the Prometheus fields stand alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) lint_problems: Vec<LintProblem>,
}

/// One naming problem, as `/api/v1/targets` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct LintProblem {
    pub(super) metric: String,
    pub(super) check: String,
    pub(super) text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DroppedTarget {
    pub(super) discovered_labels: BTreeMap<String, String>,
}

/// `activeTargets`/`droppedTargets` are `null` when the `state` filter leaves them out, as
/// in Prometheus.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TargetDiscovery {
    pub(super) active_targets: Option<Vec<ActiveTarget>>,
    pub(super) dropped_targets: Option<Vec<DroppedTarget>>,
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// Go's zero `time.Time` for a target never scraped, RFC 3339 with nanoseconds otherwise.
fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => crate::time::rfc3339_nanos(t),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Prometheus's `getGlobalURL`: a loopback host is replaced by this machine's hostname so
/// the link works from elsewhere.
pub fn global_url(url: &str, hostname: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return url.to_string();
    }
    match port {
        Some(p) => format!("{scheme}://{hostname}:{p}{tail}"),
        None => format!("{scheme}://{hostname}{tail}"),
    }
}

fn active_json(v: &TargetView, hostname: &str) -> ActiveTarget {
    ActiveTarget {
        discovered_labels: label_map(&v.target.discovered),
        labels: label_map(&v.target.series_labels()),
        scrape_pool: v.pool.clone(),
        scrape_url: v.url.clone(),
        global_url: global_url(&v.url, hostname),
        last_error: v.status.last_error.clone(),
        last_scrape: rfc3339(v.status.last_scrape),
        last_scrape_duration: v.status.last_duration.as_secs_f64(),
        health: v.status.health,
        scrape_interval: crate::config::PromDuration::from_millis(v.interval.as_millis() as u64)
            .to_string(),
        scrape_timeout: crate::config::PromDuration::from_millis(v.timeout.as_millis() as u64)
            .to_string(),
        lint_problems: v
            .status
            .lint
            .iter()
            .map(|p| LintProblem {
                metric: p.metric.clone(),
                check: p.check.to_string(),
                text: p.text.clone(),
            })
            .collect(),
    }
}

/// `strata_target_lint_problems{job,check}`: naming problems of this node's targets' last
/// linted bodies, per job and check.
pub fn lint_metrics_text(snap: &TargetsSnapshot) -> String {
    let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for t in &snap.active {
        for p in &t.status.lint {
            *counts.entry((t.pool.clone(), p.check)).or_default() += 1;
        }
    }
    let name = "strata_target_lint_problems";
    let mut out = format!(
        "# HELP {name} Naming problems in the last linted exposition of this node's targets, by job and check.\n# TYPE {name} gauge\n"
    );
    for ((job, check), n) in counts {
        out.push_str(&format!(
            "{name}{{job=\"{}\",check=\"{check}\"}} {n}\n",
            crate::storage::model::escape_label_value(&job)
        ));
    }
    out
}

fn discovery(snap: &TargetsSnapshot, state: &str, hostname: &str) -> TargetDiscovery {
    let show_active = matches!(state, "" | "any" | "active");
    let show_dropped = matches!(state, "" | "any" | "dropped");
    TargetDiscovery {
        active_targets: show_active.then(|| {
            snap.active
                .iter()
                .map(|v| active_json(v, hostname))
                .collect()
        }),
        dropped_targets: show_dropped.then(|| {
            snap.dropped
                .iter()
                .map(|(_, t)| DroppedTarget {
                    discovered_labels: label_map(&t.discovered),
                })
                .collect()
        }),
    }
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

async fn targets(req: HttpRequest, state: web::Data<TargetsState>) -> ApiResult {
    let pairs = query_pairs(&req);
    let filter = pairs
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let mut snap = state.scrape.snapshot();
    if let Some((_, pool)) = pairs.iter().find(|(k, _)| k == "scrapePool") {
        if !pool.is_empty() {
            snap.active.retain(|t| t.pool == *pool);
            snap.dropped.retain(|(job, _)| job == pool);
        }
    }
    let mut data = discovery(&snap, &filter, &hostname);
    if super::targets_cluster::wants_local_only(&req) {
        return Ok(success(&data));
    }
    let warnings = super::targets_cluster::merge_peers(&state.router, &req, &mut data).await;
    Ok(success_with_annotations(&data, &warnings, &[]))
}

async fn reload(state: web::Data<TargetsState>) -> HttpResponse {
    let reloader = crate::scrape::reload::Reloader {
        path: state.config_path.clone(),
        manager: state.scrape.clone(),
        hooks: state.reload_hooks.clone(),
    };
    match web::block(move || reloader.reload()).await {
        Ok(Ok(report)) => {
            tracing::info!(?report, "config reloaded");
            HttpResponse::Ok().finish()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "config reload failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(format!("failed to reload config: {e}\n"))
        }
        Err(e) => {
            HttpResponse::InternalServerError().body(format!("failed to reload config: {e}\n"))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct MetadataEntry {
    #[serde(rename = "type")]
    metric_type: String,
    help: String,
    unit: String,
}

type MetadataByFamily = BTreeMap<String, Vec<MetadataEntry>>;

/// `/api/v1/metadata`: metric families the targets of the cluster's ScraperShippers exposed;
/// `metric` filters by name, `limit` caps the number of metrics.
async fn metadata(req: HttpRequest, state: web::Data<TargetsState>) -> ApiResult {
    // Served where queries are served, like the rest of the query API.
    if !state.router.runs(Role::QueryPlanner) {
        return Err(ApiError::unavailable(
            "no query_planner role serves queries on this node",
        ));
    }
    let req = &req;
    let pairs = query_pairs(req);
    let metric = pairs
        .iter()
        .find(|(k, _)| k == "metric")
        .map(|(_, v)| v.clone());
    let limit = match pairs.iter().find(|(k, _)| k == "limit") {
        Some((_, v)) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad_data(format!("invalid limit {v:?}")))?,
        None => -1,
    };
    let mut out: MetadataByFamily = BTreeMap::new();
    for (family, list) in state.scrape.metadata() {
        if metric.as_ref().is_some_and(|m| *m != family) {
            continue;
        }
        let entries = list
            .into_iter()
            .map(|m| MetadataEntry {
                metric_type: m.metric_type.as_str().to_string(),
                help: m.help,
                unit: m.unit,
            })
            .collect();
        out.insert(family, entries);
    }
    let mut warnings = Vec::new();
    if !super::targets_cluster::wants_local_only(req) {
        let (remote, w) =
            super::targets_cluster::ask_scrapers::<MetadataByFamily>(&state.router, req).await;
        warnings = w;
        for map in remote {
            for (family, entries) in map {
                let list = out.entry(family).or_default();
                for e in entries {
                    if !list.contains(&e) {
                        list.push(e);
                    }
                }
            }
        }
    }
    if limit >= 0 {
        out = out.into_iter().take(limit as usize).collect();
    }
    Ok(success_with_annotations(&out, &warnings, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_become_the_hostname() {
        assert_eq!(
            global_url("http://127.0.0.1:9100/metrics", "box"),
            "http://box:9100/metrics"
        );
        assert_eq!(
            global_url("http://localhost:80/m?x=1", "box"),
            "http://box:80/m?x=1"
        );
        assert_eq!(
            global_url("http://[::1]:9100/metrics", "box"),
            "http://box:9100/metrics"
        );
        assert_eq!(
            global_url("https://example.org:443/metrics", "box"),
            "https://example.org:443/metrics"
        );
    }

    #[test]
    fn never_scraped_is_go_zero_time() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert!(rfc3339(Some(SystemTime::UNIX_EPOCH)).starts_with("1970-01-01T00:00:00"));
    }

    #[test]
    fn state_filter_nulls_the_other_list() {
        let snap = TargetsSnapshot::default();
        let v = serde_json::to_value(discovery(&snap, "active", "h")).expect("json");
        assert_eq!(v["activeTargets"], serde_json::json!([]));
        assert!(v["droppedTargets"].is_null());
        let v = serde_json::to_value(discovery(&snap, "", "h")).expect("json");
        assert_eq!(v["droppedTargets"], serde_json::json!([]));
    }
}
