//! A health card per node for the `/cluster` page: `GET /api/v1/status/node` is this node's
//! (ready, the roles running, head series, its scrape targets up/down/unknown, resident memory,
//! threads, start time); `GET /api/v1/status/nodes` is every live member's, each asked over
//! HTTP with the path of this request (so the route prefix carries over), with a warning naming
//! any member that did not answer. Read-only, no token, like the other `status/*` endpoints.

use std::time::Duration;

use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};

use super::error::{success, success_with_annotations, ApiResult};
use super::StatusState;
use crate::actors::supervisor::IsReady;
use crate::config::Role;
use crate::scrape::scrape_loop::Health;

const PEER_TIMEOUT: Duration = Duration::from_secs(5);
const NODE_PATH: &str = "/api/v1/status/node";
const NODES_PATH: &str = "/api/v1/status/nodes";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(NODE_PATH, web::get().to(node))
        .route(NODES_PATH, web::get().to(nodes));
}

/// One node's card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCard {
    pub node: String,
    pub ready: bool,
    pub roles: Vec<String>,
    pub head_series: u64,
    pub targets_up: u64,
    pub targets_down: u64,
    pub targets_unknown: u64,
    /// Resident memory (VmRSS), 0 when the OS does not say.
    pub rss_bytes: u64,
    pub threads: u64,
    pub started_at: String,
}

/// A field of `/proc/self/status` (`VmRSS:    1234 kB` → 1234).
pub fn proc_status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

async fn card(state: &StatusState) -> NodeCard {
    let ready = state.supervisor.send(IsReady).await.unwrap_or(false);
    let roles = Role::ALL
        .iter()
        .filter(|r| state.router.runs(**r))
        .map(|r| r.to_string())
        .collect();
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    for t in state.scrape.snapshot().active {
        match t.status.health {
            Health::Up => up += 1,
            Health::Down => down += 1,
            Health::Unknown => unknown += 1,
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    NodeCard {
        node: state.router.node_id.clone(),
        ready,
        roles,
        head_series: state.db.head().num_series() as u64,
        targets_up: up,
        targets_down: down,
        targets_unknown: unknown,
        rss_bytes: proc_status_field(&status, "VmRSS").unwrap_or(0) * 1024,
        threads: proc_status_field(&status, "Threads").unwrap_or(0),
        started_at: crate::time::rfc3339_nanos_or_seconds(state.started_at),
    }
}

async fn node(state: web::Data<StatusState>) -> ApiResult {
    Ok(success(&card(&state).await))
}

#[derive(Deserialize)]
struct PeerAnswer {
    data: NodeCard,
}

async fn nodes(req: HttpRequest, state: web::Data<StatusState>) -> ApiResult {
    // This request's path minus `/api/v1/status/nodes` is the route prefix the peers share.
    let prefix = req
        .path()
        .strip_suffix(NODES_PATH)
        .unwrap_or_default()
        .to_string();
    let mut cards = vec![card(&state).await];
    let peers: Vec<_> = state
        .router
        .cluster
        .members()
        .into_iter()
        .filter(|m| !m.local && m.state.is_live())
        .collect();
    let mut warnings = Vec::new();
    if !peers.is_empty() {
        match reqwest::Client::builder().timeout(PEER_TIMEOUT).build() {
            Ok(client) => {
                let asks = peers.iter().map(|m| {
                    let url = format!("http://{}{prefix}{NODE_PATH}", m.meta.http_addr);
                    let send = client.get(url).send();
                    async move {
                        let a: PeerAnswer = send.await?.error_for_status()?.json().await?;
                        Ok::<NodeCard, reqwest::Error>(a.data)
                    }
                });
                for (m, answer) in peers.iter().zip(futures::future::join_all(asks).await) {
                    match answer {
                        Ok(c) => cards.push(c),
                        Err(e) => warnings.push(format!(
                            "node {} ({}) did not answer: {e}",
                            m.meta.node_id, m.meta.http_addr
                        )),
                    }
                }
            }
            Err(e) => warnings.push(format!("cannot ask the other nodes: {e}")),
        }
    }
    cards.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(success_with_annotations(
        &serde_json::json!({ "nodes": cards }),
        &warnings,
        &[],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields_parse() {
        let text = "Name:\tstrata\nVmRSS:\t  123456 kB\nThreads:\t31\n";
        assert_eq!(proc_status_field(text, "VmRSS"), Some(123456));
        assert_eq!(proc_status_field(text, "Threads"), Some(31));
        assert_eq!(proc_status_field(text, "VmSwap"), None);
    }
}
