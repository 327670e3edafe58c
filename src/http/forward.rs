//! Any node answers every HTTP API: a request for a role this node does not run is forwarded to
//! a live node that runs it (chosen by rendezvous hashing over the holders, so one client's
//! requests stick to one node), and the answer names the node that served it in
//! `X-Strata-Served-By`. A forwarded request is marked so it is never forwarded twice.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::error::{ApiError, ApiResult};
use super::Router;
use crate::cluster::ownership::owners;
use crate::config::Role;

pub const SERVED_BY: &str = "X-Strata-Served-By";
const FORWARDED: &str = "X-Strata-Forwarded-By";
const FORWARD_TIMEOUT: Duration = Duration::from_secs(120);

/// `None` when this node runs `role` itself; otherwise the forwarded answer (or why not).
pub async fn forward_unless_local(
    router: &Router,
    req: &HttpRequest,
    body: &[u8],
    role: Role,
) -> Option<ApiResult> {
    if router.runs(role) {
        return None;
    }
    Some(forward(router, req, body, role).await)
}

async fn forward(router: &Router, req: &HttpRequest, body: &[u8], role: Role) -> ApiResult {
    if req.headers().contains_key(FORWARDED) {
        return Err(ApiError::unavailable(format!(
            "role {role} is not running on node {} either",
            router.node_id
        )));
    }
    let peers = router.cluster.live_peers_with_role(role);
    let ids: Vec<String> = peers.iter().map(|p| p.node_id.clone()).collect();
    let key = req
        .connection_info()
        .realip_remote_addr()
        .unwrap_or("")
        .to_string();
    let Some(target) = owners(key.as_str(), &ids, 1)
        .into_iter()
        .next()
        .and_then(|id| peers.into_iter().find(|p| p.node_id == id))
    else {
        return Err(ApiError::unavailable(format!(
            "no live node runs the {role} role"
        )));
    };
    let url = format!(
        "http://{}{}",
        target.http_addr,
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let client = reqwest::Client::builder()
        .timeout(FORWARD_TIMEOUT)
        .build()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let mut out = client
        .request(method, &url)
        .header(FORWARDED, router.node_id.as_str())
        .body(body.to_vec());
    for name in [
        "content-type",
        "content-encoding",
        "authorization",
        "accept",
        "x-prometheus-remote-write-version",
    ] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            out = out.header(name, v);
        }
    }
    let resp = out.send().await.map_err(|e| {
        ApiError::unavailable(format!(
            "forwarding to {} ({}) failed: {e}",
            target.node_id, target.http_addr
        ))
    })?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Which resolutions answered a query is part of its answer (`query::RESOLUTIONS_HEADER`).
    let resolutions = resp
        .headers()
        .get(super::query::RESOLUTIONS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let served_by = resp
        .headers()
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&target.node_id)
        .to_string();
    let bytes = resp.bytes().await.map_err(|e| {
        ApiError::unavailable(format!("reading the answer of {}: {e}", target.node_id))
    })?;
    let mut builder = HttpResponse::build(status);
    if let Some(ct) = content_type {
        builder.insert_header(("content-type", ct));
    }
    builder.insert_header((SERVED_BY, served_by));
    if let Some(r) = resolutions {
        builder.insert_header((super::query::RESOLUTIONS_HEADER, r));
    }
    Ok(builder.body(bytes))
}
