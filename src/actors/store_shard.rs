//! The StoreShard role (store gateway): keeps the node's `BucketStore` synced with the bucket
//! and serving the blocks rendezvous hashing assigns to it among the live StoreShards. The sync
//! runs at start, every interval, and at once when the set of live StoreShards changes, so a
//! departed shard's blocks are picked up by the others within one sync.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::Context;
use futures::future::LocalBoxFuture;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use super::role::{RoleActor, RoleWorker};
use super::scraper_shipper::maintenance_interval;
use super::RoleContext;
use crate::cluster::ownership;
use crate::config::Role;

/// How often the live StoreShard set is re-read from membership.
const MEMBERSHIP_POLL: Duration = Duration::from_millis(500);

pub struct StoreShard {
    ctx: Arc<RoleContext>,
    stop: CancellationToken,
}

impl StoreShard {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        StoreShard {
            ctx,
            stop: CancellationToken::new(),
        }
    }
}

/// The live StoreShards (this node included), sorted, as ownership hashing wants them.
fn live_shards(ctx: &RoleContext) -> Vec<String> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    ids.insert(ctx.config.node.id.clone());
    ids.extend(
        ctx.cluster
            .live_peers_with_role(Role::StoreShard)
            .into_iter()
            .map(|m| m.node_id),
    );
    ids.into_iter().collect()
}

/// Whether StoreShard `me` serves `block` among the `live` StoreShards: rendezvous hashing of
/// the block's ULID string, one StoreShard per block.
fn serves_block(me: &str, live: &[String], block: &Ulid) -> bool {
    ownership::is_owner(block.to_string().as_bytes(), me, live, 1)
}

impl RoleWorker for StoreShard {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {
        let (tx, rx) = tokio::sync::watch::channel(live_shards(&self.ctx));
        let interval = maintenance_interval(self.ctx.config.tsdb.block_duration.as_millis())
            .max(Duration::from_secs(5));
        let me = self.ctx.config.node.id.clone();
        self.ctx.store.clone().spawn_sync_loop(
            interval,
            rx,
            move |live: &Vec<String>, block: &Ulid| serves_block(&me, live, block),
            self.stop.clone(),
        );
        let ctx = self.ctx.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MEMBERSHIP_POLL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {
                        let now = live_shards(&ctx);
                        tx.send_if_modified(|cur| if *cur != now { *cur = now; true } else { false });
                    }
                }
            }
        });
    }

    fn detail(&self) -> serde_json::Value {
        let stats = self.ctx.store.stats();
        serde_json::json!({
            "ready": self.ctx.store.is_ready(),
            "blocks_serving": stats.blocks_serving,
            "blocks_failed": stats.blocks_failed,
            "headers_open": stats.headers_open,
            "header_heap_bytes": stats.header_heap_bytes,
            "failed": self.ctx.store.failed_blocks().iter().map(|(u, e)| format!("{u}: {e}")).collect::<Vec<_>>(),
        })
    }

    fn shutdown(&mut self) -> LocalBoxFuture<'static, ()> {
        self.stop.cancel();
        Box::pin(async {})
    }
}

impl Drop for StoreShard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
