//! The Thanos block marks, `deletion-mark.json`, `no-compact-mark.json` and
//! `no-downsample-mark.json`
//! (`pkg/block/metadata/markers.go`): their JSON, reading them as Thanos's `ReadMarker` does
//! (version 1 only, absent fields zero) and writing them once, compact like Go's
//! `json.Marshal`, never replacing a mark that exists.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::{
    object_key, BlocksError, Result, DELETION_MARK_FILE, NO_COMPACT_MARK_FILE,
    NO_DOWNSAMPLE_MARK_FILE,
};
use crate::storage::bucket::{BucketError, ObjectStore};

/// The only mark version Thanos reads and writes.
const MARK_VERSION: u32 = 1;

/// `deletion-mark.json`: the block is to be deleted once the mark is older than the delete
/// delay; until then readers keep serving it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletionMark {
    pub id: Ulid,
    pub version: u32,
    /// Why, for humans; omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// When the block was marked, unix seconds.
    pub deletion_time: i64,
}

impl DeletionMark {
    pub fn new(id: Ulid, details: &str, now: SystemTime) -> Self {
        DeletionMark {
            id,
            version: MARK_VERSION,
            details: details.to_string(),
            deletion_time: unix_seconds(now),
        }
    }

    /// Whether the mark is at least `delay` old at `now`: the block then counts as gone for
    /// readers and may be deleted.
    pub fn is_due(&self, delay: Duration, now: SystemTime) -> bool {
        let delay = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX);
        unix_seconds(now).saturating_sub(self.deletion_time) >= delay
    }
}

/// Why a block is kept out of compaction (Thanos's `NoCompactReason`). Values Thanos may add
/// later are kept as `Other`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum NoCompactReason {
    /// Marked by an operator.
    #[default]
    Manual,
    /// The compacted index would exceed the size limit (64 GiB in TSDB).
    IndexSizeExceeding,
    /// The block's index has out-of-order chunks.
    OutOfOrderChunks,
    /// An overlapping downsampled block, which vertical compaction cannot merge.
    DownsampleVerticalCompaction,
    Other(String),
}

impl NoCompactReason {
    pub fn as_str(&self) -> &str {
        match self {
            NoCompactReason::Manual => "manual",
            NoCompactReason::IndexSizeExceeding => "index-size-exceeding",
            NoCompactReason::OutOfOrderChunks => "block-index-out-of-order-chunk",
            NoCompactReason::DownsampleVerticalCompaction => "downsample-vertical-compaction",
            NoCompactReason::Other(s) => s,
        }
    }
}

impl From<String> for NoCompactReason {
    fn from(s: String) -> Self {
        match s.as_str() {
            "manual" => NoCompactReason::Manual,
            "index-size-exceeding" => NoCompactReason::IndexSizeExceeding,
            "block-index-out-of-order-chunk" => NoCompactReason::OutOfOrderChunks,
            "downsample-vertical-compaction" => NoCompactReason::DownsampleVerticalCompaction,
            _ => NoCompactReason::Other(s),
        }
    }
}

impl From<NoCompactReason> for String {
    fn from(r: NoCompactReason) -> Self {
        match r {
            NoCompactReason::Other(s) => s,
            known => known.as_str().to_string(),
        }
    }
}

/// `no-compact-mark.json`: the block is left out of every compaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoCompactMark {
    pub id: Ulid,
    pub version: u32,
    /// Why, for humans; omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// When the block was marked, unix seconds.
    pub no_compact_time: i64,
    pub reason: NoCompactReason,
}

impl NoCompactMark {
    pub fn new(id: Ulid, reason: NoCompactReason, details: &str, now: SystemTime) -> Self {
        NoCompactMark {
            id,
            version: MARK_VERSION,
            details: details.to_string(),
            no_compact_time: unix_seconds(now),
            reason,
        }
    }
}

/// `no-downsample-mark.json`: the block is never downsampled (Thanos's `NoDownsampleMark`;
/// its reason takes the no-compact reasons' values, `manual` by default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoDownsampleMark {
    pub id: Ulid,
    pub version: u32,
    /// Why, for humans; omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// When the block was marked, unix seconds.
    pub no_downsample_time: i64,
    pub reason: NoCompactReason,
}

impl NoDownsampleMark {
    pub fn new(id: Ulid, reason: NoCompactReason, details: &str, now: SystemTime) -> Self {
        NoDownsampleMark {
            id,
            version: MARK_VERSION,
            details: details.to_string(),
            no_downsample_time: unix_seconds(now),
            reason,
        }
    }
}

/// What reading and writing need to know about a mark type.
trait Mark: Serialize + DeserializeOwned {
    const FILE: &'static str;
    fn version(&self) -> u32;
}

impl Mark for DeletionMark {
    const FILE: &'static str = DELETION_MARK_FILE;
    fn version(&self) -> u32 {
        self.version
    }
}

impl Mark for NoCompactMark {
    const FILE: &'static str = NO_COMPACT_MARK_FILE;
    fn version(&self) -> u32 {
        self.version
    }
}

impl Mark for NoDownsampleMark {
    const FILE: &'static str = NO_DOWNSAMPLE_MARK_FILE;
    fn version(&self) -> u32 {
        self.version
    }
}

