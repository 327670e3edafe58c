//! Strata's admin API under `/api/v1/admin/`: this node's roles (read and change at runtime) and
//! the test-only fault switch. Every admin route requires the configured bearer token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::{success, ApiError, ApiResult, ErrorType};
use super::AdminState;
use crate::actors::role::InjectFault;
use crate::actors::supervisor::{FaultRole, GetRoles};
use crate::config::Role;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/roles", web::get().to(get_roles))
        .route("/api/v1/admin/roles", web::put().to(put_roles))
        .route(
            "/api/v1/admin/roles/{role}/fault",
            web::post().to(inject_fault),
        );
}

/// Checks `Authorization: Bearer <token>` in constant time when a token is configured.
pub fn authorize(req: &HttpRequest, state: &AdminState) -> Result<(), ApiError> {
    let Some(expected) = state.token.as_deref() else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorType::Unauthorized,
            "invalid admin token",
        )),
        None => Err(ApiError::new(
            ErrorType::Unauthorized,
            "admin API requires a bearer token",
        )),
    }
}

async fn get_roles(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    authorize(&req, &state)?;
    let roles = state
        .supervisor
        .send(GetRoles)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(success(&serde_json::json!({
        "node": state.router.node_id,
        "desired": roles.desired,
        "ready": roles.ready,
        "roles": roles.roles,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

/// Parses role names, naming the first unknown one.
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>, ApiError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Role>().map_err(|_| {
                let known: Vec<String> = Role::ALL.iter().map(|r| r.to_string()).collect();
                ApiError::bad_data(format!(
                    "unknown role {n:?}; known roles: {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

async fn put_roles(req: HttpRequest, state: web::Data<AdminState>, body: web::Bytes) -> ApiResult {
    authorize(&req, &state)?;
    let parsed: RolesBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_data(format!("invalid body, want {{\"roles\":[...]}}: {e}")))?;
    let roles = parse_roles(&parsed.roles)?;
    let version = state
        .router
        .cluster
        .set_roles(&state.router.node_id, roles.clone())
        .await
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(success(
        &serde_json::json!({ "node": state.router.node_id, "desired": roles, "version": version }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    kind: String,
    #[serde(default)]
    message: Option<String>,
}

async fn inject_fault(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    if !state.fault_injection {
        return Err(ApiError::new(
            ErrorType::NotFound,
            "fault injection is disabled",
        ));
    }
    authorize(&req, &state)?;
    let role = parse_roles(std::slice::from_ref(&path.into_inner()))?.remove(0);
    let fault: FaultBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_data(format!("invalid body: {e}")))?;
    let fault = match fault.kind.as_str() {
        "panic" => InjectFault::Panic,
        "error" => InjectFault::Error(fault.message.unwrap_or_else(|| "requested".to_string())),
        other => {
            return Err(ApiError::bad_data(format!(
                "unknown fault kind {other:?}, want panic or error"
            )))
        }
    };
    state
        .supervisor
        .send(FaultRole(role, fault))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status":"success","data":null})))
}
