//! The block catalogue of a bucket: the one module that knows how blocks lie in object storage
//! and the rules every reader and writer of them follows (Thanos's bucket contract,
//! `reference/thanos-behaviour.md` §1.0 and §1.5). The shipper and the upload tool, the store
//! gateway's sync, the bucket tools and the compactor go through it rather than through keys.
//!
//! Layout. Every block lives at the bucket root under its ULID, with no tenant prefix:
//! `<ULID>/meta.json`, `<ULID>/index`, `<ULID>/chunks/NNNNNN`, optionally `<ULID>/tombstones`,
//! and the marks `<ULID>/deletion-mark.json`, `<ULID>/no-compact-mark.json` and
//! `<ULID>/no-downsample-mark.json`. Objects that are
//! not under a ULID directory (`debug/metas/...`) are not blocks and are ignored.
//! `list_blocks` reads the whole layout with one listing: per ULID, whether meta.json and each
//! mark are present, the index size, the chunk segments in order, and every object.
//!
//! The rules:
//! - **meta.json makes a block.** A block directory without `meta.json` is a partial upload,
//!   in flight or abandoned by an uploader that died. Readers skip it and never read its other
//!   objects as data. Once its oldest object is more than `PARTIAL_UPLOAD_THRESHOLD` (48 h) old
//!   (measured from the ULID's time when the backend reports no modification times), its
//!   uploader is presumed gone and the compactor may delete it
//!   (`BlockDir::is_abandoned_partial`).
//! - **Upload order.** `upload` puts every other file first, in the order given (Thanos sends
//!   `chunks/` and then `index`), and `meta.json` last, so a block becomes visible only once it
//!   is complete. A failed put stops the upload before meta.json; a retry overwrites.
//! - **Delete order.** `delete_block` removes `meta.json` first, so readers stop seeing the
//!   block at once, then every other object, then `deletion-mark.json` last, so a deletion cut
//!   short leaves a partial directory that is still marked and is finished by the next pass.
//! - **Deletion is delayed.** A block is first marked (`write_deletion_mark`). Readers keep
//!   serving it while the mark is younger than their delay; once the mark is at least the
//!   delay old the block counts as gone and may be deleted (`DeletionMark::is_due`).
//! - **Marks are written once.** Writing a deletion, no-compact or no-downsample mark never
//!   replaces one that exists, so marking a block again does not restart its delay. A
//!   no-downsample mark keeps the block out of downsampling. A no-compact mark keeps the
//!   block out of every compaction.
//! - **Parsing.** `meta.json` must have version 1, name the ULID of its directory, carry a
//!   `thanos` section of version 0 or 1, and have `minTime <= maxTime` (`parse_meta`). A mark
//!   must have version 1, as Thanos's `ReadMarker` requires; absent fields read as zero, as in
//!   Go. A file that fails is an `Invalid` error naming the block and the file, never a panic;
//!   whether the block is then skipped or the mark ignored is the caller's decision.

mod marks;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use ulid::Ulid;

use super::{BucketError, ListEntry, ObjectStore};
use crate::storage::block::BlockMeta;

pub use marks::{
    parse_deletion_mark, parse_no_compact_mark, parse_no_downsample_mark, put_manual_mark,
    read_deletion_mark, read_no_compact_mark, read_no_downsample_mark, write_deletion_mark,
    write_no_compact_mark, write_no_downsample_mark, DeletionMark, ManualMark, NoCompactMark,
    NoCompactReason, NoDownsampleMark,
};
pub use transfer::{delete_block, upload, BlockFile};

pub const META_FILE: &str = "meta.json";
pub const INDEX_FILE: &str = "index";
pub const CHUNKS_DIR: &str = "chunks";
pub const TOMBSTONES_FILE: &str = "tombstones";
pub const DELETION_MARK_FILE: &str = "deletion-mark.json";
pub const NO_COMPACT_MARK_FILE: &str = "no-compact-mark.json";
pub const NO_DOWNSAMPLE_MARK_FILE: &str = "no-downsample-mark.json";

/// Age after which a directory without `meta.json` is an abandoned upload (Thanos's
/// `PartialUploadThresholdAge`).
pub const PARTIAL_UPLOAD_THRESHOLD: Duration = Duration::from_secs(48 * 3600);

/// Every failure of the catalogue. Callers branch on the variant, never on message text.
#[derive(Debug, thiserror::Error)]
pub enum BlocksError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// A block file that exists but is not what the format says (bad JSON, wrong version...).
    #[error("{ulid}/{file}: {reason}")]
    Invalid {
        ulid: Ulid,
        file: &'static str,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, BlocksError>;

/// The key of `rel_path` (`/`-separated) inside block `ulid`.
pub fn object_key(ulid: Ulid, rel_path: &str) -> String {
    format!("{ulid}/{rel_path}")
}

/// The listing prefix of block `ulid`'s directory.
pub fn block_prefix(ulid: Ulid) -> String {
    format!("{ulid}/")
}

/// One chunk segment object of a block, in segment order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentObject {
    pub key: String,
    pub size: u64,
}

/// One block directory as a listing of the bucket shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDir {
    pub ulid: Ulid,
    pub has_meta: bool,
    pub has_deletion_mark: bool,
    pub has_no_compact_mark: bool,
    pub has_no_downsample_mark: bool,
    /// Size of `index`, when listed.
    pub index_size: Option<u64>,
    /// The `chunks/NNNNNN` segments, in segment number order.
    pub segments: Vec<SegmentObject>,
    /// Every object under the directory (the ones above included), sorted by key.
    pub objects: Vec<ListEntry>,
}

