//! Building an index header file from the bucket: the TOC, the symbol table and the postings
//! offset table of the block's `index` are copied byte-exact with ranged GETs (never the whole
//! index, and in bounded pieces) into one file under the cache dir, each section's checksum
//! verified on the way, with a trailing CRC32C over the whole file. The layout is described in
//! `index_header`.

use std::io::Read;
use std::path::Path;

use tokio::io::AsyncWriteExt;
use ulid::Ulid;

use super::decode::{parse_toc, section_end};
use super::index_header::{FIXED_LEN, HEADER_FORMAT, HEADER_MAGIC};
use super::{Result, StoreError};
use crate::storage::block::encoding::Dec;
use crate::storage::block::index::{INDEX_FORMAT_V2, INDEX_MAGIC, TOC_LEN};
use crate::storage::block::BlockError;
use crate::storage::bucket::ObjectStore;

/// Sections are copied in pieces of this size so a huge symbol table never sits in memory.
const COPY_PIECE: u64 = 4 << 20;

pub(super) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Block(BlockError::Corrupt {
        file: file.to_string(),
        offset,
        reason: reason.into(),
    })
}

fn bucket_err(key: &str) -> impl FnOnce(crate::storage::bucket::BucketError) -> StoreError + '_ {
    move |source| StoreError::Bucket {
        key: key.to_string(),
        source,
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::HeaderIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Builds the header file of block `ulid` at `path` from the bucket with ranged reads, verifying
/// every copied section's checksum. Written to a temp file and renamed, so a crash never leaves
/// a half header behind. Returns the header size in bytes.
pub async fn build_header(
    store: &dyn ObjectStore,
    ulid: Ulid,
    index_size: Option<u64>,
    path: &Path,
) -> Result<u64> {
    let key = format!("{ulid}/index");
    let size = match index_size {
        Some(s) => s,
        None => {
            store
                .head(&key)
                .await
                .map_err(bucket_err(&key))?
                .ok_or_else(|| StoreError::Bucket {
                    key: key.clone(),
                    source: crate::storage::bucket::BucketError::NotFound { key: key.clone() },
                })?
                .size
        }
    };
    if size < (5 + TOC_LEN) as u64 {
        return Err(corrupt(
            &key,
            0,
            format!("index of {size} bytes is too short"),
        ));
    }
    let head = store
        .get_range(&key, 0, 5)
        .await
        .map_err(bucket_err(&key))?;
    let mut d = Dec::new(&head, 0, &key);
    let magic = d.be_u32("index magic")?;
    if magic != INDEX_MAGIC {
        return Err(corrupt(&key, 0, format!("bad index magic {magic:#010x}")));
    }
    let version = d.byte("index version")?;
    if version != INDEX_FORMAT_V2 {
        return Err(corrupt(
            &key,
            4,
            format!("index format {version} is not supported by the store (want 2)"),
        ));
    }
    let toc_at = size - TOC_LEN as u64;
    let toc_bytes = store
        .get_range(&key, toc_at, TOC_LEN as u64)
        .await
        .map_err(bucket_err(&key))?;
    let toc = parse_toc(&toc_bytes, toc_at, &key)?;

    let tmp = path.with_extension("tmp");
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io_err(&tmp))?;
    // The fixed part is written once the section lengths are known; reserve it now.
    file.write_all(&[0u8; FIXED_LEN])
        .await
        .map_err(io_err(&tmp))?;
    let sym_end = section_end(&toc, toc_at, toc.symbols);
    let sym_len = copy_section(
        store,
        &key,
        toc.symbols,
        sym_end,
        &mut file,
        &tmp,
        "symbol table",
    )
    .await?;
    let pt_len = copy_section(
        store,
        &key,
        toc.postings_table,
        toc_at,
        &mut file,
        &tmp,
        "postings offset table",
    )
    .await?;
    let mut fixed = Vec::with_capacity(FIXED_LEN);
    fixed.extend_from_slice(&HEADER_MAGIC.to_be_bytes());
    fixed.push(HEADER_FORMAT);
    fixed.push(version);
    fixed.extend_from_slice(&[0, 0]);
    fixed.extend_from_slice(&size.to_be_bytes());
    fixed.extend_from_slice(&toc_bytes[..48]);
    fixed.extend_from_slice(&sym_len.to_be_bytes());
    fixed.extend_from_slice(&pt_len.to_be_bytes());
    file.flush().await.map_err(io_err(&tmp))?;
    drop(file);
    let total = finish_header_file(&tmp, &fixed)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(total)
}