fn parse_mark<M: Mark>(bytes: &[u8], ulid: Ulid) -> Result<M> {
    let invalid = |reason: String| BlocksError::Invalid {
        ulid,
        file: M::FILE,
        reason,
    };
    let mark: M = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if mark.version() != MARK_VERSION {
        return Err(invalid(format!(
            "unsupported version {}, expected {MARK_VERSION}",
            mark.version()
        )));
    }
    Ok(mark)
}

async fn read_mark<M: Mark>(store: &dyn ObjectStore, ulid: Ulid) -> Result<Option<M>> {
    match store.get(&object_key(ulid, M::FILE)).await {
        Ok(bytes) => parse_mark(&bytes, ulid).map(Some),
        Err(BucketError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn write_mark<M: Mark>(store: &dyn ObjectStore, ulid: Ulid, mark: &M) -> Result<bool> {
    let key = object_key(ulid, M::FILE);
    if store.exists(&key).await? {
        return Ok(false);
    }
    let body = serde_json::to_vec(mark).map_err(|e| BlocksError::Invalid {
        ulid,
        file: M::FILE,
        reason: format!("cannot serialise: {e}"),
    })?;
    store.put_bytes(&key, Bytes::from(body)).await?;
    Ok(true)
}

/// Parses the `deletion-mark.json` of block `ulid`.
pub fn parse_deletion_mark(bytes: &[u8], ulid: Ulid) -> Result<DeletionMark> {
    parse_mark(bytes, ulid)
}

/// Parses the `no-compact-mark.json` of block `ulid`.
pub fn parse_no_compact_mark(bytes: &[u8], ulid: Ulid) -> Result<NoCompactMark> {
    parse_mark(bytes, ulid)
}

/// Parses the `no-downsample-mark.json` of block `ulid`.
pub fn parse_no_downsample_mark(bytes: &[u8], ulid: Ulid) -> Result<NoDownsampleMark> {
    parse_mark(bytes, ulid)
}

/// The no-downsample mark of block `ulid`, `None` when it has none.
pub async fn read_no_downsample_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
) -> Result<Option<NoDownsampleMark>> {
    read_mark(store, ulid).await
}

/// Marks block `ulid` as not to be downsampled. Returns `false`, writing nothing, when the
/// block already has a no-downsample mark.
pub async fn write_no_downsample_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
    reason: NoCompactReason,
    details: &str,
    now: SystemTime,
) -> Result<bool> {
    write_mark(
        store,
        ulid,
        &NoDownsampleMark::new(ulid, reason, details, now),
    )
    .await
}

/// The deletion mark of block `ulid`, `None` when it has none.
pub async fn read_deletion_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
) -> Result<Option<DeletionMark>> {
    read_mark(store, ulid).await
}

/// The no-compact mark of block `ulid`, `None` when it has none.
pub async fn read_no_compact_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
) -> Result<Option<NoCompactMark>> {
    read_mark(store, ulid).await
}

/// Marks block `ulid` for deletion as of `now`. Returns `false`, writing nothing, when the
/// block is already marked: the first mark's time stands.
pub async fn write_deletion_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
    details: &str,
    now: SystemTime,
) -> Result<bool> {
    write_mark(store, ulid, &DeletionMark::new(ulid, details, now)).await
}

/// Marks block `ulid` as not to be compacted. Returns `false`, writing nothing, when the block
/// already has a no-compact mark.
pub async fn write_no_compact_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
    reason: NoCompactReason,
    details: &str,
    now: SystemTime,
) -> Result<bool> {
    write_mark(store, ulid, &NoCompactMark::new(ulid, reason, details, now)).await
}

/// The marks an operator puts on a block (CLI `tools bucket mark`, the blocks page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManualMark {
    Deletion,
    NoCompact,
    NoDownsample,
}

impl ManualMark {
    /// `deletion`, `no-compact` or `no-downsample`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deletion" => Some(ManualMark::Deletion),
            "no-compact" => Some(ManualMark::NoCompact),
            "no-downsample" => Some(ManualMark::NoDownsample),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ManualMark::Deletion => "deletion",
            ManualMark::NoCompact => "no-compact",
            ManualMark::NoDownsample => "no-downsample",
        }
    }
}

/// Puts `kind` (reason `manual`) on block `ulid` as of `now`. Returns `false`, writing nothing,
/// when the block already has such a mark.
pub async fn put_manual_mark(
    store: &dyn ObjectStore,
    ulid: Ulid,
    kind: ManualMark,
    details: &str,
    now: SystemTime,
) -> Result<bool> {
    match kind {
        ManualMark::Deletion => write_deletion_mark(store, ulid, details, now).await,
        ManualMark::NoCompact => {
            write_no_compact_mark(store, ulid, NoCompactReason::Manual, details, now).await
        }
        ManualMark::NoDownsample => {
            write_no_downsample_mark(store, ulid, NoCompactReason::Manual, details, now).await
        }
    }
}

/// Whole seconds since the epoch; 0 for a time before it.
fn unix_seconds(t: SystemTime) -> i64 {
    i64::try_from(crate::time::since_epoch(t).as_secs()).unwrap_or(i64::MAX)
}
