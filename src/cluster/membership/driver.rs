//! The membership task: owns the UDP socket, the foca instance and its timers, and turns
//! foca's output into datagrams, timers, the shared member view and events. One `select!`
//! loop; nothing in it blocks (DNS for seeds runs in a separate small task).

use super::broadcast::{Envelope, Handler};
use super::identity::{unix_ms_now, NodeIdentity, NodeMeta};
use super::packet;
use super::stats::DropReason;
use super::{
    Command, GossipBind, Member, MemberState, MembershipConfig, MembershipError, MembershipEvent,
    MembershipHandle, Result, Shared, View,
};
use crate::cluster::auth::ClusterKey;
use foca::{AccumulatingRuntime, Foca, Identity, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::StdRng;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

type SwimFoca = Foca<NodeIdentity, PostcardCodec, StdRng, Handler>;

/// A due-time ordered queue of foca timers.
struct TimerQueue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

struct Scheduled {
    at: Instant,
    seq: u64,
    timer: Timer<NodeIdentity>,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl TimerQueue {
    fn push(&mut self, at: Instant, timer: Timer<NodeIdentity>) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            timer,
        }));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|r| r.0.at)
    }

    fn pop_due(&mut self, now: Instant) -> Vec<Timer<NodeIdentity>> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|r| r.0.at <= now) {
            if let Some(Reverse(s)) = self.heap.pop() {
                due.push(s.timer);
            }
        }
        // foca's Ord on timers fixes up events delivered late in the same batch.
        due.sort();
        due
    }
}

fn foca_config(cfg: &MembershipConfig, key: Option<&ClusterKey>) -> Result<foca::Config> {
    let t = &cfg.timing;
    if t.probe_rtt.is_zero() || t.probe_rtt >= t.probe_period {
        return Err(MembershipError::Config(format!(
            "probe_rtt ({:?}) must be > 0 and < probe_period ({:?})",
            t.probe_rtt, t.probe_period
        )));
    }
    if t.suspect_to_down_after.is_zero() || t.gossip_interval.is_zero() {
        return Err(MembershipError::Config(
            "suspect_to_down_after and gossip_interval must be > 0".into(),
        ));
    }
    let payload_max = cfg
        .max_packet_size
        .checked_sub(packet::overhead(key))
        .filter(|n| *n >= 512)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| {
            MembershipError::Config(format!(
                "max_packet_size {} too small (need at least {})",
                cfg.max_packet_size,
                512 + packet::overhead(key)
            ))
        })?;
    let fanout = NonZeroUsize::new(t.gossip_fanout.max(1)).unwrap_or(NonZeroUsize::MIN);
    let size = NonZeroU32::new(cfg.expected_cluster_size.max(1)).unwrap_or(NonZeroU32::MIN);
    let mut c = foca::Config::new_lan(size);
    c.probe_period = t.probe_period;
    c.probe_rtt = t.probe_rtt;
    c.suspect_to_down_after = t.suspect_to_down_after;
    c.max_packet_size = payload_max;
    c.max_transmissions = max_transmissions(cfg.expected_cluster_size);
    c.notify_down_members = true;
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: t.gossip_interval,
        num_members: fanout,
    });
    c.periodic_announce = Some(foca::PeriodicParams {
        frequency: t.announce_interval,
        num_members: NonZeroUsize::MIN,
    });
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: t.announce_interval * 2,
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    Ok(c)
}

/// How many times each update rides on outgoing messages. foca's LAN default (4·log10(n+1))
/// leaves a node out of a 50-node epidemic now and then, which then learns of a death only by
/// probing the dead node itself, tens of seconds later. Updates are rare and small, so spend
/// twice that, with a floor for small clusters.
fn max_transmissions(cluster_size: u32) -> std::num::NonZeroU8 {
    let n = f64::from(cluster_size.max(1)) + 1.0;
    let tx = (8.0 * n.log10()).ceil().clamp(6.0, 30.0) as u8;
    std::num::NonZeroU8::new(tx).unwrap_or(std::num::NonZeroU8::MIN)
}

