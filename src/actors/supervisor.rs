//! The NodeSupervisor: keeps the node's running role actors equal to its desired roles. It starts
//! each role in its own arbiter (thread) so that a panic in one role cannot stop another, notices
//! a dead mailbox or a reported failure, and restarts the role with exponential backoff. The
//! decision of what to do is the pure function `plan`; the actor only carries it out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use futures::future::join_all;

use super::metrics::RoleMetrics;
use super::panics::PanicLog;
use super::role::{
    InjectFault, Observe, RoleActor, RoleFailed, RoleState, RoleStatus, RoleWorker, Shutdown,
};
use crate::cluster::running::RunningRoles;
use crate::config::Role;

/// How often liveness is checked and restarts that are due are carried out.
const TICK: Duration = Duration::from_millis(200);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A role that stayed up this long is healthy again: its next failure restarts fast.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("role {0} is listed more than once")]
    DuplicateRole(Role),
    #[error("role {0} is not running on this node")]
    NotRunning(Role),
    #[error("the supervisor is not answering: {0}")]
    Mailbox(String),
}

pub type Result<T> = std::result::Result<T, SupervisorError>;

/// Builds the worker of a role. Called on the role's own arbiter thread at every (re)start.
pub trait RoleFactory: Send + Sync + 'static {
    fn build(&self, role: Role) -> Box<dyn RoleWorker>;
}

/// What the planner needs to know about a role the supervisor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    pub state: RoleState,
    /// The actor's mailbox is connected.
    pub alive: bool,
    /// For a failed role: its backoff has elapsed.
    pub restart_due: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start(Role),
    Stop(Role),
    Restart(Role),
}

/// Desired roles vs. held roles → what to do. Stops come first (reverse role order), then
/// starts and restarts in role order, so that a node moving work frees it before taking more.
pub fn plan(desired: &BTreeSet<Role>, held: &BTreeMap<Role, SlotView>) -> Vec<Action> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for (role, slot) in held.iter().rev() {
        if !desired.contains(role) && slot.state != RoleState::Stopping {
            stops.push(Action::Stop(*role));
        }
    }
    for role in desired {
        match held.get(role) {
            None => starts.push(Action::Start(*role)),
            Some(slot) if slot.state == RoleState::Failed && slot.restart_due => {
                starts.push(Action::Restart(*role))
            }
            Some(_) => {}
        }
    }
    stops.extend(starts);
    stops
}

/// Backoff before restart number `failures` (1-based) of a role that keeps failing.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

struct Slot {
    state: RoleState,
    arbiter: Option<Arbiter>,
    addr: Option<Addr<RoleActor>>,
    thread: Arc<Mutex<Option<ThreadId>>>,
    incarnation: u64,
    started_at: SystemTime,
    started_instant: Instant,
    restarts: u64,
    failures: u32,
    last_error: Option<String>,
    /// The error the current incarnation reported before it stopped.
    failed_reason: Option<String>,
    restart_at: Option<Instant>,
}

impl Slot {
    fn view(&self, now: Instant) -> SlotView {
        SlotView {
            state: self.state,
            alive: self.addr.as_ref().is_some_and(|a| a.connected()),
            restart_due: self.restart_at.is_some_and(|t| now >= t),
        }
    }

    fn status(&self, role: Role) -> RoleStatus {
        RoleStatus {
            role,
            state: self.state,
            started_at: crate::time::rfc3339_millis(self.started_at),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
            detail: serde_json::Value::Null,
        }
    }
}

pub struct NodeSupervisor {
    desired: BTreeSet<Role>,
    slots: BTreeMap<Role, Slot>,
    factory: Arc<dyn RoleFactory>,
    metrics: Arc<RoleMetrics>,
    running: Arc<RunningRoles>,
    next_incarnation: u64,
    shutting_down: bool,
    /// Why role threads died, for their status.
    panics: Arc<PanicLog>,
}

impl NodeSupervisor {
    pub fn new(
        roles: &[Role],
        factory: Arc<dyn RoleFactory>,
        metrics: Arc<RoleMetrics>,
        running: Arc<RunningRoles>,
    ) -> Self {
        NodeSupervisor {
            desired: roles.iter().copied().collect(),
            slots: BTreeMap::new(),
            factory,
            metrics,
            running,
            next_incarnation: 1,
            shutting_down: false,
            panics: PanicLog::new(),
        }
    }

