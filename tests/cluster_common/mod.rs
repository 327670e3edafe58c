//! Helpers shared by the cluster integration tests: start nodes on 127.0.0.1:0 and wait on
//! conditions with deadlines.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use strata::cluster::membership::{
    GossipBind, Membership, MembershipConfig, MembershipHandle, NodeMeta,
};

pub fn meta(id: &str, roles: &[&str]) -> NodeMeta {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    NodeMeta {
        node_id: id.to_string(),
        http_addr: a,
        rpc_addr: a,
        gossip_addr: a,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        role_epoch: 1,
        started_at_ms: 0,
    }
}

pub async fn start_node(
    id: &str,
    seeds: &[SocketAddr],
    key: Option<&[u8]>,
    bind: Option<SocketAddr>,
) -> MembershipHandle {
    let bind = bind.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
    let mut cfg = MembershipConfig::new(GossipBind::Addr(bind));
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.cluster_key = key.map(|k| k.to_vec());
    Membership::start(cfg, meta(id, &["store_shard"]))
        .await
        .expect("membership starts")
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`. Returns the
/// time it took.
pub async fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) -> Duration {
    wait_for_every(what, limit, Duration::from_millis(10), cond).await
}

/// Like `wait_for` with a chosen polling period (for checks that are costly on big clusters).
pub async fn wait_for_every(
    what: &str,
    limit: Duration,
    poll: Duration,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(poll).await;
    }
}

pub fn live_ids(h: &MembershipHandle) -> Vec<String> {
    h.live_members()
        .into_iter()
        .map(|m| m.meta.node_id)
        .collect()
}

pub fn sees_all(nodes: &[&MembershipHandle], n: usize) -> bool {
    nodes.iter().all(|h| h.live_count() == n)
}
