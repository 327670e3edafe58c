//! The Compactor role: every `compactor.interval` it runs one pass of the bucket compactor
//! (`storage::compactor::exec::run_pass`: compaction, vertical dedup of HA replicas, downsampling
//! to 5m and 1h (`compactor.downsample`), retention,
//! delayed deletion, partial-upload cleanup). Several nodes may hold the role
//! (`role_policy: {compactor: N}`): each stream of blocks is owned by rendezvous hashing of its
//! id over the live compactors, and before any write for a stream the owner must also hold
//! that stream's lease object in the bucket (`strata/leases/compactor-<stream id>.json`),
//! renewed while the stream is being compacted. Ownership spreads streams over the nodes; the
//! lease keeps a stream single even when gossip is partitioned or a node comes back, so one
//! stream is never compacted by two nodes. An owner keeps its streams' leases between passes
//! (renewed in the background) and gives one up only when ownership moves or the role stops,
//! so a stream does not flap between nodes. When a compactor dies its leases expire and the
//! survivors take its streams over on their next pass.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::LocalBoxFuture;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;
use crate::cluster::lease::{Lease, LeaseState};
use crate::cluster::ownership;
use crate::cluster::service::ClusterService;
use crate::config::Role;
use crate::storage::bucket::ObjectStore;
use crate::storage::compactor::exec::{run_pass, PassReport, Progress, StreamGuard};
use crate::storage::compactor::plan::StreamKey;
use crate::storage::compactor::settings::settings_from_config;

/// Lease name prefix of a stream: `compactor-<stream id>`.
pub const STREAM_LEASE_PREFIX: &str = "compactor-";
/// How long a stream lease lasts unless renewed; renewed every third of it.
pub const STREAM_LEASE_TTL: Duration = Duration::from_secs(15);

/// What the compactor on this node is doing: the role's status detail and
/// `GET /api/v1/admin/compactor`. Shared between the role (writer) and HTTP (reader).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompactorStatus {
    /// A pass is running now.
    pub running: bool,
    /// The stream being compacted and the plan number within it.
    pub current_stream: Option<String>,
    pub current_plan: Option<usize>,
    /// The last progress event of the running pass.
    pub progress: Option<Progress>,
    /// Ids of the streams whose lease this node holds right now.
    pub held_streams: Vec<String>,
    pub passes: u64,
    pub last_pass: Option<PassReport>,
    /// Unix ms when the last pass ended without an error.
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
}

pub type SharedStatus = Arc<Mutex<CompactorStatus>>;

/// A stream lease this node holds, renewed in the background until released.
struct Held {
    lease: Arc<Lease>,
    stop: CancellationToken,
    /// Until when acting is safe, as of the last renewal (ms).
    act_until_ms: Arc<Mutex<i64>>,
}

/// The role's `StreamGuard`: rendezvous ownership over the live compactors plus a lease per
/// stream in the bucket.
pub struct LeasedStreams {
    bucket: Arc<dyn ObjectStore>,
    cluster: Arc<ClusterService>,
    me: String,
    held: Mutex<HashMap<String, Held>>,
    status: SharedStatus,
}

impl LeasedStreams {
    /// Publishes the ids of the leases held now in the shared status.
    fn publish_held(&self) {
        let mut ids: Vec<String> = self.held.lock().keys().cloned().collect();
        ids.sort();
        self.status.lock().held_streams = ids;
    }

    pub fn new(
        bucket: Arc<dyn ObjectStore>,
        cluster: Arc<ClusterService>,
        me: String,
        status: SharedStatus,
    ) -> Self {
        LeasedStreams {
            bucket,
            cluster,
            me,
            held: Mutex::new(HashMap::new()),
            status,
        }
    }

    /// The live compactors (this node included), as ownership hashing wants them.
    fn live_compactors(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .cluster
            .live_peers_with_role(Role::Compactor)
            .into_iter()
            .map(|m| m.node_id)
            .collect();
        ids.push(self.me.clone());
        ids.sort();
        ids.dedup();
        ids
    }