/// Writes the fixed part over the reserved bytes and appends the whole-file checksum.
fn finish_header_file(tmp: &Path, fixed: &[u8]) -> Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    f.write_all(fixed).map_err(io_err(tmp))?;
    f.seek(SeekFrom::Start(0)).map_err(io_err(tmp))?;
    let (crc, len) = crc_of_reader(&mut f, u64::MAX).map_err(io_err(tmp))?;
    f.seek(SeekFrom::End(0)).map_err(io_err(tmp))?;
    f.write_all(&crc.to_be_bytes()).map_err(io_err(tmp))?;
    f.sync_all().map_err(io_err(tmp))?;
    Ok(len + 4)
}

pub(super) fn crc_of_reader(r: &mut impl Read, limit: u64) -> std::io::Result<(u32, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut crc = 0u32;
    let mut total = 0u64;
    let mut r = r.take(limit);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((crc, total));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        total += n as u64;
    }
}

/// Copies the framed section (`len u32 | body | crc`) at `off` of the index into `out`, piece
/// by piece, verifying the body checksum. The section must end before `bound`.
async fn copy_section(
    store: &dyn ObjectStore,
    key: &str,
    off: u64,
    bound: u64,
    out: &mut tokio::fs::File,
    out_path: &Path,
    what: &str,
) -> Result<u64> {
    if bound < off + 8 {
        return Err(corrupt(
            key,
            off,
            format!("no room for the {what} before offset {bound}"),
        ));
    }
    let first = store
        .get_range(key, off, COPY_PIECE.min(bound - off))
        .await
        .map_err(bucket_err(key))?;
    let mut d = Dec::new(&first, off, key);
    let body_len = d.be_u32(&format!("{what} length"))? as u64;
    let total = 4 + body_len + 4;
    if off + total > bound {
        return Err(corrupt(
            key,
            off,
            format!("{what} of {body_len} bytes runs past offset {bound}"),
        ));
    }
    let mut crc = 0u32;
    let mut stored: Vec<u8> = Vec::with_capacity(4);
    let mut pos = 0u64;
    let mut piece = first;
    loop {
        let take = (piece.len() as u64).min(total - pos) as usize;
        let part = piece.slice(..take);
        // Body positions are [4, 4 + body_len); the stored CRC follows.
        let lo = 4u64.max(pos).min(4 + body_len);
        let hi = (4 + body_len).min(pos + take as u64).max(lo);
        crc = crc32c::crc32c_append(crc, &part[(lo - pos) as usize..(hi - pos) as usize]);
        let tail_from = (4 + body_len).max(pos).min(pos + take as u64);
        stored.extend_from_slice(&part[(tail_from - pos) as usize..]);
        out.write_all(&part).await.map_err(io_err(out_path))?;
        pos += take as u64;
        if pos >= total {
            break;
        }
        if take == 0 {
            return Err(corrupt(key, off + pos, format!("{what} truncated")));
        }
        piece = store
            .get_range(key, off + pos, COPY_PIECE.min(total - pos))
            .await
            .map_err(bucket_err(key))?;
    }
    let Ok(stored) = <[u8; 4]>::try_from(stored.as_slice()) else {
        return Err(corrupt(
            key,
            off + 4 + body_len,
            format!("{what} checksum missing"),
        ));
    };
    let want = u32::from_be_bytes(stored);
    if crc != want {
        return Err(corrupt(
            key,
            off + 4,
            format!("{what} checksum mismatch: stored {want:#010x}, computed {crc:#010x}"),
        ));
    }
    Ok(total)
}
