//! Health, readiness, `/metrics` and the Prometheus `status/*` endpoints of a node.

use actix_web::{web, HttpResponse};

use super::error::{success, ApiError, ApiResult};
use super::StatusState;
use crate::actors::supervisor::IsReady;
use crate::metrics::{encode_registry, OPENMETRICS_CONTENT_TYPE};
use crate::storage::store::StoreStats;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/-/healthy", web::get().to(healthy))
        .route("/-/healthy", web::head().to(healthy))
        .route("/-/ready", web::get().to(ready))
        .route("/-/ready", web::head().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route("/api/v1/status/buildinfo", web::get().to(buildinfo))
        .route("/api/v1/status/flags", web::get().to(flags));
}

async fn healthy() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Strata is Healthy.\n")
}

/// Ready only when every role assigned to this node runs: this is what a load balancer probes.
async fn ready(state: web::Data<StatusState>) -> HttpResponse {
    let ready = state.supervisor.send(IsReady).await.unwrap_or(false);
    if ready {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("Strata is Ready.\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("Service Unavailable\n")
    }
}

async fn metrics(state: web::Data<StatusState>) -> ApiResult {
    let mut text = encode_registry(&state.registry)
        .map_err(|e| ApiError::internal(format!("encoding metrics: {e}")))?;
    let mut extra = store_metrics_text(&state.store.stats());
    extra.push_str(&super::targets::lint_metrics_text(&state.scrape.snapshot()));
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &extra),
        None => text.push_str(&extra),
    }
    Ok(HttpResponse::Ok()
        .content_type(OPENMETRICS_CONTENT_TYPE)
        .body(text))
}

/// The bucket store's gauges and counters in the OpenMetrics text format (its counters are
/// plain atomics, snapshotted here rather than registered one by one).
pub fn store_metrics_text(s: &StoreStats) -> String {
    let gauges = [
        (
            "strata_store_blocks_serving",
            "Bucket blocks this node's StoreShard serves",
            s.blocks_serving,
        ),
        (
            "strata_store_blocks_failed",
            "Owned bucket blocks that failed to load",
            s.blocks_failed,
        ),
        (
            "strata_store_headers_open",
            "Index headers held open",
            s.headers_open,
        ),
        (
            "strata_store_header_heap_bytes",
            "Heap used by open index headers",
            s.header_heap_bytes,
        ),
        (
            "strata_store_cache_used_bytes",
            "Bytes in the postings/series/chunk cache",
            s.cache.used_bytes,
        ),
        (
            "strata_store_cache_budget_bytes",
            "Byte budget of the postings/series/chunk cache",
            s.cache.budget_bytes,
        ),
    ];
    let counters = [
        (
            "strata_store_bucket_requests",
            "Ranged reads sent to the bucket",
            s.bucket_requests,
        ),
        (
            "strata_store_bucket_bytes",
            "Bytes read from the bucket",
            s.bucket_bytes,
        ),
        (
            "strata_store_chunk_bytes_touched",
            "Chunk bytes queries read, cached or not",
            s.chunk_bytes_touched,
        ),
        (
            "strata_store_block_load_failures",
            "Blocks that failed to load during a sync",
            s.block_load_failures,
        ),
        (
            "strata_store_block_query_failures",
            "Block failures during queries",
            s.block_query_failures,
        ),
        (
            "strata_store_corrupt_block_errors",
            "Corrupt index or chunk data found in bucket blocks",
            s.corrupt_block_errors,
        ),
        (
            "strata_store_queries",
            "Queries answered by the bucket store",
            s.queries,
        ),
        (
            "strata_store_limit_hits",
            "Queries stopped by a store limit",
            s.limit_hits,
        ),
        ("strata_store_syncs", "Bucket sync passes", s.syncs),
        (
            "strata_store_sync_failures",
            "Failed bucket sync passes",
            s.sync_failures,
        ),
        (
            "strata_store_cache_hits",
            "Cache hits (postings, series, chunks, symbols)",
            s.cache.postings_hits + s.cache.series_hits + s.cache.chunk_hits + s.cache.symbol_hits,
        ),
        (
            "strata_store_cache_misses",
            "Cache misses (postings, series, chunks, symbols)",
            s.cache.postings_misses
                + s.cache.series_misses
                + s.cache.chunk_misses
                + s.cache.symbol_misses,
        ),
    ];
    let mut out = String::new();
    for (name, help, v) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    for (name, help, v) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}.\n# TYPE {name} counter\n{name}_total {v}\n"
        ));
    }
    out
}

/// Prometheus's build facts, and Mimir's `features` map of the APIs Strata serves beyond
/// Prometheus's (Grafana reads `ruler_config_api` to offer editing the rules).
async fn buildinfo(state: web::Data<StatusState>) -> HttpResponse {
    let mut info = serde_json::to_value(&state.build).unwrap_or_default();
    if let Some(o) = info.as_object_mut() {
        o.insert(
            "features".to_string(),
            serde_json::json!({"ruler_config_api": "true"}),
        );
    }
    success(&info)
}

async fn flags(state: web::Data<StatusState>) -> HttpResponse {
    success(&state.flags)
}
