//! The cluster admin API: `GET /api/v1/admin/cluster` (every member with its state, roles and
//! addresses, the role-assignment map, and who owns each singleton) and
//! `PUT /api/v1/admin/nodes/{id}/roles`, which any node accepts for any node: the change spreads
//! by gossip and the target node's supervisor reconciles; and `GET /api/v1/admin/compactor`,
//! the compactor's progress.

use actix_web::{web, HttpRequest};
use serde_json::json;

use super::admin::{authorize, parse_roles, RolesBody};
use super::error::{success, ApiError, ApiResult};
use super::AdminState;
use crate::actors::compactor::STREAM_LEASE_PREFIX;
use crate::cluster::lease::live_leases;
use crate::config::Role;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/cluster", web::get().to(cluster))
        .route(
            "/api/v1/admin/nodes/{id}/roles",
            web::put().to(put_node_roles),
        )
        .route("/api/v1/admin/compactor", web::get().to(compactor));
}

/// `GET /api/v1/admin/compactor`: what the compactor is doing — the pass in progress (stream,
/// plan, progress), the streams this node holds, the last pass's report. Answered by a node
/// that runs the compactor role (forwarded there from any other node).
async fn compactor(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    authorize(&req, &state)?;
    if let Some(forwarded) =
        super::forward::forward_unless_local(&state.router, &req, &[], Role::Compactor).await
    {
        return forwarded;
    }
    let status = state.compactor.lock().clone();
    Ok(success(
        &json!({"node": state.router.node_id, "status": status}),
    ))
}

async fn cluster(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    authorize(&req, &state)?;
    let members: Vec<serde_json::Value> = state
        .router
        .cluster
        .members()
        .into_iter()
        .map(|m| {
            json!({
                "id": m.meta.node_id,
                "state": format!("{:?}", m.state).to_lowercase(),
                "local": m.local,
                "http_addr": m.meta.http_addr.to_string(),
                "rpc_addr": m.meta.rpc_addr.to_string(),
                "gossip_addr": m.meta.gossip_addr.to_string(),
                "roles": m.meta.roles,
                "role_epoch": m.meta.role_epoch,
                "incarnation": m.incarnation,
                "started_at_ms": m.meta.started_at_ms,
            })
        })
        .collect();
    let assignments: serde_json::Map<String, serde_json::Value> = state
        .router
        .cluster
        .assignments()
        .into_iter()
        .map(|(node, (version, roles))| (node, json!({"version": version, "roles": roles})))
        .collect();
    // One lease per stream of blocks, held by the compactor that owns the stream.
    let leases = match live_leases(state.bucket.as_ref(), STREAM_LEASE_PREFIX).await {
        Ok(list) => json!(list
            .into_iter()
            .map(|(name, r)| json!({"name": name, "holder": r.holder, "expires_at_ms": r.expires_at_ms}))
            .collect::<Vec<_>>()),
        Err(e) => json!({"error": e.to_string()}),
    };
    let assigned: Vec<String> = state
        .router
        .cluster
        .assignments()
        .into_iter()
        .filter(|(_, (_, r))| r.iter().any(|x| x == Role::Compactor.as_str()))
        .map(|(n, _)| n)
        .collect();
    let stats = state.router.cluster.handle().stats();
    Ok(success(&json!({
        "node": state.router.node_id,
        "members": members,
        "assignments": assignments,
        "singletons": {"compactor": {"leases": leases, "assigned": assigned}},
        "gossip": {
            "packets_in": stats.packets_in, "packets_out": stats.packets_out,
            "bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out,
            "dropped": format!("{:?}", stats.dropped),
        },
    })))
}

async fn put_node_roles(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    authorize(&req, &state)?;
    let node = path.into_inner();
    let parsed: RolesBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_data(format!("invalid body, want {{\"roles\":[...]}}: {e}")))?;
    let roles = parse_roles(&parsed.roles)?;
    let known = state
        .router
        .cluster
        .members()
        .iter()
        .any(|m| m.meta.node_id == node)
        || state.router.cluster.assignments().contains_key(&node);
    if !known {
        return Err(ApiError::new(
            super::error::ErrorType::NotFound,
            format!("no cluster member is called {node:?}"),
        ));
    }
    let version = state
        .router
        .cluster
        .set_roles(&node, roles.clone())
        .await
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(success(
        &json!({"node": node, "desired": roles, "version": version}),
    ))
}
