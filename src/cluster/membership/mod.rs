//! Cluster membership: SWIM (the `foca` crate) over UDP. [`Membership::start`] binds the gossip
//! socket, spawns one tokio task that owns the socket and the SWIM state, and returns a cheap,
//! cloneable [`MembershipHandle`]. Through it callers read the member list (each member carries
//! the [`NodeMeta`] it gossips: addresses, roles, role epoch), subscribe to up/updated/down
//! events, change the local meta at runtime, spread small custom broadcasts, leave, and read
//! traffic counters. With a cluster key every datagram is HMAC-authenticated (see `packet`).
//! Seeds (`host:port`, DNS allowed) are retried with backoff whenever the node knows no live
//! member.

pub mod broadcast;
mod driver;
pub mod identity;
pub mod packet;
pub mod stats;

pub use broadcast::{ClusterBroadcast, MAX_BROADCAST_BYTES};
pub use identity::{NodeIdentity, NodeMeta};
pub use stats::{DropReason, DroppedPackets, GossipStats};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast as tbroadcast, mpsc, oneshot};

/// Errors of the membership layer.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("cannot bind the gossip socket on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gossip socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid membership config: {0}")]
    Config(String),
    #[error("meta update is for node {got:?} but this node is {expected:?}")]
    WrongNode { expected: String, got: String },
    #[error("broadcast payload of {size} bytes exceeds the {max}-byte limit")]
    BroadcastTooLarge { size: usize, max: usize },
    #[error("the membership task has stopped")]
    Stopped,
    #[error("SWIM protocol error: {0}")]
    Swim(String),
}

pub type Result<T> = std::result::Result<T, MembershipError>;

/// Where the gossip socket comes from.
#[derive(Debug)]
pub enum GossipBind {
    /// Bind this address (port 0 picks a free port).
    Addr(SocketAddr),
    /// Use a socket the caller already bound (e.g. to learn its port before starting).
    Socket(std::net::UdpSocket),
}

/// SWIM timings. The defaults suit a LAN: a dead node is suspected after one failed probe
/// round (direct and indirect) and declared down `suspect_to_down_after` later, typically
/// within 2-4 s.
#[derive(Debug, Clone)]
pub struct SwimTiming {
    pub probe_period: Duration,
    /// Wait for a direct ack before asking others to probe indirectly; < `probe_period`.
    pub probe_rtt: Duration,
    pub suspect_to_down_after: Duration,
    /// Period of the extra gossip rounds that spread updates faster than probes alone.
    pub gossip_interval: Duration,
    pub gossip_fanout: usize,
    /// Period at which a node asks one peer for its member list (heals missed joins).
    pub announce_interval: Duration,
}

impl Default for SwimTiming {
    fn default() -> Self {
        SwimTiming {
            probe_period: Duration::from_millis(500),
            probe_rtt: Duration::from_millis(200),
            suspect_to_down_after: Duration::from_millis(1500),
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            announce_interval: Duration::from_secs(10),
        }
    }
}

/// Everything [`Membership::start`] needs besides the local meta.
#[derive(Debug)]
pub struct MembershipConfig {
    pub bind: GossipBind,
    /// Address peers send gossip to; default: the bound address (which must then not be a
    /// wildcard address).
    pub advertise: Option<SocketAddr>,
    /// `host:port` of other nodes' gossip sockets; retried with backoff until one answers.
    pub seeds: Vec<String>,
    /// Shared secret; when set every datagram carries an HMAC-SHA256 and unauthenticated
    /// datagrams are dropped.
    pub cluster_key: Option<Vec<u8>>,
    pub timing: SwimTiming,
    /// Rough cluster size; scales how many times an update is retransmitted.
    pub expected_cluster_size: u32,
    /// Largest datagram sent or accepted, envelope included.
    pub max_packet_size: usize,
    /// Authenticated datagrams whose timestamp is further than this from our clock are
    /// dropped as replays (also bounds tolerated clock skew).
    pub replay_window: Duration,
    /// Capacity of the event and broadcast channels; slow subscribers see `Lagged`.
    pub channel_capacity: usize,
}

