//! What a node says about itself in gossip: [`NodeMeta`] (addresses, roles, role epoch) wrapped
//! in the SWIM identity [`NodeIdentity`]. The identity's `incarnation` starts at the process
//! start time in milliseconds and only grows (restart, meta update, automatic rejoin after being
//! declared down), so a newer identity of the same node always wins against an older one.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The metadata a node gossips about itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeMeta {
    pub node_id: String,
    /// HTTP (Prometheus API, admin API) address peers forward to.
    pub http_addr: SocketAddr,
    /// TCP address of the RPC transport.
    pub rpc_addr: SocketAddr,
    /// UDP address of the gossip socket (filled in by [`super::Membership::start`] from the
    /// advertise address).
    pub gossip_addr: SocketAddr,
    /// Role names the node runs now (e.g. `store_shard`).
    pub roles: Vec<String>,
    /// Version of the role assignment the `roles` come from.
    pub role_epoch: u64,
    pub started_at_ms: i64,
}

/// The SWIM identity: one per (node, incarnation). Foca keys members by the gossip address
/// ([`foca::Identity::Addr`]) so a seed can be contacted before its node id is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Grows on every restart, meta update and rejoin; higher wins.
    pub incarnation: u64,
    pub meta: NodeMeta,
}

/// Milliseconds since the Unix epoch as the gossip layer counts them (0 if the clock is
/// before 1970): incarnations and packet timestamps.
pub(crate) fn unix_ms_now() -> u64 {
    u64::try_from(crate::time::now_ms()).unwrap_or(0)
}

impl NodeIdentity {
    /// A fresh identity for a starting process.
    pub fn new(meta: NodeMeta) -> Self {
        NodeIdentity {
            incarnation: unix_ms_now().max(1),
            meta,
        }
    }

    pub fn id(&self) -> &str {
        &self.meta.node_id
    }

    /// The same node with new meta and a higher incarnation.
    pub fn successor(&self, meta: NodeMeta) -> Self {
        NodeIdentity {
            incarnation: unix_ms_now().max(self.incarnation.saturating_add(1)),
            meta,
        }
    }

    /// A stand-in for a seed whose node id is not known yet: foca accepts an announce addressed
    /// to any identity with its own address.
    pub(crate) fn placeholder(addr: SocketAddr) -> Self {
        NodeIdentity {
            incarnation: 0,
            meta: NodeMeta {
                node_id: String::new(),
                http_addr: addr,
                rpc_addr: addr,
                gossip_addr: addr,
                roles: Vec::new(),
                role_epoch: 0,
                started_at_ms: 0,
            },
        }
    }

    pub(crate) fn is_placeholder(&self) -> bool {
        self.meta.node_id.is_empty()
    }
}

impl foca::Identity for NodeIdentity {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(self.successor(self.meta.clone()))
    }

    fn addr(&self) -> SocketAddr {
        self.meta.gossip_addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Ties cannot happen for one process; across processes sharing an address (restart
        // within the same millisecond) fall back to a total order on the id.
        (self.incarnation, &self.meta.node_id) > (adversary.incarnation, &adversary.meta.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn meta(id: &str) -> NodeMeta {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        NodeMeta {
            node_id: id.into(),
            http_addr: a,
            rpc_addr: a,
            gossip_addr: a,
            roles: vec!["store_shard".into()],
            role_epoch: 1,
            started_at_ms: 5,
        }
    }

    #[test]
    fn successors_and_renewals_win() {
        let a = NodeIdentity::new(meta("n1"));
        let b = a.successor(meta("n1"));
        assert!(b.incarnation > a.incarnation);
        assert!(b.win_addr_conflict(&a));
        assert!(!a.win_addr_conflict(&b));
        let c = b.renew().unwrap();
        assert!(c.win_addr_conflict(&b));
        assert_eq!(c.addr(), a.addr());
        assert!(NodeIdentity::placeholder(a.addr()).is_placeholder());
    }
}
