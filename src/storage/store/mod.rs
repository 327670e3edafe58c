//! The store gateway core behind the StoreShard role: a `BucketStore` keeps a synced view of the
//! bucket's blocks, serves the shard of them its caller says this node owns (the StoreShard
//! role passes the cluster's rendezvous hashing; storage knows nothing of the cluster), and
//! answers series / label queries with ranged reads, small on-disk index headers and a shared
//! byte-bounded cache. A block that fails (corrupt index or chunks, bucket errors) is reported
//! as a warning and counted while the other blocks keep serving. The transport (StoreAPI
//! streaming) and the query fan-out sit on top of this module.

pub mod bucket_block;
pub mod cache;
pub mod decode;
pub mod footprint;
pub mod header_build;
pub mod index_header;
pub mod ranges;
pub mod resolution;
pub mod sync;
pub mod synth;

mod bucket_store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use bucket_block::{BucketBlock, FetchOptions};
pub use bucket_store::{
    BlockInfo, BucketStore, LabelsResult, SelectOptions, SelectResult, StoreStats, SyncReport,
};
pub use cache::{ByteLru, CacheStats};
pub use sync::{MetaSyncer, SyncState};

use crate::storage::block::BlockError;
use crate::storage::bucket::BucketError;
use crate::storage::model::QueryableError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bucket object {key}: {source}")]
    Bucket {
        key: String,
        #[source]
        source: BucketError,
    },
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("index header file {path}: {source}")]
    HeaderIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("query limit exceeded: {0}")]
    Limit(String),
    #[error("block {ulid} failed: {reason}")]
    BlockFailed { ulid: String, reason: String },
    #[error("store configuration: {0}")]
    Config(String),
    #[error("internal store error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// True when the error says the block's data is bad (as opposed to the bucket or a limit).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StoreError::Block(BlockError::Corrupt { .. })
                | StoreError::Block(BlockError::Chunk { .. })
        )
    }
}

impl From<StoreError> for QueryableError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Limit(m) => QueryableError::Limit(m),
            StoreError::Block(b) => b.into(),
            other => QueryableError::Storage(other.to_string()),
        }
    }
}

/// Per-query limits; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most series one query may select (counted per block before merging, as Thanos does).
    pub max_series: usize,
    /// Most chunk payload bytes one query may fetch, across all blocks.
    pub max_chunk_bytes: u64,
}

/// The running totals of one query, checked against its limits by every block.
#[derive(Debug, Default)]
pub struct QueryBudget {
    limits: QueryLimits,
    chunk_bytes: AtomicU64,
}

impl QueryBudget {
    pub fn new(limits: QueryLimits) -> Self {
        QueryBudget {
            limits,
            chunk_bytes: AtomicU64::new(0),
        }
    }

    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn check_series(&self, n: usize) -> Result<()> {
        let max = self.limits.max_series;
        if max > 0 && n > max {
            return Err(StoreError::Limit(format!(
                "more than {max} series selected (limit max_series={max})"
            )));
        }
        Ok(())
    }

    pub fn add_chunk_bytes(&self, n: u64) -> Result<()> {
        let total = self.chunk_bytes.fetch_add(n, Ordering::Relaxed) + n;
        let max = self.limits.max_chunk_bytes;
        if max > 0 && total > max {
            return Err(StoreError::Limit(format!(
                "chunk bytes fetched exceed {max} (limit max_chunk_bytes={max})"
            )));
        }
        Ok(())
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.load(Ordering::Relaxed)
    }
}

/// Monotonic counters of the store, exported through `BucketStore::stats`.
#[derive(Debug, Default)]
pub struct StoreCounters {
    pub bucket_requests: AtomicU64,
    pub bucket_bytes: AtomicU64,
    pub headers_built: AtomicU64,
    pub headers_rebuilt: AtomicU64,
    pub header_opens: AtomicU64,
    pub header_releases: AtomicU64,
    pub block_load_failures: AtomicU64,
    pub block_query_failures: AtomicU64,
    pub corrupt_block_errors: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_failures: AtomicU64,
    pub queries: AtomicU64,
    pub limit_hits: AtomicU64,
    /// Chunk bytes queries read, from the cache or the bucket (Thanos's
    /// `series_data_touched{data_type="chunks"}`): what a query costs whatever is cached.
    pub chunk_bytes_touched: AtomicU64,
}

impl StoreCounters {
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn add_get(&self, bytes: usize) {
        self.add_gets(1, bytes as u64);
    }

    fn add_gets(&self, requests: usize, bytes: u64) {
        self.bucket_requests
            .fetch_add(requests as u64, Ordering::Relaxed);
        self.bucket_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Configuration of a `BucketStore`.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where index headers are cached (one file per block).
    pub cache_dir: PathBuf,
    /// This node's id, naming the store in its logs. Which blocks the node serves is decided
    /// by the caller of `BucketStore::sync`.
    pub node_id: String,
    /// Byte budget of the postings/series/chunk LRU.
    pub cache_bytes: u64,
    /// How long a block with a deletion mark keeps being served.
    pub deletion_delay: std::time::Duration,
    /// An opened index header is released after this long without use.
    pub idle_timeout: std::time::Duration,
    /// Blocks prepared (header built) concurrently during a sync.
    pub prepare_concurrency: usize,
    /// Blocks queried concurrently by one query.
    pub query_concurrency: usize,
    pub fetch: FetchOptions,
    /// Queries (select and label calls) running at once; more wait for a slot, as Thanos's
    /// `--store.grpc.series-max-concurrency`.
    pub max_concurrent_queries: usize,
    /// Serve only blocks overlapping `[min_time, max_time]` (inclusive ms), as Thanos's
    /// `--min-time/--max-time` time partitioning.
    pub min_time: i64,
    pub max_time: i64,
}

impl StoreConfig {
    pub fn new(cache_dir: impl Into<PathBuf>, node_id: impl Into<String>) -> Self {
        StoreConfig {
            cache_dir: cache_dir.into(),
            node_id: node_id.into(),
            cache_bytes: 256 << 20,
            deletion_delay: std::time::Duration::from_secs(24 * 3600),
            idle_timeout: std::time::Duration::from_secs(300),
            prepare_concurrency: 16,
            query_concurrency: 16,
            fetch: FetchOptions::default(),
            max_concurrent_queries: 20,
            min_time: i64::MIN,
            max_time: i64::MAX,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.node_id.is_empty() {
            return Err(StoreError::Config("node id must not be empty".into()));
        }
        if self.min_time > self.max_time {
            return Err(StoreError::Config(format!(
                "min_time {} is after max_time {}",
                self.min_time, self.max_time
            )));
        }
        if self.prepare_concurrency == 0
            || self.query_concurrency == 0
            || self.max_concurrent_queries == 0
        {
            return Err(StoreError::Config("concurrency must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