    fn spawn_role(
        &mut self,
        role: Role,
        ctx: &mut Context<Self>,
        restarts: u64,
        last_error: Option<String>,
    ) -> Slot {
        let incarnation = self.next_incarnation;
        self.next_incarnation += 1;
        let arbiter = Arbiter::new();
        let thread = Arc::new(Mutex::new(None));
        let thread_in = thread.clone();
        let panics = self.panics.clone();
        let factory = self.factory.clone();
        let failures = ctx.address().recipient::<RoleFailed>();
        let started_at = SystemTime::now();
        let err = last_error.clone();
        let addr = RoleActor::start_in_arbiter(&arbiter.handle(), move |_ctx| {
            let id = std::thread::current().id();
            panics.watch(id);
            if let Ok(mut t) = thread_in.lock() {
                *t = Some(id);
            }
            RoleActor {
                role,
                incarnation,
                started_at,
                restarts,
                last_error: err,
                worker: factory.build(role),
                failures,
            }
        });
        Slot {
            state: RoleState::Running,
            arbiter: Some(arbiter),
            addr: Some(addr),
            thread,
            incarnation,
            started_at,
            started_instant: Instant::now(),
            restarts,
            failures: 0,
            last_error,
            failed_reason: None,
            restart_at: None,
        }
    }

    /// Marks dead roles as failed (with the panic message when there was one) and schedules
    /// their restart.
    fn detect_failures(&mut self, now: Instant) {
        for (role, slot) in self.slots.iter_mut() {
            let dead = slot.addr.as_ref().is_some_and(|a| !a.connected());
            if slot.state != RoleState::Running || !dead {
                continue;
            }
            let panic_msg = slot
                .thread
                .lock()
                .ok()
                .and_then(|t| *t)
                .and_then(|id| self.panics.take(id));
            let reason = match (panic_msg, slot.failed_reason.take()) {
                (Some(msg), _) => format!("panic: {msg}"),
                (None, Some(reported)) => reported,
                (None, None) => "role actor stopped unexpectedly".to_string(),
            };
            slot.last_error = Some(reason);
            if slot.started_instant.elapsed() >= STABLE_AFTER {
                slot.failures = 0;
            }
            slot.failures += 1;
            slot.state = RoleState::Failed;
            slot.addr = None;
            if let Some(arb) = slot.arbiter.take() {
                arb.stop();
            }
            let wait = backoff(slot.failures);
            slot.restart_at = Some(now + wait);
            tracing::warn!(role = %role, error = ?slot.last_error, backoff_ms = wait.as_millis() as u64, "role died; restarting after backoff");
        }
    }

    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.detect_failures(now);
        let views: BTreeMap<Role, SlotView> =
            self.slots.iter().map(|(r, s)| (*r, s.view(now))).collect();
        for action in plan(&self.desired, &views) {
            match action {
                Action::Start(role) => {
                    let slot = self.spawn_role(role, ctx, 0, None);
                    self.slots.insert(role, slot);
                }
                Action::Restart(role) => {
                    let (restarts, failures, last_error) = match self.slots.get(&role) {
                        Some(s) => (s.restarts + 1, s.failures, s.last_error.clone()),
                        None => (1, 1, None),
                    };
                    let mut slot = self.spawn_role(role, ctx, restarts, last_error);
                    slot.failures = failures;
                    self.metrics.role_restarted(role);
                    self.slots.insert(role, slot);
                }
                Action::Stop(role) => self.stop_role(role, ctx),
            }
        }
        self.publish_metrics();
    }

    fn stop_role(&mut self, role: Role, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(&role) else {
            return;
        };
        slot.state = RoleState::Stopping;
        let addr = slot.addr.take();
        let arbiter = slot.arbiter.take();
        let incarnation = slot.incarnation;
        let fut = async move {
            if let Some(addr) = addr {
                let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, addr.send(Shutdown)).await;
            }
            if let Some(arb) = arbiter {
                arb.stop();
            }
        };
        ctx.spawn(fut.into_actor(self).map(move |_, act, _ctx| {
            if act
                .slots
                .get(&role)
                .is_some_and(|s| s.incarnation == incarnation)
            {
                act.slots.remove(&role);
            }
            act.publish_metrics();
        }));
    }

    fn publish_metrics(&self) {
        for role in Role::ALL {
            let state = self.slots.get(&role).map(|s| s.state);
            self.metrics.set_role_state(role, state);
        }
        let running = self
            .slots
            .iter()
            .filter(|(_, s)| s.state == RoleState::Running)
            .map(|(r, _)| *r)
            .collect();
        self.running.set(running);
    }

    fn all_running(&self) -> bool {
        self.desired.iter().all(|r| {
            self.slots.get(r).is_some_and(|s| {
                s.state == RoleState::Running && s.addr.as_ref().is_some_and(|a| a.connected())
            })
        })
    }
}