impl BlockDir {
    fn new(ulid: Ulid) -> Self {
        BlockDir {
            ulid,
            has_meta: false,
            has_deletion_mark: false,
            has_no_compact_mark: false,
            has_no_downsample_mark: false,
            index_size: None,
            segments: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// No `meta.json`: an upload in flight or abandoned, which readers skip.
    pub fn is_partial(&self) -> bool {
        !self.has_meta
    }

    /// When the directory started to exist: the oldest modification time of its objects, or
    /// the ULID's time when the backend reports none.
    pub fn oldest_modified(&self) -> SystemTime {
        self.objects
            .iter()
            .filter_map(|o| o.last_modified)
            .min()
            .unwrap_or_else(|| self.ulid.datetime())
    }

    /// A partial upload whose oldest object is more than `threshold` old at `now`: its
    /// uploader is presumed gone and the directory may be deleted (with `delete_block`).
    pub fn is_abandoned_partial(&self, threshold: Duration, now: SystemTime) -> bool {
        self.is_partial()
            && now
                .duration_since(self.oldest_modified())
                .is_ok_and(|age| age > threshold)
    }
}

/// Lists the bucket once and groups its objects by block directory. Keys outside a directory
/// whose name is a ULID are ignored.
pub async fn list_blocks(
    store: &dyn ObjectStore,
) -> std::result::Result<BTreeMap<Ulid, BlockDir>, BucketError> {
    let listing = store.list("", None).await?;
    let mut dirs: BTreeMap<Ulid, BlockDir> = BTreeMap::new();
    let mut segments: BTreeMap<Ulid, Vec<(u64, SegmentObject)>> = BTreeMap::new();
    for obj in listing.objects {
        let Some((dir, rest)) = obj.key.split_once('/') else {
            continue;
        };
        let Ok(ulid) = Ulid::from_string(dir) else {
            continue;
        };
        let d = dirs.entry(ulid).or_insert_with(|| BlockDir::new(ulid));
        match rest {
            META_FILE => d.has_meta = true,
            DELETION_MARK_FILE => d.has_deletion_mark = true,
            NO_COMPACT_MARK_FILE => d.has_no_compact_mark = true,
            NO_DOWNSAMPLE_MARK_FILE => d.has_no_downsample_mark = true,
            INDEX_FILE => d.index_size = Some(obj.size),
            _ => {
                let seq = rest
                    .strip_prefix(CHUNKS_DIR)
                    .and_then(|r| r.strip_prefix('/'))
                    .and_then(|seg| seg.parse::<u64>().ok());
                if let Some(seq) = seq {
                    let seg = SegmentObject {
                        key: obj.key.clone(),
                        size: obj.size,
                    };
                    segments.entry(ulid).or_default().push((seq, seg));
                }
            }
        }
        d.objects.push(obj);
    }
    for (ulid, mut segs) in segments {
        segs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        if let Some(d) = dirs.get_mut(&ulid) {
            d.segments = segs.into_iter().map(|(_, s)| s).collect();
        }
    }
    for d in dirs.values_mut() {
        d.objects.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(dirs)
}

/// Whether block `ulid` is in the bucket, i.e. its `meta.json` exists.
pub async fn block_exists(
    store: &dyn ObjectStore,
    ulid: Ulid,
) -> std::result::Result<bool, BucketError> {
    store.exists(&object_key(ulid, META_FILE)).await
}

/// Parses and validates the `meta.json` of block `ulid` (the rules in the module doc).
pub fn parse_meta(bytes: &[u8], ulid: Ulid) -> Result<BlockMeta> {
    let invalid = |reason: String| BlocksError::Invalid {
        ulid,
        file: META_FILE,
        reason,
    };
    let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if meta.version != 1 {
        return Err(invalid(format!(
            "unsupported meta.json version {}",
            meta.version
        )));
    }
    if meta.ulid != ulid {
        return Err(invalid(format!(
            "meta.json names block {} but lives under {ulid}",
            meta.ulid
        )));
    }
    if let Some(t) = &meta.thanos {
        if t.version > 1 {
            return Err(invalid(format!(
                "unsupported thanos meta version {}",
                t.version
            )));
        }
    }
    if meta.min_time > meta.max_time {
        return Err(invalid(format!(
            "minTime {} after maxTime {}",
            meta.min_time, meta.max_time
        )));
    }
    Ok(meta)
}

/// Reads and validates the `meta.json` of block `ulid`. A missing meta.json is the bucket's
/// `NotFound` error.
pub async fn read_meta(store: &dyn ObjectStore, ulid: Ulid) -> Result<BlockMeta> {
    let bytes = store.get(&object_key(ulid, META_FILE)).await?;
    parse_meta(&bytes, ulid)
}

/// The `meta.json` of block `ulid` as JSON, exactly as stored (fields we do not model
/// included, nothing validated but the syntax), for tools that show or check it as it is.
/// `None` when the block has no meta.json (a partial upload).
pub async fn read_meta_json(store: &dyn ObjectStore, ulid: Ulid) -> Result<Option<Value>> {
    let bytes = match store.get(&object_key(ulid, META_FILE)).await {
        Ok(b) => b,
        Err(BucketError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| BlocksError::Invalid {
            ulid,
            file: META_FILE,
            reason: e.to_string(),
        })
}
