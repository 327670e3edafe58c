//! The ScraperShipper role (Prometheus + sidecar): takes samples into the node's local TSDB
//! (the node's scrape manager, started and stopped with the role, plus remote-write), cuts the head into 2h blocks,
//! ships every cut block to the bucket exactly once (meta.json last), and deletes local blocks
//! only once they are shipped and older than the local retention. A bucket outage never loses
//! data: the head and the local blocks keep growing and the next round ships them.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::LocalBoxFuture;

use super::role::{RoleActor, RoleWorker};
use super::RoleContext;
use crate::storage::bucket::shipper::{blocks_to_delete, Shipper};
use crate::storage::db::Db;

/// What one maintenance round did, for status and logs.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RoundReport {
    pub cut: Vec<String>,
    pub uploaded: Vec<String>,
    pub failed: Vec<String>,
    pub deleted: Vec<String>,
}

/// Round state, shared with the futures the role spawns (all on the role's own thread).
#[derive(Default)]
struct RoundState {
    busy: bool,
    last: Option<RoundReport>,
    last_error: Option<String>,
}

pub struct ScraperShipper {
    ctx: Arc<RoleContext>,
    state: Rc<RefCell<RoundState>>,
    /// The scrape manager start this incarnation made, to stop exactly that one.
    scrape_generation: Option<u64>,
}

impl ScraperShipper {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        ScraperShipper {
            ctx,
            state: Rc::new(RefCell::new(RoundState::default())),
            scrape_generation: None,
        }
    }

    fn stop_scraping(&mut self) {
        if let Some(g) = self.scrape_generation.take() {
            self.ctx.scrape.stop(g);
        }
    }
}

/// A role that dies without a clean shutdown (error, panic) still stops its scrape loops.
impl Drop for ScraperShipper {
    fn drop(&mut self) {
        self.stop_scraping();
    }
}

/// How often the head is checked for a block to cut and the bucket for blocks to ship:
/// often enough for short test block ranges, never more than Thanos's 30 s.
pub fn maintenance_interval(block_duration_ms: u64) -> Duration {
    Duration::from_millis((block_duration_ms / 8).clamp(500, 30_000))
}

/// One round: cut what the head holds beyond 1.5 block ranges, ship, apply local retention.
pub async fn maintenance_round(
    db: Arc<Db>,
    shipper: Arc<Shipper>,
    retention: Duration,
) -> Result<RoundReport, String> {
    let mut report = RoundReport::default();
    let now = crate::time::now_ms();
    let cutting = db.clone();
    let cut = tokio::task::spawn_blocking(move || cutting.cut_blocks(now))
        .await
        .map_err(|e| format!("cutting blocks: task failed: {e}"))?
        .map_err(|e| format!("cutting blocks: {e}"))?;
    report.cut = cut.iter().map(|u| u.to_string()).collect();

    match shipper.sync().await {
        Ok(sync) => {
            report.uploaded = sync.uploaded.iter().map(|u| u.to_string()).collect();
            report.failed = sync
                .failed
                .iter()
                .map(|(u, e)| format!("{u}: {e}"))
                .collect();
        }
        // A bucket outage is not a role failure: the next round retries.
        Err(e) => report.failed.push(e.to_string()),
    }

    let local: Vec<(ulid::Ulid, i64)> = db
        .list_blocks()
        .iter()
        .map(|b| (b.meta.ulid, b.meta.max_time))
        .collect();
    let deletable = blocks_to_delete(&local, &shipper.shipped_ulids(), true, now, retention);
    if !deletable.is_empty() {
        let deleting = db.clone();
        let deleted = tokio::task::spawn_blocking(move || {
            let mut done = Vec::new();
            for id in deletable {
                match deleting.delete_block(id) {
                    Ok(()) => done.push(id.to_string()),
                    Err(e) => tracing::warn!(block = %id, error = %e, "deleting a shipped local block failed"),
                }
            }
            done
        })
        .await
        .map_err(|e| format!("local retention: task failed: {e}"))?;
        report.deleted = deleted;
    }
    Ok(report)
}

impl RoleWorker for ScraperShipper {
    fn started(&mut self, ctx: &mut Context<RoleActor>) {
        // Scrape loops run on this role's runtime, so they never starve the HTTP workers.
        self.scrape_generation = Some(self.ctx.scrape.start(tokio::runtime::Handle::current()));
        let block_ms = self.ctx.config.tsdb.block_duration.as_millis();
        let every = maintenance_interval(block_ms);
        let shared = self.ctx.clone();
        let state = self.state.clone();
        ctx.run_interval(every, move |_act, ctx| {
            if state.borrow().busy {
                return;
            }
            state.borrow_mut().busy = true;
            let round = maintenance_round(shared.db.clone(), shared.shipper.clone(), shared.config.tsdb.retention.as_std());
            let state = state.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                let res = round.await;
                let mut this = state.borrow_mut();
                this.busy = false;
                match res {
                    Ok(report) => {
                        if !report.cut.is_empty() || !report.uploaded.is_empty() || !report.deleted.is_empty() {
                            tracing::info!(cut = ?report.cut, uploaded = ?report.uploaded, deleted = ?report.deleted, "scraper_shipper round");
                        }
                        if !report.failed.is_empty() {
                            tracing::warn!(failed = ?report.failed, "shipping is behind; will retry");
                        }
                        this.last_error = None;
                        this.last = Some(report);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "scraper_shipper maintenance failed");
                        this.last_error = Some(e);
                    }
                }
            }));
        });
    }

    fn detail(&self) -> serde_json::Value {
        let head = self.ctx.db.head();
        serde_json::json!({
            "head_series": head.num_series(),
            "local_blocks": self.ctx.db.list_blocks().len(),
            "shipped_blocks": self.ctx.shipper.shipped_ulids().len(),
            "last_round": self.state.borrow().last,
            "last_round_error": self.state.borrow().last_error,
            "scrape_targets": self.ctx.scrape.snapshot().active.len(),
        })
    }

    /// On stop, one last round ships whatever is complete so a role move strands nothing.
    fn shutdown(&mut self) -> LocalBoxFuture<'static, ()> {
        self.stop_scraping();
        let round = maintenance_round(
            self.ctx.db.clone(),
            self.ctx.shipper.clone(),
            self.ctx.config.tsdb.retention.as_std(),
        );
        Box::pin(async move {
            match tokio::time::timeout(Duration::from_secs(20), round).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "final shipping round failed"),
                Err(_) => tracing::warn!("final shipping round timed out"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_follows_short_block_ranges_and_is_capped() {
        assert_eq!(
            maintenance_interval(2 * 3600 * 1000),
            Duration::from_secs(30)
        );
        assert_eq!(maintenance_interval(8_000), Duration::from_millis(1000));
        assert_eq!(maintenance_interval(100), Duration::from_millis(500));
    }
}
