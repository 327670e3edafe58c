//! Prometheus's introspection endpoints beyond build info and flags:
//! `/api/v1/status/runtimeinfo`, `/api/v1/status/tsdb` (head cardinality),
//! `/api/v1/status/config` (the config in use, secrets shown as `<secret>`),
//! `/api/v1/scrape_pools` and `/api/v1/targets/metadata` (over the cluster's ScraperShippers),
//! in Prometheus 2.42's JSON shapes.

use actix_web::{web, HttpRequest};
use serde::Serialize;

use super::error::{success, success_with_annotations, ApiError, ApiResult};
use super::StatusState;
use crate::storage::head::Stat;
use crate::storage::model::matches_all;

/// Prometheus shows ten entries per cardinality list.
const TSDB_STATS_TOP: usize = 10;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/status/runtimeinfo", web::get().to(runtimeinfo))
        .route("/api/v1/status/tsdb", web::get().to(tsdb))
        .route("/api/v1/status/config", web::get().to(config))
        .route("/api/v1/scrape_pools", web::get().to(scrape_pools))
        .route("/api/v1/targets/metadata", web::get().to(targets_metadata));
}

#[derive(Serialize)]
struct RuntimeInfo {
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    #[serde(rename = "reloadConfigSuccess")]
    reload_config_success: bool,
    #[serde(rename = "lastConfigTime")]
    last_config_time: String,
    #[serde(rename = "corruptionCount")]
    corruption_count: u64,
    /// Go's goroutines have no equivalent; the process's OS threads are the closest figure.
    #[serde(rename = "goroutineCount")]
    goroutine_count: u64,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOGC")]
    gogc: String,
    #[serde(rename = "GODEBUG")]
    godebug: String,
    #[serde(rename = "storageRetention")]
    storage_retention: String,
}

fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn runtimeinfo(state: web::Data<StatusState>) -> ApiResult {
    let (reload_ok, loaded_at) = state.scrape.reload_status();
    let replay = state.db.replay_stats();
    let info = RuntimeInfo {
        start_time: crate::time::rfc3339_nanos_or_seconds(state.started_at),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        reload_config_success: reload_ok,
        // Prometheus reports the config load time in whole seconds.
        last_config_time: crate::time::rfc3339_seconds(loaded_at),
        corruption_count: u64::from(replay.truncated_at.is_some()),
        goroutine_count: thread_count(),
        gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gogc: String::new(),
        godebug: String::new(),
        storage_retention: state.config.tsdb.retention.to_string(),
    };
    Ok(success(&info))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadStatsJson {
    num_series: u64,
    num_label_pairs: u64,
    chunk_count: u64,
    min_time: i64,
    max_time: i64,
}

#[derive(Serialize)]
struct StatJson {
    name: String,
    value: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TsdbStatus {
    head_stats: HeadStatsJson,
    series_count_by_metric_name: Vec<StatJson>,
    label_value_count_by_label_name: Vec<StatJson>,
    memory_in_bytes_by_label_name: Vec<StatJson>,
    series_count_by_label_value_pair: Vec<StatJson>,
}

fn stats_json(stats: Vec<Stat>) -> Vec<StatJson> {
    stats
        .into_iter()
        .map(|s| StatJson {
            name: s.name,
            value: s.value,
        })
        .collect()
}

/// The local head's figures: a pass over every series, so it runs off the HTTP workers.
async fn tsdb(state: web::Data<StatusState>) -> ApiResult {
    let db = state.db.clone();
    let c = web::block(move || db.head().cardinality(TSDB_STATS_TOP))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(success(&TsdbStatus {
        head_stats: HeadStatsJson {
            num_series: c.num_series,
            num_label_pairs: c.num_label_pairs,
            chunk_count: c.chunk_count,
            min_time: c.min_time,
            max_time: c.max_time,
        },
        series_count_by_metric_name: stats_json(c.series_count_by_metric_name),
        label_value_count_by_label_name: stats_json(c.label_value_count_by_label_name),
        memory_in_bytes_by_label_name: stats_json(c.memory_in_bytes_by_label_name),
        series_count_by_label_value_pair: stats_json(c.series_count_by_label_value_pair),
    }))
}

#[derive(Serialize)]
struct ConfigYaml {
    yaml: String,
}

/// The config in use (the scrape part as last reloaded); `Secret` fields serialise as
/// `<secret>`, so credentials never leave the node.
async fn config(state: web::Data<StatusState>) -> ApiResult {
    let cfg = state.scrape.config();
    let yaml = serde_norway::to_string(cfg.as_ref())
        .map_err(|e| ApiError::internal(format!("rendering the config: {e}")))?;
    Ok(success(&ConfigYaml { yaml }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScrapePools {
    scrape_pools: Vec<String>,
}

async fn scrape_pools(state: web::Data<StatusState>) -> ApiResult {
    Ok(success(&ScrapePools {
        scrape_pools: state.scrape.pool_names(),
    }))
}

#[derive(Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
struct TargetMetadataJson {
    target: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric: Option<String>,
    #[serde(rename = "type")]
    metric_type: String,
    help: String,
    unit: String,
}

/// `match_target` selects targets by their labels, `metric` picks one family (then entries
/// carry no `metric` field), `limit` stops before the next target once that many entries
/// were found — Prometheus's rules.
async fn targets_metadata(req: HttpRequest, state: web::Data<StatusState>) -> ApiResult {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let matchers = match param("match_target") {
        Some(sel) => {
            let sets = crate::promql::selector::parse_series_selector(sel)
                .map_err(|e| ApiError::bad_data(e.to_string()))?;
            sets.into_iter().next().unwrap_or_default()
        }
        None => Vec::new(),
    };
    let metric = param("metric");
    let limit: i64 = match param("limit") {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_data(format!("invalid limit {v:?}")))?,
        None => -1,
    };
    let mut out: Vec<TargetMetadataJson> = Vec::new();
    for (labels, families) in state.scrape.target_metadata() {
        if limit >= 0 && out.len() as i64 >= limit {
            break;
        }
        if !matches_all(&matchers, &labels) {
            continue;
        }
        let target: std::collections::BTreeMap<String, String> = labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        for (family, m) in families {
            if metric.is_some_and(|want| want != family) {
                continue;
            }
            out.push(TargetMetadataJson {
                target: target.clone(),
                metric: metric.is_none().then(|| family.clone()),
                metric_type: m.metric_type.as_str().to_string(),
                help: m.help,
                unit: m.unit,
            });
        }
    }
    let mut warnings = Vec::new();
    if !super::targets_cluster::wants_local_only(&req) {
        // HA replicas report the same target's metadata; it is listed once.
        let (remote, w) =
            super::targets_cluster::ask_scrapers::<Vec<TargetMetadataJson>>(&state.router, &req)
                .await;
        warnings = w;
        let mut seen: std::collections::HashSet<TargetMetadataJson> = out.iter().cloned().collect();
        for entry in remote.into_iter().flatten() {
            if seen.insert(entry.clone()) {
                out.push(entry);
            }
        }
    }
    Ok(success_with_annotations(&out, &warnings, &[]))
}
