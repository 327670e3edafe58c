//! The local TSDB: a head with its WAL (`<dir>/wal/`) plus persisted blocks living directly
//! in `<dir>/<ULID>/`, as Prometheus lays them out. It replays the WAL on open, cuts the
//! oldest 2h range of the head into a level-1 block once the head spans more than 1.5 block
//! durations, checkpoints the WAL after that, applies retention, and answers queries over
//! head and blocks together.

pub mod bench;
mod blocks;
mod merge;
pub(crate) use merge::merge_strings;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use ulid::Ulid;

use crate::storage::block::BlockMeta;
use crate::storage::head::series::range_end;
use crate::storage::head::{Head, HeadAppender, HeadError, HeadOptions};
use crate::storage::model::{Matcher, QueryResult, Queryable, SelectHints, Series};
use crate::storage::wal::{ReplayStats, Wal, WalError, WalOptions, DEFAULT_SEGMENT_SIZE};
pub use blocks::LocalBlock;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{op} {path}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("block {dir}: {reason}")]
    Block { dir: String, reason: String },
    #[error("no local block {0}")]
    NoSuchBlock(Ulid),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("data directory {0} is in use by another process (its `lock` file is locked)")]
    Locked(String),
}

impl DbError {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        DbError::Io {
            path: path.display().to_string(),
            op,
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, DbError>;

pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 3600 * 1000;

#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Length of head blocks (and of head chunk ranges); blocks are aligned to it.
    pub block_duration_ms: i64,
    /// Blocks whose end is older than `now - retention_ms` are deleted; 0 keeps them forever.
    pub retention_ms: i64,
    /// fsync the WAL on every commit (see `wal` for the cost). Off by default, as in
    /// Prometheus: every commit is written to the OS before it returns, which survives a
    /// `kill -9`; closed segments and `close` are fsynced, only a power loss can lose the
    /// newest writes.
    pub wal_fsync: bool,
    pub wal_segment_size: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            block_duration_ms: DEFAULT_BLOCK_DURATION_MS,
            retention_ms: 0,
            wal_fsync: false,
            wal_segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

/// A local block as listed for the shipper.
#[derive(Clone, Debug)]
pub struct BlockInfo {
    pub dir: PathBuf,
    pub meta: BlockMeta,
}

pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Arc<Head>,
    wal: Arc<Wal>,
    /// Sorted by min time, then ULID.
    blocks: RwLock<Vec<Arc<LocalBlock>>>,
    /// One cut / retention / delete at a time.
    maintenance: Mutex<()>,
    replay: ReplayStats,
    /// `<dir>/lock`, exclusively locked while open (the same file Prometheus locks).
    lock: fs::File,
}

impl Db {
    /// Opens or creates the database in `dir`: loads blocks, then replays the WAL into the
    /// head (skipping samples already covered by blocks).
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db> {
        if opts.block_duration_ms <= 0 {
            return Err(DbError::Options(format!(
                "block duration must be positive, got {}",
                opts.block_duration_ms
            )));
        }
        fs::create_dir_all(dir).map_err(|e| DbError::io(dir, "create", e))?;
        let lock_path = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DbError::io(&lock_path, "open", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(DbError::Locked(dir.display().to_string()))
            }
            Err(fs::TryLockError::Error(e)) => return Err(DbError::io(&lock_path, "lock", e)),
        }
        let loaded = blocks::load_all(dir)?;
        let mut head = Head::new(
            HeadOptions {
                chunk_range_ms: opts.block_duration_ms,
            },
            None,
        );
        if let Some(maxt) = loaded.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid_time(maxt);
        }
        let wal_opts = WalOptions {
            segment_size: opts.wal_segment_size,
            fsync: opts.wal_fsync,
        };
        let (wal, replay) = Wal::open(&dir.join("wal"), wal_opts, |r| head.replay_record(r))?;
        let wal = Arc::new(wal);
        head.set_wal(wal.clone());
        if !loaded.is_empty() {
            // Series whose replayed samples all lie in blocks hold nothing: drop them so they
            // do not show up in label lookups.
            head.truncate(head.min_valid_time());
        }
        tracing::info!(dir = %dir.display(), blocks = loaded.len(), series = head.num_series(), ?replay, "opened TSDB");
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            head: Arc::new(head),
            wal,
            blocks: RwLock::new(loaded),
            maintenance: Mutex::new(()),
            replay,
            lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// What the WAL replay on open found.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    pub fn appender(&self) -> HeadAppender<'_> {
        self.head.appender()
    }

    /// Persists head ranges while the head spans more than 1.5 block durations (Prometheus's
    /// rule), each as the oldest block-aligned range `[head min, next boundary)`; drops them
    /// from the head, checkpoints the WAL, then applies retention relative to `now` (ms).
    /// Returns the ULIDs of the blocks written.
    pub fn cut_blocks(&self, now: i64) -> Result<Vec<Ulid>> {
        let _m = self.maintenance.lock();
        let width = self.opts.block_duration_ms;
        let mut written = Vec::new();
        let mut truncated = false;
        loop {
            let (hmin, hmax) = (self.head.min_time(), self.head.max_time());
            if hmin == i64::MAX || hmax.saturating_sub(hmin) <= width / 2 * 3 {
                break;
            }
            let mint = hmin;
            let maxt = range_end(mint, width);
            // From here on commits drop samples before `maxt`, so the snapshot below is final.
            self.head.set_min_valid_time(maxt);
            let data = self.head.chunks_for_block(mint, maxt);
            if !data.is_empty() {
                let block = blocks::write_block(&self.dir, mint, maxt, &data)?;
                written.push(block.meta().ulid);
                let mut list = self.blocks.write();
                list.push(Arc::new(block));
                blocks::sort(&mut list);
            }
            self.head.truncate(maxt);
            truncated = true;
        }
        if truncated {
            self.wal.cut_segment()?;
            let head = self.head.clone();
            let stats = self
                .wal
                .checkpoint(|r| head.is_live_ref(r), head.min_valid_time())?;
            tracing::info!(blocks = ?written, ?stats, "head compacted");
        }
        self.apply_retention_locked(now)?;
        Ok(written)
    }

    /// Deletes blocks that end before `now - retention_ms` (no-op when retention is 0).
    pub fn apply_retention(&self, now: i64) -> Result<Vec<Ulid>> {
        let _m = self.maintenance.lock();
        self.apply_retention_locked(now)
    }

    fn apply_retention_locked(&self, now: i64) -> Result<Vec<Ulid>> {
        if self.opts.retention_ms <= 0 {
            return Ok(Vec::new());
        }
        let cutoff = now.saturating_sub(self.opts.retention_ms);
        let doomed: Vec<Ulid> = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().max_time <= cutoff)
            .map(|b| b.meta().ulid)
            .collect();
        for id in &doomed {
            tracing::info!(block = %id, cutoff, "deleting block beyond retention");
            self.delete_block_locked(*id)?;
        }
        Ok(doomed)
    }

    /// Local blocks with their metas, oldest first.
    pub fn list_blocks(&self) -> Vec<BlockInfo> {
        self.blocks
            .read()
            .iter()
            .map(|b| BlockInfo {
                dir: b.dir().to_path_buf(),
                meta: b.meta().clone(),
            })
            .collect()
    }

    /// Removes a block from queries and deletes its directory.
    pub fn delete_block(&self, id: Ulid) -> Result<()> {
        let _m = self.maintenance.lock();
        self.delete_block_locked(id)
    }

    fn delete_block_locked(&self, id: Ulid) -> Result<()> {
        let block = {
            let mut list = self.blocks.write();
            let Some(pos) = list.iter().position(|b| b.meta().ulid == id) else {
                return Err(DbError::NoSuchBlock(id));
            };
            list.remove(pos)
        };
        blocks::delete_dir(block.dir())
    }

    /// Rescans `<dir>` and replaces the block list (e.g. after a compactor added or removed blocks).
    pub fn reload_blocks(&self) -> Result<()> {
        let _m = self.maintenance.lock();
        let fresh = blocks::load_all(&self.dir)?;
        *self.blocks.write() = fresh;
        Ok(())
    }

    /// Flushes and fsyncs the WAL; the Db can be dropped afterwards with nothing lost.
    /// Syncs the WAL and releases the directory lock, so the directory can be opened again in
    /// this process (a node restarted in-process) while stray references to this `Db` linger.
    pub fn close(&self) -> Result<()> {
        self.wal.sync()?;
        if let Err(e) = self.lock.unlock() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "releasing the TSDB lock failed");
        }
        Ok(())
    }

    fn sources(&self, mint: i64, maxt: i64) -> Vec<Arc<dyn Queryable>> {
        let mut out: Vec<Arc<dyn Queryable>> = Vec::new();
        for b in self.blocks.read().iter() {
            // Block maxTime is exclusive, query bounds inclusive.
            if b.meta().min_time <= maxt && b.meta().max_time > mint {
                out.push(b.clone() as Arc<dyn Queryable>);
            }
        }
        out.push(self.head.clone() as Arc<dyn Queryable>);
        out
    }
}

impl Queryable for Db {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        // Blocks are independent: reading their indexes and chunks is spread over the rayon
        // pool, which halves a query over many blocks on two cores. The head is always one of
        // the sources, so this needs at least two blocks.
        use rayon::prelude::*;
        let sources = self.sources(mint, maxt);
        let parts = if sources.len() > 2 {
            sources
                .par_iter()
                .map(|src| src.select(matchers, mint, maxt, hints))
                .collect::<QueryResult<Vec<_>>>()?
        } else {
            let mut parts = Vec::with_capacity(sources.len());
            for src in &sources {
                parts.push(src.select(matchers, mint, maxt, hints)?);
            }
            parts
        };
        let mut out = merge::merge_series(parts);
        if hints.limit > 0 && out.len() > hints.limit {
            out.truncate(hints.limit);
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        let mut parts = Vec::new();
        for src in self.sources(mint, maxt) {
            parts.push(src.label_names(matchers, mint, maxt)?);
        }
        Ok(merge::merge_strings(parts))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        let mut parts = Vec::new();
        for src in self.sources(mint, maxt) {
            parts.push(src.label_values(name, matchers, mint, maxt)?);
        }
        Ok(merge::merge_strings(parts))
    }
}

#[cfg(test)]
mod tests;
