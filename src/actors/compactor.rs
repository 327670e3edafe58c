//! The Compactor role: one active per bucket. Holding the role is not enough to act — the role
//! must also hold the bucket lease `strata/leases/compactor.json`, renewed while held, so two
//! nodes that both believe they are the compactor (a gossip partition, a node coming back) can
//! never both write.
//!
//! What it does today: it takes, renews and releases that lease and reports whether it is the
//! active compactor — nothing more. It does not yet compact, downsample, apply retention or
//! delete anything in the bucket; those will run here, only while the lease is held.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::LocalBoxFuture;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;
use crate::cluster::lease::{Lease, LeaseState, COMPACTOR_LEASE, COMPACTOR_LEASE_TTL};

const RENEW_EVERY: Duration = Duration::from_secs(3);

#[derive(Default)]
struct State {
    busy: bool,
    lease: Option<LeaseState>,
    last_error: Option<String>,
}

pub struct Compactor {
    ctx: Arc<RoleContext>,
    lease: Rc<Lease>,
    state: Rc<RefCell<State>>,
}

impl Compactor {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        let lease = Lease::new(
            ctx.bucket.clone(),
            COMPACTOR_LEASE,
            &ctx.config.node.id,
            COMPACTOR_LEASE_TTL,
        );
        Compactor {
            ctx,
            lease: Rc::new(lease),
            state: Rc::new(RefCell::new(State::default())),
        }
    }
}

/// Whether a lease state allows acting now.
pub fn may_act(state: Option<&LeaseState>, now_ms: i64) -> bool {
    matches!(state, Some(LeaseState::Held { act_until_ms }) if *act_until_ms > now_ms)
}

/// One lease round: acquire or renew unless a round is still running.
fn renewal(
    lease: Rc<Lease>,
    state: Rc<RefCell<State>>,
) -> impl FnMut(&mut RoleActor, &mut Context<RoleActor>) {
    move |_act, ctx| {
        if state.borrow().busy {
            return;
        }
        state.borrow_mut().busy = true;
        let lease = lease.clone();
        let state = state.clone();
        ctx.spawn(actix::fut::wrap_future(async move {
            let res = lease.acquire().await;
            let mut s = state.borrow_mut();
            s.busy = false;
            match res {
                Ok(new) => {
                    let was_active = matches!(s.lease, Some(LeaseState::Held { .. }));
                    let active = matches!(new, LeaseState::Held { .. });
                    if active != was_active {
                        tracing::info!(active, lease = ?new, "compactor lease changed");
                    }
                    s.lease = Some(new);
                    s.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "compactor lease renewal failed");
                    s.last_error = Some(e.to_string());
                }
            }
        }));
    }
}

impl RoleWorker for Compactor {
    fn started(&mut self, ctx: &mut Context<RoleActor>) {
        let mut first = renewal(self.lease.clone(), self.state.clone());
        ctx.run_later(Duration::ZERO, move |act, ctx| first(act, ctx));
        ctx.run_interval(RENEW_EVERY, renewal(self.lease.clone(), self.state.clone()));
    }

    fn detail(&self) -> serde_json::Value {
        let s = self.state.borrow();
        serde_json::json!({
            "active": may_act(s.lease.as_ref(), crate::time::now_ms()),
            "lease": s.lease,
            "lease_error": s.last_error,
            "node": self.ctx.config.node.id,
        })
    }

    /// Gives the lease back so a successor does not wait out the TTL.
    fn shutdown(&mut self) -> LocalBoxFuture<'static, ()> {
        let lease = self.lease.clone();
        Box::pin(async move {
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "releasing the compactor lease failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_only_with_an_unexpired_lease() {
        assert!(may_act(Some(&LeaseState::Held { act_until_ms: 100 }), 50));
        assert!(!may_act(Some(&LeaseState::Held { act_until_ms: 100 }), 100));
        assert!(!may_act(
            Some(&LeaseState::Standby {
                holder: "b".into(),
                until_ms: 100
            }),
            50
        ));
        assert!(!may_act(None, 0));
    }
}
