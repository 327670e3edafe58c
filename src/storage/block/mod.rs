//! Persisted Prometheus blocks (`<ULID>/{meta.json,index,chunks/,tombstones}`), bit-compatible
//! with Prometheus 2.42: the streaming `BlockWriter` the head and the compactor use to cut
//! blocks, and the mmap-backed `BlockReader` that serves them as a `Queryable`.

use std::fs::File;
use std::path::Path;

pub mod chunks;
pub mod encoding;
pub mod index;
pub mod index_reader;
pub mod merge;
pub mod meta;
pub mod postings;
pub mod reader;
pub mod tombstones;
pub mod writer;

pub use chunks::{ChunkReader, ChunkWriter, DEFAULT_MAX_SEGMENT_SIZE};
pub use index::{ChunkMeta, IndexWriter};
pub use index_reader::{IndexReader, SeriesEntry};
pub use merge::MergeCursor;
pub use meta::{
    BlockDesc, BlockMeta, BlockMetaCompaction, BlockStats, IndexStats, ThanosDownsample,
    ThanosFile, ThanosMeta,
};
pub use reader::{list_blocks, open_blocks, BlockReader, SeriesCursor};
pub use tombstones::{Interval, Tombstones};
pub use writer::{BlockWriter, BlockWriterOptions, TMP_SUFFIX};

use crate::storage::chunkenc::ChunkError;
use crate::storage::model::QueryableError;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt block file {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("invalid meta file {file}: {reason}")]
    Meta { file: String, reason: String },
    #[error("invalid block data: {0}")]
    Invalid(String),
    #[error("chunk in {file} (ref {reference:#x}): {source}")]
    Chunk {
        file: String,
        reference: u64,
        source: ChunkError,
    },
}

pub type Result<T> = std::result::Result<T, BlockError>;

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> BlockError {
    BlockError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Makes directory entries (creations, renames) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| io_err(dir, e))?;
    f.sync_all().map_err(|e| io_err(dir, e))
}

impl From<BlockError> for QueryableError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Corrupt {
                file,
                offset,
                reason,
            } => QueryableError::Corrupt {
                file,
                offset,
                reason,
            },
            other => QueryableError::Storage(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