pub(super) async fn start(cfg: MembershipConfig, mut meta: NodeMeta) -> Result<MembershipHandle> {
    if meta.node_id.is_empty() {
        return Err(MembershipError::Config("node_id must not be empty".into()));
    }
    let key = cfg.cluster_key.clone().map(ClusterKey::new);
    let fconfig = foca_config(&cfg, key.as_ref())?;
    let std_socket = match cfg.bind {
        GossipBind::Socket(s) => s,
        GossipBind::Addr(addr) => std::net::UdpSocket::bind(addr)
            .map_err(|source| MembershipError::Bind { addr, source })?,
    };
    std_socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(std_socket)?;
    let local_addr = socket.local_addr()?;
    let advertise = cfg.advertise.unwrap_or(local_addr);
    if advertise.ip().is_unspecified() || advertise.port() == 0 {
        return Err(MembershipError::Config(format!(
            "cannot advertise {advertise}: set an explicit advertise address"
        )));
    }
    meta.gossip_addr = advertise;
    let identity = NodeIdentity::new(meta);

    let (events, _) = broadcast::channel(cfg.channel_capacity.max(16));
    let (bcasts, _) = broadcast::channel(cfg.channel_capacity.max(16));
    let shared = Arc::new(Shared {
        view: RwLock::new(View {
            local: identity.clone(),
            members: HashMap::new(),
        }),
        counters: Default::default(),
        filter: RwLock::new(None),
        events,
        broadcasts: bcasts.clone(),
        joined: Default::default(),
        running: std::sync::atomic::AtomicBool::new(true),
        local_addr,
    });
    let rng: StdRng = rand::make_rng();
    let foca = Foca::with_custom_broadcast(
        identity.clone(),
        fconfig,
        rng,
        PostcardCodec,
        Handler::new(bcasts),
    );
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let driver = Driver {
        catch_up: None,
        foca,
        rt: AccumulatingRuntime::new(),
        socket,
        key,
        shared: shared.clone(),
        timers: TimerQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        },
        max_packet: cfg.max_packet_size,
        replay_window_ms: u64::try_from(cfg.replay_window.as_millis()).unwrap_or(u64::MAX),
        boot_incarnation: identity.incarnation,
        bcast_seq: 0,
    };
    let task = tokio::spawn(driver.run(cmd_rx));
    if !cfg.seeds.is_empty() {
        tokio::spawn(seed_loop(
            cfg.seeds,
            cmd_tx.downgrade(),
            shared.clone(),
            advertise,
        ));
    }
    Ok(MembershipHandle {
        shared,
        cmd: cmd_tx,
        abort: task.abort_handle(),
    })
}