    /// Gives back every lease still held (the role stops).
    pub async fn release_all(&self) {
        let held: Vec<Held> = self.held.lock().drain().map(|(_, h)| h).collect();
        for h in held {
            h.stop.cancel();
            if let Err(e) = h.lease.release().await {
                tracing::warn!(error = %e, "releasing a stream lease failed");
            }
        }
        self.publish_held();
    }
}

/// Whether this node owns `stream` among `live` compactors (pure: rendezvous hashing).
pub fn owns_stream(stream_id: &str, me: &str, live: &[String]) -> bool {
    ownership::is_owner(stream_id.as_bytes(), me, live, 1)
}

#[async_trait::async_trait]
impl StreamGuard for LeasedStreams {
    async fn acquire(&self, stream: &StreamKey) -> bool {
        let id = stream.id();
        if !owns_stream(&id, &self.me, &self.live_compactors()) {
            // Ownership moved away (a node joined): stop renewing, let the new owner take it.
            let gone = self.held.lock().remove(&id);
            if let Some(h) = gone {
                h.stop.cancel();
                if let Err(e) = h.lease.release().await {
                    tracing::warn!(stream = %stream, error = %e, "giving up a stream lease failed");
                }
                self.publish_held();
            }
            return false;
        }
        let renewed_until = self.held.lock().get(&id).map(|h| *h.act_until_ms.lock());
        if let Some(until) = renewed_until {
            // Held and renewed in the background: acting is safe while the renewal keeps up.
            if until > crate::time::now_ms() {
                return true;
            }
            // Lost or lapsed: forget it and try to take it again like a new stream.
            let lapsed = self.held.lock().remove(&id);
            if let Some(h) = lapsed {
                h.stop.cancel();
            }
            self.publish_held();
        }
        let lease = Arc::new(Lease::new(
            self.bucket.clone(),
            &format!("{STREAM_LEASE_PREFIX}{id}"),
            &self.me,
            STREAM_LEASE_TTL,
        ));
        match lease.acquire().await {
            Ok(LeaseState::Held { act_until_ms }) => {
                let stop = CancellationToken::new();
                let until = Arc::new(Mutex::new(act_until_ms));
                spawn_renewal(lease.clone(), until.clone(), stop.clone());
                self.held.lock().insert(
                    id.clone(),
                    Held {
                        lease,
                        stop,
                        act_until_ms: until,
                    },
                );
                self.publish_held();
                true
            }
            Ok(LeaseState::Standby { holder, .. }) => {
                tracing::debug!(stream = %stream, %holder, "stream lease held by another compactor");
                false
            }
            Err(e) => {
                tracing::warn!(stream = %stream, error = %e, "cannot take the stream lease");
                false
            }
        }
    }

    /// The pass is done with the stream; the owner keeps its lease (renewed in the background)
    /// until ownership moves or the role stops.
    async fn release(&self, stream: &StreamKey) {
        tracing::debug!(stream = %stream, "pass done with stream; lease kept");
    }
}

/// Renews a held lease every third of its TTL until `stop`; a lost lease stops acting.
fn spawn_renewal(lease: Arc<Lease>, until: Arc<Mutex<i64>>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STREAM_LEASE_TTL / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match lease.acquire().await {
                Ok(LeaseState::Held { act_until_ms }) => *until.lock() = act_until_ms,
                Ok(LeaseState::Standby { holder, .. }) => {
                    tracing::warn!(lease = lease.key(), %holder, "stream lease lost");
                    *until.lock() = 0;
                    return;
                }
                // A failed renewal keeps the old deadline: acting stops when it passes.
                Err(e) => {
                    tracing::warn!(lease = lease.key(), error = %e, "renewing a stream lease failed")
                }
            }
        }
    });
}

pub struct Compactor {
    ctx: Arc<RoleContext>,
    guard: Arc<LeasedStreams>,
    busy: Rc<RefCell<bool>>,
}

impl Compactor {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        let guard = Arc::new(LeasedStreams::new(
            ctx.bucket.clone(),
            ctx.cluster.clone(),
            ctx.config.node.id.clone(),
            ctx.compactor_status.clone(),
        ));
        Compactor {
            ctx,
            guard,
            busy: Rc::new(RefCell::new(false)),
        }
    }
}

