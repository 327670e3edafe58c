//! The node's place in the cluster: SWIM membership (foca over UDP, `crate::cluster`), the
//! cluster-wide role assignment (a versioned map node → roles, spread by gossip, highest version
//! wins) and the role policy. Every node folds assignment updates in; when its own entry
//! changes it publishes the new roles on a watch channel (the node forwards them to its
//! supervisor, so this layer knows nothing of actors) and re-announces them in its gossip
//! identity. One node — the smallest live id — applies the role policy when holders die.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::policy::{apply_policy, policy_leader};
use crate::cluster::membership::{
    GossipBind, Member, Membership, MembershipConfig, MembershipError, MembershipEvent,
    MembershipHandle, NodeMeta, MAX_BROADCAST_BYTES,
};
use crate::cluster::roles::{RoleAssignments, RoleUpdate};
use crate::config::Role;

/// Broadcast payload tags.
const TAG_UPDATE: u8 = 1;
const TAG_MAP: u8 = 2;
const POLICY_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("role assignment: {0}")]
    Roles(String),
    #[error("invalid roles for {node}: {reason}")]
    InvalidRoles { node: String, reason: String },
}

pub type Result<T> = std::result::Result<T, ClusterError>;

/// What starting the cluster service needs.
pub struct ClusterSettings {
    pub node_id: String,
    pub http_addr: SocketAddr,
    pub rpc_addr: SocketAddr,
    pub gossip: UdpSocket,
    pub advertise: Option<SocketAddr>,
    pub seeds: Vec<String>,
    pub key: Option<Vec<u8>>,
    pub roles: Vec<Role>,
    pub policy: BTreeMap<Role, usize>,
    /// How long a node must be down before the policy moves its roles.
    pub grace: Duration,
}

pub struct ClusterService {
    handle: MembershipHandle,
    me: String,
    assignments: Mutex<RoleAssignments>,
    /// This node's assigned roles, as last decided by the assignment map.
    local_roles: watch::Sender<Vec<Role>>,
    policy: BTreeMap<Role, usize>,
    grace: Duration,
    down_since: Mutex<HashMap<String, Instant>>,
}

fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.to_string()).collect()
}