/// Resolves the seeds and asks the task to announce to them whenever we know no live member,
/// backing off from 200 ms to 5 s between rounds. Exits when the task is gone.
async fn seed_loop(
    seeds: Vec<String>,
    cmd: mpsc::WeakSender<Command>,
    shared: Arc<Shared>,
    own: SocketAddr,
) {
    let min = Duration::from_millis(200);
    let max = Duration::from_secs(5);
    let mut backoff = min;
    loop {
        if shared.joined.load(Ordering::SeqCst) {
            backoff = min;
            tokio::time::sleep(Duration::from_millis(500)).await;
            if cmd.upgrade().is_none() {
                return;
            }
            continue;
        }
        let mut addrs = Vec::new();
        for s in &seeds {
            match tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host(s)).await {
                Ok(Ok(found)) => addrs.extend(found.filter(|a| *a != own)),
                Ok(Err(e)) => tracing::debug!(seed = %s, error = %e, "cannot resolve seed"),
                Err(_) => tracing::debug!(seed = %s, "seed resolution timed out"),
            }
        }
        let Some(tx) = cmd.upgrade() else { return };
        if !addrs.is_empty() && tx.send(Command::Announce(addrs)).await.is_err() {
            return;
        }
        drop(tx);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// After joining, a node asks random members for their member lists every few hundred
/// milliseconds until a few rounds in a row teach it nothing new: a single Feed reply holds
/// only a handful of members, and waiting for probes and periodic announces to reveal the rest
/// of a large cluster takes tens of seconds.
struct CatchUp {
    next: Instant,
    known: usize,
    idle_rounds: u32,
    rounds: u32,
}

const CATCH_UP_PERIOD: Duration = Duration::from_millis(300);
/// Stop once this many rounds in a row taught nothing, but not before `MIN` rounds (when a
/// whole cluster starts at once, early answers come from nodes that know little yet).
const CATCH_UP_IDLE_ROUNDS: u32 = 6;
const CATCH_UP_MIN_ROUNDS: u32 = 20;
const CATCH_UP_MAX_ROUNDS: u32 = 100;

struct Driver {
    catch_up: Option<CatchUp>,
    foca: SwimFoca,
    rt: AccumulatingRuntime<NodeIdentity>,
    socket: UdpSocket,
    key: Option<ClusterKey>,
    shared: Arc<Shared>,
    timers: TimerQueue,
    max_packet: usize,
    replay_window_ms: u64,
    boot_incarnation: u64,
    bcast_seq: u64,
}

impl Driver {
    async fn run(mut self, mut cmd_rx: mpsc::Receiver<Command>) {
        // Large enough for any UDP datagram, so oversized packets are seen whole and counted.
        let mut buf = vec![0u8; 65_536];
        loop {
            let next = self.timers.next_deadline();
            let catch_up = self.catch_up.as_ref().map(|c| c.next);
            tokio::select! {
                _ = sleep_until_opt(catch_up), if catch_up.is_some() => self.catch_up_round(),
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let data = buf.get(..n).unwrap_or(&[]);
                        self.on_packet(data, from);
                    }
                    Err(e) => {
                        // ICMP errors from dead peers surface here on some systems; pause a
                        // moment so a persistent socket error cannot spin this loop.
                        tracing::debug!(error = %e, "gossip recv error");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                },
                _ = sleep_until_opt(next), if next.is_some() => {
                    for t in self.timers.pop_due(Instant::now()) {
                        if let Err(e) = self.foca.handle_timer(t, &mut self.rt) {
                            tracing::debug!(error = %e, "swim timer error");
                        }
                    }
                }
                c = cmd_rx.recv() => match c {
                    None => break,
                    Some(Command::Leave(reply)) => {
                        let r = self.foca.leave_cluster(&mut self.rt)
                            .map_err(|e| MembershipError::Swim(e.to_string()));
                        self.drain();
                        let _ = reply.send(r);
                        break;
                    }
                    Some(c) => self.on_command(c),
                },
            }
            self.drain();
        }
        self.shared.running.store(false, Ordering::SeqCst);
    }

    fn catch_up_round(&mut self) {
        let known = self.foca.num_members();
        let Some(c) = self.catch_up.as_mut() else {
            return;
        };
        if known > c.known {
            c.idle_rounds = 0;
        } else {
            c.idle_rounds += 1;
        }
        c.known = known;
        c.rounds += 1;
        let settled = c.idle_rounds >= CATCH_UP_IDLE_ROUNDS && c.rounds >= CATCH_UP_MIN_ROUNDS;
        if settled || c.rounds >= CATCH_UP_MAX_ROUNDS || known == 0 {
            self.catch_up = None;
            return;
        }
        c.next = Instant::now() + CATCH_UP_PERIOD;
        let pick = rand::random_range(0..known);
        let target = self.foca.iter_members().nth(pick).map(|m| m.id().clone());
        if let Some(target) = target {
            if let Err(e) = self.foca.announce(target, &mut self.rt) {
                tracing::debug!(error = %e, "catch-up announce failed");
            }
        }
    }

    fn on_packet(&mut self, data: &[u8], from: SocketAddr) {
        let counters = &self.shared.counters;
        counters.received(data.len());
        if self.shared.filtered(from) {
            counters.dropped(DropReason::Filtered);
            return;
        }
        let payload = match packet::open(
            data,
            self.key.as_ref(),
            self.max_packet,
            unix_ms_now(),
            self.replay_window_ms,
        ) {
            Ok(p) => p,
            Err(reason) => {
                counters.dropped(reason);
                return;
            }
        };
        if let Err(e) = self.foca.handle_data(payload, &mut self.rt) {
            tracing::trace!(%from, error = %e, "swim rejected a datagram");
            counters.dropped(DropReason::Rejected);
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Announce(addrs) => {
                for a in addrs {
                    if a == self.foca.identity().addr() {
                        continue;
                    }
                    let seed = NodeIdentity::placeholder(a);
                    if let Err(e) = self.foca.announce(seed, &mut self.rt) {
                        tracing::debug!(seed = %a, error = %e, "announce failed");
                    }
                }
            }
            Command::UpdateMeta(mut meta, reply) => {
                let _ = reply.send(self.update_meta(&mut meta));
            }
            Command::Broadcast(payload, reply) => {
                let _ = reply.send(self.broadcast(payload));
            }
            Command::Leave(reply) => {
                // Handled in `run`, which also stops the loop.
                let _ = reply.send(Err(MembershipError::Stopped));
            }
        }
    }

    fn update_meta(&mut self, meta: &mut NodeMeta) -> Result<()> {
        let current = self.foca.identity().clone();
        if meta.node_id != current.meta.node_id {
            return Err(MembershipError::WrongNode {
                expected: current.meta.node_id,
                got: meta.node_id.clone(),
            });
        }
        meta.gossip_addr = current.meta.gossip_addr;
        if *meta == current.meta {
            return Ok(());
        }
        let next = current.successor(meta.clone());
        let swim = |e: foca::Error| MembershipError::Swim(e.to_string());
        self.foca
            .change_identity(next, &mut self.rt)
            .map_err(swim)?;
        // Reconnect at once (change_identity resets the connection state) so probing and
        // periodic gossip carry the new identity immediately.
        self.foca
            .apply_many(std::iter::empty(), true, &mut self.rt)
            .map_err(swim)?;
        Ok(())
    }

    fn broadcast(&mut self, payload: Vec<u8>) -> Result<()> {
        self.bcast_seq += 1;
        let env = Envelope {
            origin: self.foca.identity().meta.node_id.clone(),
            incarnation: self.boot_incarnation,
            seq: self.bcast_seq,
            payload,
        };
        let bytes = env
            .encode()
            .map_err(|e| MembershipError::Swim(e.to_string()))?;
        let swim = |e: foca::Error| MembershipError::Swim(e.to_string());
        self.foca.add_broadcast(&bytes).map_err(swim)?;
        self.foca.broadcast(&mut self.rt).map_err(swim)?;
        Ok(())
    }

    /// Flushes what foca asked for (datagrams, timers, notifications) and refreshes the view.
    fn drain(&mut self) {
        while let Some((to, data)) = self.rt.to_send() {
            self.send(to.addr(), &data);
        }
        let now = Instant::now();
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.timers.push(now + after, timer);
        }
        while let Some(n) = self.rt.to_notify() {
            match n {
                OwnedNotification::Active => {
                    self.shared.joined.store(true, Ordering::SeqCst);
                    self.catch_up = Some(CatchUp {
                        next: now,
                        known: 0,
                        idle_rounds: 0,
                        rounds: 0,
                    });
                }
                OwnedNotification::Idle | OwnedNotification::Defunct => {
                    self.shared.joined.store(false, Ordering::SeqCst)
                }
                _ => {}
            }
        }
        self.refresh_view();
    }

    fn send(&self, to: SocketAddr, payload: &[u8]) {
        let counters = &self.shared.counters;
        if self.shared.filtered(to) {
            counters.dropped(DropReason::Filtered);
            return;
        }
        let data = packet::seal(payload, self.key.as_ref(), unix_ms_now());
        match self.socket.try_send_to(&data, to) {
            Ok(_) => counters.sent(data.len()),
            Err(e) => {
                tracing::trace!(%to, error = %e, "gossip send failed");
                counters.send_failed();
            }
        }
    }

    /// Folds foca's member table into the shared view and emits events for differences.
    fn refresh_view(&mut self) {
        let local = self.foca.identity();
        // Several identities of one node can coexist (a restart on another port); the highest
        // incarnation is the node's current one.
        let mut best: HashMap<&str, &foca::Member<NodeIdentity>> = HashMap::new();
        for m in self.foca.iter_membership_state() {
            let id = m.id();
            if id.is_placeholder() || id.meta.node_id == local.meta.node_id {
                continue;
            }
            match best.get(id.id()) {
                Some(prev) if prev.id().incarnation >= id.incarnation => {}
                _ => {
                    best.insert(id.id(), m);
                }
            }
        }
        let mut events = Vec::new();
        {
            let mut view = self.shared.view.write().unwrap_or_else(|e| e.into_inner());
            if view.local != *local {
                view.local = local.clone();
            }
            let now = std::time::Instant::now();
            for (node, m) in &best {
                let state = match m.state() {
                    foca::State::Alive => MemberState::Alive,
                    foca::State::Suspect => MemberState::Suspect,
                    foca::State::Down => MemberState::Down,
                };
                let ident = m.id();
                let prev = view.members.get(*node);
                let unchanged = prev.is_some_and(|p| {
                    p.state == state && p.incarnation == ident.incarnation && p.meta == ident.meta
                });
                if unchanged {
                    continue;
                }
                let was_live = prev.is_some_and(|p| p.state.is_live());
                let changed_identity = prev
                    .is_some_and(|p| p.incarnation != ident.incarnation || p.meta != ident.meta);
                match (was_live, state.is_live()) {
                    (false, true) => events.push(MembershipEvent::Up(ident.meta.clone())),
                    (true, false) => events.push(MembershipEvent::Down(node.to_string())),
                    (true, true) if changed_identity => {
                        events.push(MembershipEvent::Updated(ident.meta.clone()))
                    }
                    _ => {}
                }
                view.members.insert(
                    node.to_string(),
                    Member {
                        meta: ident.meta.clone(),
                        state,
                        incarnation: ident.incarnation,
                        local: false,
                        since: now,
                    },
                );
            }
            if view.members.len() != best.len() {
                let gone: Vec<String> = view
                    .members
                    .keys()
                    .filter(|k| !best.contains_key(k.as_str()))
                    .cloned()
                    .collect();
                for g in gone {
                    if let Some(m) = view.members.remove(&g) {
                        if m.state.is_live() {
                            events.push(MembershipEvent::Down(g));
                        }
                    }
                }
            }
        }
        for e in events {
            // No subscriber is fine.
            let _ = self.shared.events.send(e);
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmissions_grow_with_cluster_size() {
        assert_eq!(max_transmissions(1).get(), 6);
        assert_eq!(max_transmissions(3).get(), 6);
        assert_eq!(max_transmissions(50).get(), 14);
        assert_eq!(max_transmissions(u32::MAX).get(), 30);
    }

    #[test]
    fn timer_queue_pops_in_deadline_order() {
        let mut q = TimerQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        };
        let now = Instant::now();
        q.push(now + Duration::from_millis(20), Timer::PeriodicGossip(2));
        q.push(now + Duration::from_millis(10), Timer::PeriodicGossip(1));
        q.push(now + Duration::from_secs(10), Timer::PeriodicGossip(3));
        assert_eq!(q.next_deadline(), Some(now + Duration::from_millis(10)));
        let due = q.pop_due(now + Duration::from_millis(30));
        assert_eq!(due.len(), 2);
        assert_eq!(q.next_deadline(), Some(now + Duration::from_secs(10)));
        assert!(q.pop_due(now).is_empty());
    }

    #[test]
    fn bad_timings_are_refused() {
        let mut cfg = MembershipConfig::new(GossipBind::Addr("127.0.0.1:0".parse().unwrap()));
        cfg.timing.probe_rtt = cfg.timing.probe_period;
        assert!(foca_config(&cfg, None).is_err());
        let mut cfg = MembershipConfig::new(GossipBind::Addr("127.0.0.1:0".parse().unwrap()));
        cfg.max_packet_size = 100;
        assert!(foca_config(&cfg, None).is_err());
        let cfg = MembershipConfig::new(GossipBind::Addr("127.0.0.1:0".parse().unwrap()));
        assert!(foca_config(&cfg, None).is_ok());
    }
}
