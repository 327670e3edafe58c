//! Putting a block into the bucket and taking it out, each in Thanos's order (`upload()` and
//! `Delete()` in `pkg/block/block.go`): `meta.json` is the last object written and the first
//! removed, so that no reader ever sees a block that is not complete.

use std::path::Path;

use bytes::Bytes;
use ulid::Ulid;

use super::{block_prefix, object_key, DELETION_MARK_FILE, META_FILE};
use crate::storage::bucket::{BucketError, ObjectStore};

/// One file of a block, relative to the block directory (`/`-separated), with its size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockFile {
    pub rel_path: String,
    pub size: u64,
}

/// Uploads block `ulid` from the local directory `dir`: every file of `files` in the given
/// order, then `meta.json` LAST, with the body `meta` builds once every other file is in (so
/// it can record the upload time). A `meta.json` in `files` is skipped: only the body `meta`
/// returns is uploaded, and only at the end. If a put fails, nothing after it is sent, so the
/// directory stays a partial upload that readers skip and a retry overwrites. `sent` hears of
/// every object put (`rel_path`, bytes), meta.json included. Returns the bytes uploaded.
pub async fn upload<E>(
    store: &dyn ObjectStore,
    ulid: Ulid,
    dir: &Path,
    files: &[BlockFile],
    meta: impl FnOnce() -> Result<Bytes, E>,
    sent: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<u64, E>
where
    E: From<BucketError>,
{
    let mut bytes = 0u64;
    for f in files.iter().filter(|f| f.rel_path != META_FILE) {
        let n = store
            .put_file(&object_key(ulid, &f.rel_path), &dir.join(&f.rel_path))
            .await?;
        bytes += n;
        sent(&f.rel_path, n);
    }
    let body = meta()?;
    let n = body.len() as u64;
    store.put_bytes(&object_key(ulid, META_FILE), body).await?;
    bytes += n;
    sent(META_FILE, n);
    Ok(bytes)
}

/// Deletes block `ulid`: `meta.json` first, so readers stop seeing the block at once, then
/// every other object of the directory, then `deletion-mark.json` last, so that a deletion cut
/// short leaves a marked partial upload the next pass finishes. Deleting a block that is
/// already (partly) gone succeeds.
pub async fn delete_block(store: &dyn ObjectStore, ulid: Ulid) -> Result<(), BucketError> {
    let meta = object_key(ulid, META_FILE);
    let mark = object_key(ulid, DELETION_MARK_FILE);
    store.delete(&meta).await?;
    for obj in store.list(&block_prefix(ulid), None).await?.objects {
        if obj.key != meta && obj.key != mark {
            store.delete(&obj.key).await?;
        }
    }
    store.delete(&mark).await
}
