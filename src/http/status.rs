//! Health, readiness, `/metrics` and the Prometheus `status/*` endpoints of a node.

use actix_web::{web, HttpResponse};

use super::error::{success, ApiError, ApiResult};
use crate::actors::supervisor::IsReady;
use crate::metrics::{encode_registry, OPENMETRICS_CONTENT_TYPE};
use crate::node::NodeState;

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
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("Strata is Healthy.\n")
}

/// Ready only when every role assigned to this node runs: this is what a load balancer probes.
async fn ready(state: web::Data<NodeState>) -> HttpResponse {
    let ready = state.supervisor.send(IsReady).await.unwrap_or(false);
    if ready {
        HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("Strata is Ready.\n")
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain; charset=utf-8").body("Service Unavailable\n")
    }
}

async fn metrics(state: web::Data<NodeState>) -> ApiResult {
    let text = encode_registry(&state.registry).map_err(|e| ApiError::internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(OPENMETRICS_CONTENT_TYPE).body(text))
}

async fn buildinfo(state: web::Data<NodeState>) -> HttpResponse {
    success(&state.build)
}

async fn flags(state: web::Data<NodeState>) -> HttpResponse {
    success(&state.flags)
}
