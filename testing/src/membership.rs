//! Bare SWIM members (no node around them) on 127.0.0.1:0, for the membership tests.

use std::net::SocketAddr;

use strata::cluster::membership::{
    GossipBind, Membership, MembershipConfig, MembershipHandle, NodeMeta,
};

/// A node's gossip metadata with placeholder addresses.
pub fn node_meta(id: &str, roles: &[&str]) -> NodeMeta {
    let a: SocketAddr = "127.0.0.1:1".parse().expect("placeholder address");
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

/// Starts a member `id` (role store_shard) joining `seeds`, optionally with a cluster key and
/// a fixed bind address (default 127.0.0.1:0).
pub async fn start_member(
    id: &str,
    seeds: &[SocketAddr],
    key: Option<&[u8]>,
    bind: Option<SocketAddr>,
) -> MembershipHandle {
    let bind = bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut cfg = MembershipConfig::new(GossipBind::Addr(bind));
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.cluster_key = key.map(|k| k.to_vec());
    Membership::start(cfg, node_meta(id, &["store_shard"]))
        .await
        .expect("membership starts")
}

/// The ids of the members `h` sees alive, itself included.
pub fn live_ids(h: &MembershipHandle) -> Vec<String> {
    h.live_members()
        .into_iter()
        .map(|m| m.meta.node_id)
        .collect()
}

/// Whether every one of `nodes` sees exactly `n` live members.
pub fn sees_all(nodes: &[&MembershipHandle], n: usize) -> bool {
    nodes.iter().all(|h| h.live_count() == n)
}