impl Actor for NodeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.reconcile(ctx);
        ctx.run_interval(TICK, |act, ctx| {
            if !act.shutting_down {
                act.reconcile(ctx);
            }
        });
    }
}

/// Replace this node's desired roles; answers the new desired list.
#[derive(Message)]
#[rtype(result = "Result<Vec<Role>>")]
pub struct SetRoles(pub Vec<Role>);

impl Handler<SetRoles> for NodeSupervisor {
    type Result = Result<Vec<Role>>;

    fn handle(&mut self, msg: SetRoles, ctx: &mut Self::Context) -> Self::Result {
        let mut set = BTreeSet::new();
        for r in msg.0 {
            if !set.insert(r) {
                return Err(SupervisorError::DuplicateRole(r));
            }
        }
        tracing::info!(roles = ?set, "desired roles changed");
        self.desired = set;
        self.reconcile(ctx);
        Ok(self.desired.iter().copied().collect())
    }
}

/// The node's desired roles and each held role's status.
#[derive(Message)]
#[rtype(result = "NodeRoles")]
pub struct GetRoles;

#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeRoles {
    pub desired: Vec<Role>,
    pub roles: Vec<RoleStatus>,
    /// Every desired role is running.
    pub ready: bool,
}

impl Handler<GetRoles> for NodeSupervisor {
    type Result = ResponseFuture<NodeRoles>;

    fn handle(&mut self, _msg: GetRoles, _ctx: &mut Self::Context) -> Self::Result {
        let desired: Vec<Role> = self.desired.iter().copied().collect();
        let ready = self.all_running();
        let asks: Vec<_> = self
            .slots
            .iter()
            .map(|(role, slot)| {
                let fallback = slot.status(*role);
                let addr = slot
                    .addr
                    .clone()
                    .filter(|a| a.connected() && slot.state == RoleState::Running);
                async move {
                    match addr {
                        Some(a) => {
                            match tokio::time::timeout(OBSERVE_TIMEOUT, a.send(Observe)).await {
                                Ok(Ok(status)) => status,
                                _ => fallback,
                            }
                        }
                        None => fallback,
                    }
                }
            })
            .collect();
        Box::pin(async move {
            NodeRoles {
                desired,
                roles: join_all(asks).await,
                ready,
            }
        })
    }
}

/// Whether every desired role is running (what `/-/ready` reports).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

impl Handler<IsReady> for NodeSupervisor {
    type Result = bool;

    fn handle(&mut self, _msg: IsReady, _ctx: &mut Self::Context) -> bool {
        !self.shutting_down && self.all_running()
    }
}

impl Handler<RoleFailed> for NodeSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RoleFailed, _ctx: &mut Self::Context) {
        if let Some(slot) = self.slots.get_mut(&msg.role) {
            if slot.incarnation == msg.incarnation {
                slot.failed_reason = Some(msg.error);
            }
        }
    }
}

/// Forward a test-only fault to a running role.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub struct FaultRole(pub Role, pub InjectFault);

impl Handler<FaultRole> for NodeSupervisor {
    type Result = Result<()>;

