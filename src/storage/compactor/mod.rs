//! The bucket compactor: what Thanos's compactor does, as a pure planner beside an I/O executor.
//!
//! - `plan` (pure, property-tested): groups the bucket's blocks into streams (resolution +
//!   external labels, the replica labels removed when dedup is on), and plans each stream like
//!   Prometheus/Thanos — overlapping blocks first (vertical compaction), then complete ranges of
//!   the levels 2h → 8h → 2d → 14d, never the newest block; it also decides which blocks
//!   queries must not see (covered by a newer block's `compaction.sources`, or younger than the
//!   consistency delay) and which blocks retention expires.
//! - `merge`: merges local block directories into one new block, streaming series in label
//!   order with bounded memory; replica overlaps go through `storage::dedup`.
//! - `exec`: one pass over the bucket — download what a plan needs to a scratch directory,
//!   merge, upload through the block catalogue (meta.json last), mark the inputs for deletion;
//!   on a block that cannot be compacted put `no-compact-mark.json` and go on with the other
//!   streams; retention marks, delayed deletion, partial-upload cleanup.
//! - `downsample_plan` (pure): which blocks to downsample (raw → 5m from 40h, 5m → 1h from
//!   10d, once per source, no-downsample and deletion marks honoured);
//!   `downsample_block`: one local block into its downsampled copy, a series at a time.
//!   The executor runs this after a stream's compaction and before its retention, as Thanos.
//! - `metrics`: the compactor's metrics.
//!
//! The Compactor role (`actors::compactor`) and `strata tools bucket compact` both run
//! `exec::run_pass`; who compacts which stream (rendezvous hashing, a lease per stream) is the
//! caller's decision, passed in as a `StreamGuard`.

pub mod downsample_block;
pub mod downsample_plan;
pub mod exec;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod settings;