impl MembershipConfig {
    pub fn new(bind: GossipBind) -> Self {
        MembershipConfig {
            bind,
            advertise: None,
            seeds: Vec::new(),
            cluster_key: None,
            timing: SwimTiming::default(),
            expected_cluster_size: 16,
            max_packet_size: 1400,
            replay_window: Duration::from_secs(60),
            channel_capacity: 1024,
        }
    }
}

/// How this node currently sees a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Alive,
    /// Missed a probe; still counted as live until declared down.
    Suspect,
    Down,
}

impl MemberState {
    /// Alive or Suspect: SWIM treats suspects as live until the suspicion expires.
    pub fn is_live(self) -> bool {
        !matches!(self, MemberState::Down)
    }
}

/// One member as seen from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub meta: NodeMeta,
    pub state: MemberState,
    /// Identity incarnation (grows on restart and on every meta update).
    pub incarnation: u64,
    /// True for the entry describing this node itself.
    pub local: bool,
    /// When this node last saw the state or identity change.
    pub since: Instant,
}

/// A change in the member list. Never emitted for the local node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// A node joined, or came back after being down (possibly restarted).
    Up(NodeMeta),
    /// A live node changed its meta (roles, addresses) or restarted before anyone noticed.
    Updated(NodeMeta),
    /// A node was declared down or left (its node id).
    Down(String),
}

type DropFilter = dyn Fn(SocketAddr) -> bool + Send + Sync;

pub(crate) struct View {
    pub(crate) local: NodeIdentity,
    pub(crate) members: HashMap<String, Member>,
}

pub(crate) struct Shared {
    pub(crate) view: RwLock<View>,
    pub(crate) counters: stats::Counters,
    pub(crate) filter: RwLock<Option<Arc<DropFilter>>>,
    pub(crate) events: tbroadcast::Sender<MembershipEvent>,
    pub(crate) broadcasts: tbroadcast::Sender<ClusterBroadcast>,
    pub(crate) joined: AtomicBool,
    pub(crate) running: AtomicBool,
    pub(crate) local_addr: SocketAddr,
}

impl Shared {
    pub(crate) fn filtered(&self, addr: SocketAddr) -> bool {
        let f = self.filter.read().unwrap_or_else(|e| e.into_inner());
        match f.as_ref() {
            Some(f) => f(addr),
            None => false,
        }
    }
}

pub(crate) enum Command {
    Announce(Vec<SocketAddr>),
    UpdateMeta(NodeMeta, oneshot::Sender<Result<()>>),
    Broadcast(Vec<u8>, oneshot::Sender<Result<()>>),
    Leave(oneshot::Sender<Result<()>>),
}

/// Entry point; see [`Membership::start`].
pub struct Membership;

impl Membership {
    /// Binds the socket and starts the membership task. `meta.gossip_addr` is overwritten with
    /// the advertised address. Must be called inside a tokio runtime.
    pub async fn start(cfg: MembershipConfig, meta: NodeMeta) -> Result<MembershipHandle> {
        driver::start(cfg, meta).await
    }
}

/// Handle to a running membership task. Clones share the task; it stops after `leave()`,
/// `abort()`, or when every handle is dropped.
#[derive(Clone)]
pub struct MembershipHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) abort: tokio::task::AbortHandle,
}

impl MembershipHandle {
    /// The node id of this node.
    pub fn local_id(&self) -> String {
        self.read_view().local.meta.node_id.clone()
    }

    /// The meta this node currently gossips.
    pub fn local_meta(&self) -> NodeMeta {
        self.read_view().local.meta.clone()
    }

    /// The bound gossip socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Every known member, this node included (`local: true`), sorted by node id. Down members
    /// stay listed until SWIM forgets them.
    pub fn members(&self) -> Vec<Member> {
        let view = self.read_view();
        let mut out: Vec<Member> = view.members.values().cloned().collect();
        out.push(Member {
            meta: view.local.meta.clone(),
            state: MemberState::Alive,
            incarnation: view.local.incarnation,
            local: true,
            since: Instant::now(),
        });
        out.sort_by(|a, b| a.meta.node_id.cmp(&b.meta.node_id));
        out
    }

