//! Per-node health, for the cluster page and for operators: `GET /api/v1/status/node` answers
//! for this node (ready, roles, head series, targets up and down, shipping lag, queries in
//! flight, resident memory), and `GET /api/v1/status/nodes` asks every live member for its
//! answer in parallel and lists them all, so a browser behind the load balancer sees every
//! node from any one. A member that does not answer is listed with the reason, never left out.
//! Read-only figures, so no admin token is asked (as Prometheus's status pages ask none).

use std::time::Duration;

use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};

use super::error::{success, ApiResult};
use super::{QueryState, StatusState};
use crate::actors::supervisor::IsReady;
use crate::config::Role;
use crate::scrape::scrape_loop::Health;

const NODE_PATH: &str = "/api/v1/status/node";
const NODES_PATH: &str = "/api/v1/status/nodes";
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(NODE_PATH, web::get().to(node))
        .route(NODES_PATH, web::get().to(nodes));
}

/// One node's health card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHealth {
    pub id: String,
    pub ready: bool,
    pub version: String,
    /// Roles running now (not only assigned).
    pub roles: Vec<String>,
    pub started_at: String,
    /// Series in the head of the local TSDB; `None` when no role writes to it.
    pub head_series: Option<u64>,
    pub targets_up: u64,
    pub targets_down: u64,
    pub targets_unknown: u64,
    /// Age of the oldest block cut but not shipped yet (0: all shipped); `None` when the node
    /// does not ship.
    pub shipping_lag_seconds: Option<f64>,
    pub queries_in_flight: u64,
    pub resident_memory_bytes: Option<u64>,
}

/// A member as `/api/v1/status/nodes` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct MemberHealth {
    pub id: String,
    pub http_addr: String,
    pub state: String,
    pub health: Option<NodeHealth>,
    pub error: Option<String>,
}

async fn node(status: web::Data<StatusState>, query: web::Data<QueryState>) -> ApiResult {
    Ok(success(&local_health(&status, &query).await))
}

async fn local_health(status: &StatusState, query: &QueryState) -> NodeHealth {
    let router = &status.router;
    let ready = status.supervisor.send(IsReady).await.unwrap_or(false);
    let mut roles: Vec<String> = Role::ALL
        .iter()
        .filter(|r| router.runs(**r))
        .map(|r| r.to_string())
        .collect();
    roles.sort();
    let writes_tsdb = router.runs(Role::ScraperShipper) || router.runs(Role::RuleEvaluator);
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    if router.runs(Role::ScraperShipper) {
        for t in status.scrape.snapshot().active {
            match t.status.health {
                Health::Up => up += 1,
                Health::Down => down += 1,
                Health::Unknown => unknown += 1,
            }
        }
    }
    let shipping_lag_seconds = router
        .runs(Role::ScraperShipper)
        .then(|| status.shipper.oldest_unshipped_age_seconds());
    NodeHealth {
        id: router.node_id.clone(),
        ready,
        version: status.build.version.clone(),
        roles,
        started_at: crate::time::rfc3339_nanos_or_seconds(status.started_at),
        head_series: writes_tsdb.then(|| status.db.head().num_series() as u64),
        targets_up: up,
        targets_down: down,
        targets_unknown: unknown,
        shipping_lag_seconds,
        queries_in_flight: query.service.queries_in_flight() as u64,
        resident_memory_bytes: resident_memory_bytes(),
    }
}

/// Resident set size from `/proc/self/status` (`VmRSS`, in kB); `None` off Linux.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn nodes(
    req: HttpRequest,
    status: web::Data<StatusState>,
    query: web::Data<QueryState>,
) -> ApiResult {
    // The route prefix this node is served under, from the path it was asked on: members
    // share the prefix (the load balancer mounts them all at one path).
    let prefix = req
        .path()
        .strip_suffix(NODES_PATH)
        .unwrap_or("")
        .to_string();
    let members = status.router.cluster.members();
    let client = reqwest::Client::builder()
        .timeout(PEER_TIMEOUT)
        .build()
        .ok();
    let asks = members.iter().map(|m| {
        let url = format!("http://{}{prefix}{NODE_PATH}", m.meta.http_addr);
        let client = client.clone();
        let local = m.local;
        let live = m.state.is_live();
        let (status, query) = (status.clone(), query.clone());
        async move {
            if local {
                return Ok(local_health(&status, &query).await);
            }
            if !live {
                return Err("not alive in the cluster's view".to_string());
            }
            let Some(client) = client else {
                return Err("no HTTP client".to_string());
            };
            ask(&client, &url).await
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut out: Vec<MemberHealth> = members
        .iter()
        .zip(answers)
        .map(|(m, answer)| {
            let (health, error) = match answer {
                Ok(h) => (Some(h), None),
                Err(e) => (None, Some(e)),
            };
            MemberHealth {
                id: m.meta.node_id.clone(),
                http_addr: m.meta.http_addr.to_string(),
                state: format!("{:?}", m.state).to_lowercase(),
                health,
                error,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(success(&out))
}

async fn ask(client: &reqwest::Client, url: &str) -> Result<NodeHealth, String> {
    #[derive(Deserialize)]
    struct Answer {
        data: NodeHealth,
    }
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let resp = resp.error_for_status().map_err(|e| e.to_string())?;
    let a: Answer = resp.json().await.map_err(|e| e.to_string())?;
    Ok(a.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_on_linux() {
        assert!(resident_memory_bytes().is_some_and(|b| b > 0));
    }
}
