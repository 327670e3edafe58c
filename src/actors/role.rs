//! The common shape of a role actor: the `RoleActor` the supervisor starts in its own arbiter,
//! the messages every role answers (`Observe`, `Shutdown`, the test-only `InjectFault`), and the
//! `RoleWorker` trait through which each role (scraper_shipper, store_shard, query_planner,
//! compactor, rule_evaluator) plugs its real behaviour in. The actor owns the status bookkeeping
//! so that the roles only own their work.

use std::time::SystemTime;

use actix::prelude::*;
use futures::future::LocalBoxFuture;
use serde::Serialize;

use crate::config::Role;

/// Lifecycle of one role as the supervisor and the role itself see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleState {
    /// Asked to start, not yet running (also: waiting out a restart backoff).
    Starting,
    Running,
    /// Died (handler error or panic); a restart is scheduled.
    Failed,
    Stopping,
}

impl RoleState {
    pub const ALL: [RoleState; 4] = [
        RoleState::Starting,
        RoleState::Running,
        RoleState::Failed,
        RoleState::Stopping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleState::Starting => "starting",
            RoleState::Running => "running",
            RoleState::Failed => "failed",
            RoleState::Stopping => "stopping",
        }
    }
}

/// What `Observe` answers: serialisable, the same shape locally and over the transport.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RoleStatus {
    pub role: Role,
    pub state: RoleState,
    /// RFC 3339, the start of the current incarnation.
    pub started_at: String,
    pub restarts: u64,
    pub last_error: Option<String>,
    /// Role-specific details (targets, blocks, ...), `null` when the role has none.
    pub detail: serde_json::Value,
}

/// Ask a role for its status.
#[derive(Message)]
#[rtype(result = "RoleStatus")]
pub struct Observe;

/// Stop gracefully: the worker flushes what it owns, then the actor stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Test-only fault switch (enabled by the `STRATA_ENABLE_FAULT_INJECTION=1` environment).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum InjectFault {
    /// Panic inside the handler: kills the role's arbiter thread.
    Panic,
    /// A handler error: the role reports it and stops.
    Error(String),
}

/// Sent by a role to the supervisor when it fails with an error.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct RoleFailed {
    pub role: Role,
    pub incarnation: u64,
    pub error: String,
}

/// The behaviour a role plugs into its actor. Methods run on the role's own arbiter thread;
/// heavy work must go to `spawn_blocking` from the futures they spawn.
pub trait RoleWorker: 'static {
    /// Called once the actor runs; spawn the role's loops on `ctx` so they die with it.
    fn started(&mut self, ctx: &mut Context<RoleActor>);

    /// Role-specific status details.
    fn detail(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Flush what the role owns before it stops.
    fn shutdown(&mut self) -> LocalBoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Where a role reports its failures.
pub type FailureSink = Recipient<RoleFailed>;

pub struct RoleActor {
    pub role: Role,
    pub incarnation: u64,
    pub started_at: SystemTime,
    pub restarts: u64,
    pub last_error: Option<String>,
    pub worker: Box<dyn RoleWorker>,
    pub failures: FailureSink,
}

impl RoleActor {
    /// Reports an error to the supervisor and stops; the supervisor restarts the role.
    pub fn fail(&mut self, ctx: &mut Context<Self>, error: String) {
        tracing::error!(role = %self.role, %error, "role failed");
        self.failures.do_send(RoleFailed {
            role: self.role,
            incarnation: self.incarnation,
            error,
        });
        ctx.stop();
    }
}

impl Actor for RoleActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(role = %self.role, restarts = self.restarts, "role started");
        self.worker.started(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        tracing::info!(role = %self.role, "role stopped");
    }
}

impl Handler<Observe> for RoleActor {
    type Result = MessageResult<Observe>;

    fn handle(&mut self, _msg: Observe, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(RoleStatus {
            role: self.role,
            state: RoleState::Running,
            started_at: crate::time::rfc3339_millis(self.started_at),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
            detail: self.worker.detail(),
        })
    }
}

impl Handler<Shutdown> for RoleActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        let flush = self.worker.shutdown();
        Box::pin(flush.into_actor(self).map(|_, _act, ctx| ctx.stop()))
    }
}

impl Handler<InjectFault> for RoleActor {
    type Result = ();

    fn handle(&mut self, msg: InjectFault, ctx: &mut Self::Context) {
        match msg {
            InjectFault::Panic => panic!("injected fault: role {} panicked on request", self.role),
            InjectFault::Error(e) => self.fail(ctx, format!("injected fault: {e}")),
        }
    }
}