/// One pass, recorded in the shared status.
async fn pass(ctx: Arc<RoleContext>, guard: Arc<LeasedStreams>) {
    let scratch = ctx.config.node.data_dir.join("compactor");
    let settings = settings_from_config(&ctx.config, scratch);
    let status = ctx.compactor_status.clone();
    status.lock().running = true;
    let progress_status = status.clone();
    let progress = move |p: Progress| {
        let mut s = progress_status.lock();
        if let Progress::StreamStart { stream, plan } = &p {
            s.current_stream = Some(stream.clone());
            s.current_plan = Some(*plan);
        }
        s.progress = Some(p);
    };
    let res = run_pass(
        ctx.bucket.clone(),
        &settings,
        guard.as_ref(),
        Some(ctx.compactor_metrics.as_ref()),
        &progress,
        std::time::SystemTime::now(),
    )
    .await;
    let mut s = status.lock();
    s.running = false;
    s.current_stream = None;
    s.current_plan = None;
    s.passes += 1;
    match res {
        Ok(report) => {
            if !report.blocks_written.is_empty()
                || !report.no_compact_marked.is_empty()
                || !report.deleted.is_empty()
            {
                tracing::info!(
                    written = report.blocks_written.len(),
                    marked_no_compact = report.no_compact_marked.len(),
                    deleted = report.deleted.len(),
                    errors = report.errors.len(),
                    "compactor pass"
                );
            }
            if report.errors.is_empty() {
                s.last_success_ms = Some(crate::time::now_ms());
                s.last_error = None;
            } else {
                s.last_error = Some(report.errors.join("; "));
            }
            s.last_pass = Some(report);
        }
        Err(e) => {
            tracing::error!(error = %e, "compactor pass failed; retrying next interval");
            s.last_error = Some(e.to_string());
        }
    }
}

impl RoleWorker for Compactor {
    fn started(&mut self, ctx: &mut Context<RoleActor>) {
        let every = self.ctx.config.compactor.interval.as_std();
        let run = {
            let (shared, guard, busy) = (self.ctx.clone(), self.guard.clone(), self.busy.clone());
            move |_act: &mut RoleActor, ctx: &mut Context<RoleActor>| {
                if *busy.borrow() {
                    return;
                }
                *busy.borrow_mut() = true;
                let busy = busy.clone();
                let fut = pass(shared.clone(), guard.clone());
                ctx.spawn(actix::fut::wrap_future(async move {
                    fut.await;
                    *busy.borrow_mut() = false;
                }));
            }
        };
        let first = run.clone();
        ctx.run_later(Duration::ZERO, move |act, ctx| first(act, ctx));
        ctx.run_interval(every, run);
    }

    fn detail(&self) -> serde_json::Value {
        serde_json::to_value(&*self.ctx.compactor_status.lock()).unwrap_or_default()
    }

    /// Gives the stream leases back so a successor does not wait out their TTL.
    fn shutdown(&mut self) -> LocalBoxFuture<'static, ()> {
        let guard = self.guard.clone();
        Box::pin(async move { guard.release_all().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_has_exactly_one_owner_among_the_live_compactors() {
        let live: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut per_node = HashMap::new();
        for i in 0..200 {
            let id = format!("{i:016x}");
            let owners: Vec<&String> = live.iter().filter(|n| owns_stream(&id, n, &live)).collect();
            assert_eq!(owners.len(), 1, "stream {id}");
            *per_node.entry(owners[0].clone()).or_insert(0) += 1;
        }
        assert_eq!(
            per_node.len(),
            3,
            "streams spread over every node: {per_node:?}"
        );
    }

    #[test]
    fn a_dead_compactors_streams_move_and_the_others_stay() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let after: Vec<String> = ["a", "c"].iter().map(|s| s.to_string()).collect();
        for i in 0..200 {
            let id = format!("{i:016x}");
            for n in ["a", "c"] {
                if owns_stream(&id, n, &all) {
                    assert!(owns_stream(&id, n, &after), "stream {id} left {n}");
                }
            }
        }
    }
}