    /// How this node sees `node_id` (the local node included), without copying the list.
    pub fn member(&self, node_id: &str) -> Option<Member> {
        let view = self.read_view();
        if view.local.meta.node_id == node_id {
            return Some(Member {
                meta: view.local.meta.clone(),
                state: MemberState::Alive,
                incarnation: view.local.incarnation,
                local: true,
                since: Instant::now(),
            });
        }
        view.members.get(node_id).cloned()
    }

    /// Number of live members, this node included.
    pub fn live_count(&self) -> usize {
        let view = self.read_view();
        1 + view.members.values().filter(|m| m.state.is_live()).count()
    }

    /// Alive and Suspect members, this node included.
    pub fn live_members(&self) -> Vec<Member> {
        let mut m = self.members();
        m.retain(|m| m.state.is_live());
        m
    }

    /// Ids of live nodes that currently run `role` (per their gossiped meta), sorted; the
    /// holder list for rendezvous ownership.
    pub fn live_nodes_with_role(&self, role: &str) -> Vec<String> {
        self.live_members()
            .into_iter()
            .filter(|m| m.meta.roles.iter().any(|r| r == role))
            .map(|m| m.meta.node_id)
            .collect()
    }

    pub fn subscribe(&self) -> tbroadcast::Receiver<MembershipEvent> {
        self.shared.events.subscribe()
    }

    /// Replaces the local meta (e.g. after a role change) and spreads it by switching to a
    /// new identity with a higher incarnation. `node_id` must stay the same; `gossip_addr` is
    /// kept as advertised.
    pub async fn update_meta(&self, meta: NodeMeta) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::UpdateMeta(meta, tx)).await?;
        rx.await.map_err(|_| MembershipError::Stopped)?
    }

    /// Spreads `payload` (at most [`MAX_BROADCAST_BYTES`]) to every live node once; delivered
    /// to their `subscribe_broadcasts()` receivers but not to our own.
    pub async fn broadcast(&self, payload: Vec<u8>) -> Result<()> {
        if payload.len() > MAX_BROADCAST_BYTES {
            return Err(MembershipError::BroadcastTooLarge {
                size: payload.len(),
                max: MAX_BROADCAST_BYTES,
            });
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Broadcast(payload, tx)).await?;
        rx.await.map_err(|_| MembershipError::Stopped)?
    }

    pub fn subscribe_broadcasts(&self) -> tbroadcast::Receiver<ClusterBroadcast> {
        self.shared.broadcasts.subscribe()
    }

    /// Tells a few peers we are leaving (so they mark us Down at once) and stops the task.
    pub async fn leave(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Leave(tx)).await?;
        rx.await.map_err(|_| MembershipError::Stopped)?
    }

    pub fn stats(&self) -> GossipStats {
        self.shared.counters.snapshot()
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst) && !self.abort.is_finished()
    }

    /// TEST ONLY: drop every datagram to or from an address for which `filter` returns true
    /// (counted as `dropped.filtered`), to simulate a network partition.
    pub fn set_drop_filter(&self, filter: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) {
        let mut f = self
            .shared
            .filter
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *f = Some(Arc::new(filter));
    }

    /// TEST ONLY: removes the drop filter.
    pub fn clear_drop_filter(&self) {
        let mut f = self
            .shared
            .filter
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *f = None;
    }

    /// TEST ONLY: kills the task without a goodbye, like a SIGKILL of the process.
    pub fn abort(&self) {
        self.abort.abort();
        self.shared.running.store(false, Ordering::SeqCst);
    }

    fn read_view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.shared.view.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn send(&self, c: Command) -> Result<()> {
        self.cmd.send(c).await.map_err(|_| MembershipError::Stopped)
    }
}