/// Role names from gossip; names this binary does not know are ignored (a newer peer).
pub fn parse_roles(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

fn tagged(tag: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(tag);
    out.extend(body);
    out
}

impl ClusterService {
    /// Joins (or forms) the cluster and starts the gossip, event and policy loops.
    pub async fn start(settings: ClusterSettings) -> Result<Arc<Self>> {
        let meta = NodeMeta {
            node_id: settings.node_id.clone(),
            http_addr: settings.http_addr,
            rpc_addr: settings.rpc_addr,
            gossip_addr: settings.advertise.unwrap_or(settings.http_addr),
            roles: role_names(&settings.roles),
            role_epoch: 1,
            started_at_ms: crate::time::now_ms(),
        };
        let mut cfg = MembershipConfig::new(GossipBind::Socket(settings.gossip));
        cfg.advertise = settings.advertise;
        cfg.seeds = settings.seeds;
        cfg.cluster_key = settings.key;
        let handle = Membership::start(cfg, meta).await?;
        let mut assignments = RoleAssignments::new();
        assignments.set(
            &settings.node_id,
            role_names(&settings.roles),
            &settings.node_id,
        );
        let (local_roles, _) = watch::channel(settings.roles.clone());
        let svc = Arc::new(ClusterService {
            handle,
            me: settings.node_id,
            assignments: Mutex::new(assignments),
            local_roles,
            policy: settings.policy,
            grace: settings.grace,
            down_since: Mutex::new(HashMap::new()),
        });
        svc.clone().spawn_loops();
        svc.broadcast_map().await;
        Ok(svc)
    }

    fn spawn_loops(self: Arc<Self>) {
        let svc = self.clone();
        tokio::task::spawn_local(async move {
            let mut rx = svc.handle.subscribe_broadcasts();
            loop {
                match rx.recv().await {
                    Ok(b) => svc.on_broadcast(&b.payload).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "gossip broadcasts lagged")
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let svc = self.clone();
        tokio::task::spawn_local(async move {
            let mut rx = svc.handle.subscribe();
            loop {
                match rx.recv().await {
                    Ok(ev) => svc.on_event(ev).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "membership events lagged")
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let svc = self;
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(POLICY_TICK);
            loop {
                tick.tick().await;
                if !svc.handle.is_running() {
                    break;
                }
                svc.policy_round().await;
            }
        });
    }

    async fn on_broadcast(&self, payload: &[u8]) {
        let Some((&tag, body)) = payload.split_first() else {
            return;
        };
        let changed = match tag {
            TAG_UPDATE => match RoleUpdate::decode(body) {
                Ok(u) => {
                    let mine = u.node == self.me;
                    self.assignments.lock().apply(&u) && mine
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dropping an undecodable role update");
                    false
                }
            },
            TAG_MAP => match RoleAssignments::decode(body) {
                Ok(m) => self.assignments.lock().merge(&m).contains(&self.me),
                Err(e) => {
                    tracing::warn!(error = %e, "dropping an undecodable role map");
                    false
                }
            },
            _ => false,
        };
        if changed {
            self.apply_local().await;
        }
    }

    async fn on_event(&self, ev: MembershipEvent) {
        match ev {
            MembershipEvent::Up(meta) => {
                tracing::info!(node = %meta.node_id, "member up");
                self.down_since.lock().remove(&meta.node_id);
                // Anti-entropy: a newcomer learns the whole map.
                self.broadcast_map().await;
            }
            MembershipEvent::Down(id) => {
                tracing::warn!(node = %id, "member down");
                self.down_since
                    .lock()
                    .entry(id)
                    .or_insert_with(Instant::now);
            }
            MembershipEvent::Updated(_) => {}
        }
    }

    async fn broadcast_map(&self) {
        let chunks = self
            .assignments
            .lock()
            .encode_chunks(MAX_BROADCAST_BYTES - 1);
        match chunks {
            Ok(chunks) => {
                for c in chunks {
                    if let Err(e) = self.handle.broadcast(tagged(TAG_MAP, c)).await {
                        tracing::warn!(error = %e, "cannot broadcast the role map");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode the role map"),
        }
    }

    /// This node's assigned roles: the current value, then every change (the node's supervisor
    /// reconciles to them).
    pub fn local_roles(&self) -> watch::Receiver<Vec<Role>> {
        self.local_roles.subscribe()
    }

    /// Publishes this node's assigned roles and re-announces them in gossip.
    async fn apply_local(&self) {
        let (roles, epoch) = {
            let a = self.assignments.lock();
            (
                parse_roles(a.roles_of(&self.me)),
                a.get(&self.me).map(|e| e.version).unwrap_or(0),
            )
        };
        self.local_roles.send_replace(roles.clone());
        let mut meta = self.handle.local_meta();
        meta.roles = role_names(&roles);
        meta.role_epoch = epoch;
        if let Err(e) = self.handle.update_meta(meta).await {
            tracing::warn!(error = %e, "cannot re-announce this node's roles");
        }
    }

    /// Assigns `roles` to `node` cluster-wide (any node may do this for any node).
    pub async fn set_roles(&self, node: &str, roles: Vec<Role>) -> Result<u64> {
        let mut set = BTreeSet::new();
        for r in &roles {
            if !set.insert(*r) {
                return Err(ClusterError::InvalidRoles {
                    node: node.to_string(),
                    reason: format!("role {r} is listed more than once"),
                });
            }
        }
        let update = self
            .assignments
            .lock()
            .set(node, role_names(&roles), &self.me);
        let version = update.entry.version;
        match update.encode() {
            Ok(body) => self.handle.broadcast(tagged(TAG_UPDATE, body)).await?,
            Err(e) => return Err(ClusterError::Roles(e.to_string())),
        }
        if node == self.me {
            self.apply_local().await;
        }
        tracing::info!(node, roles = ?roles, version, "role assignment changed");
        Ok(version)
    }

    async fn policy_round(&self) {
        let live: BTreeSet<String> = self
            .handle
            .live_members()
            .into_iter()
            .map(|m| m.meta.node_id)
            .collect();
        if policy_leader(&live) != Some(&self.me) {
            return;
        }
        let dead: BTreeSet<String> = {
            let down = self.down_since.lock();
            down.iter()
                .filter(|(id, since)| since.elapsed() >= self.grace && !live.contains(*id))
                .map(|(id, _)| id.clone())
                .collect()
        };
        if dead.is_empty() {
            return;
        }
        let assigned: BTreeMap<String, Vec<Role>> = self
            .assignments
            .lock()
            .iter()
            .map(|(n, e)| (n.clone(), parse_roles(&e.roles)))
            .collect();
        for (node, roles) in apply_policy(&assigned, &live, &dead, &self.policy) {
            tracing::warn!(node = %node, roles = ?roles, "role policy reassigns roles after a node died");
            if let Err(e) = self.set_roles(&node, roles).await {
                tracing::error!(error = %e, "role policy change failed");
            }
        }
    }

    pub fn node_id(&self) -> &str {
        &self.me
    }

    pub fn handle(&self) -> &MembershipHandle {
        &self.handle
    }

    pub fn members(&self) -> Vec<Member> {
        self.handle.members()
    }

    /// Every live member, this node excluded.
    pub fn live_peers(&self) -> Vec<NodeMeta> {
        self.handle
            .live_members()
            .into_iter()
            .filter(|m| !m.local)
            .map(|m| m.meta)
            .collect()
    }

    /// Live members whose gossiped roles include `role`, this node excluded.
    pub fn live_peers_with_role(&self, role: Role) -> Vec<NodeMeta> {
        let name = role.to_string();
        self.handle
            .live_members()
            .into_iter()
            .filter(|m| !m.local && m.meta.roles.contains(&name))
            .map(|m| m.meta)
            .collect()
    }

    /// node → (version, roles) of the assignment map.
    pub fn assignments(&self) -> BTreeMap<String, (u64, Vec<String>)> {
        self.assignments
            .lock()
            .iter()
            .map(|(n, e)| (n.clone(), (e.version, e.roles.clone())))
            .collect()
    }

    pub async fn leave(&self) {
        if let Err(e) = self.handle.leave().await {
            tracing::warn!(error = %e, "leaving the cluster failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_role_names_from_newer_peers_are_ignored() {
        let roles = parse_roles(&[
            "compactor".to_string(),
            "oracle".to_string(),
            "store_shard".to_string(),
        ]);
        assert_eq!(roles, vec![Role::Compactor, Role::StoreShard]);
    }

    #[test]
    fn payloads_are_tagged() {
        assert_eq!(tagged(TAG_MAP, vec![7, 8]), vec![TAG_MAP, 7, 8]);
    }
}