    fn handle(&mut self, msg: FaultRole, _ctx: &mut Self::Context) -> Self::Result {
        let addr = self
            .slots
            .get(&msg.0)
            .and_then(|s| s.addr.clone())
            .ok_or(SupervisorError::NotRunning(msg.0))?;
        addr.do_send(msg.1);
        Ok(())
    }
}

/// Stop every role in reverse role order, each flushing what it owns; answers when all stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAll;

impl Handler<StopAll> for NodeSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: StopAll, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        self.desired.clear();
        let mut order: Vec<(Role, Option<Addr<RoleActor>>, Option<Arbiter>)> = Vec::new();
        for (role, slot) in self.slots.iter_mut().rev() {
            slot.state = RoleState::Stopping;
            order.push((*role, slot.addr.take(), slot.arbiter.take()));
        }
        let fut = async move {
            for (role, addr, arbiter) in order {
                if let Some(addr) = addr {
                    if tokio::time::timeout(SHUTDOWN_TIMEOUT, addr.send(Shutdown))
                        .await
                        .is_err()
                    {
                        tracing::warn!(role = %role, "role did not stop in time");
                    }
                }
                if let Some(arb) = arbiter {
                    arb.stop();
                }
            }
        };
        Box::pin(fut.into_actor(self).map(|_, act, _ctx| {
            act.slots.clear();
            act.publish_metrics();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: RoleState, alive: bool, due: bool) -> SlotView {
        SlotView {
            state,
            alive,
            restart_due: due,
        }
    }

    #[test]
    fn starts_missing_roles_in_role_order() {
        let desired: BTreeSet<Role> = [Role::Compactor, Role::ScraperShipper]
            .into_iter()
            .collect();
        let actions = plan(&desired, &BTreeMap::new());
        assert_eq!(
            actions,
            vec![
                Action::Start(Role::ScraperShipper),
                Action::Start(Role::Compactor)
            ]
        );
    }

    #[test]
    fn stops_undesired_roles_before_starting_new_ones() {
        let desired: BTreeSet<Role> = [Role::QueryPlanner].into_iter().collect();
        let mut held = BTreeMap::new();
        held.insert(Role::ScraperShipper, view(RoleState::Running, true, false));
        held.insert(Role::Compactor, view(RoleState::Running, true, false));
        let actions = plan(&desired, &held);
        assert_eq!(
            actions,
            vec![
                Action::Stop(Role::Compactor),
                Action::Stop(Role::ScraperShipper),
                Action::Start(Role::QueryPlanner)
            ]
        );
    }

    #[test]
    fn restarts_failed_roles_only_when_backoff_elapsed() {
        let desired: BTreeSet<Role> = [Role::StoreShard, Role::RuleEvaluator]
            .into_iter()
            .collect();
        let mut held = BTreeMap::new();
        held.insert(Role::StoreShard, view(RoleState::Failed, false, false));
        held.insert(Role::RuleEvaluator, view(RoleState::Failed, false, true));
        assert_eq!(
            plan(&desired, &held),
            vec![Action::Restart(Role::RuleEvaluator)]
        );
    }

    #[test]
    fn leaves_running_and_stopping_roles_alone() {
        let desired: BTreeSet<Role> = [Role::StoreShard].into_iter().collect();
        let mut held = BTreeMap::new();
        held.insert(Role::StoreShard, view(RoleState::Running, true, false));
        held.insert(Role::Compactor, view(RoleState::Stopping, true, false));
        assert!(plan(&desired, &held).is_empty());
    }

    #[test]
    fn a_role_re_added_while_stopping_waits_for_the_stop() {
        let desired: BTreeSet<Role> = [Role::Compactor].into_iter().collect();
        let mut held = BTreeMap::new();
        held.insert(Role::Compactor, view(RoleState::Stopping, true, false));
        assert!(plan(&desired, &held).is_empty());
        assert_eq!(
            plan(&desired, &BTreeMap::new()),
            vec![Action::Start(Role::Compactor)]
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), BACKOFF_MIN);
        assert_eq!(backoff(2), BACKOFF_MIN * 2);
        assert!(backoff(5) > backoff(4));
        assert_eq!(backoff(40), BACKOFF_MAX);
    }
}
