//! The Db's persisted blocks: finding and opening them in `<dir>/<ULID>/`, writing a head
//! range as a level-1 block, and deleting a block without ever exposing half a directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::{DbError, Result};
use crate::storage::block::{BlockMeta, BlockReader, BlockWriter};
use crate::storage::model::{
    EncodedChunk, Labels, Matcher, QueryResult, Queryable, SelectHints, Series,
};

/// An opened local block.
pub struct LocalBlock {
    dir: PathBuf,
    meta: BlockMeta,
    reader: BlockReader,
}

impl LocalBlock {
    pub fn open(dir: &Path) -> Result<LocalBlock> {
        let reader = BlockReader::open(dir).map_err(|e| block_err(dir, e))?;
        let meta = reader.meta().clone();
        Ok(LocalBlock {
            dir: dir.to_path_buf(),
            meta,
            reader,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }
}

fn block_err(dir: &Path, e: impl std::fmt::Display) -> DbError {
    DbError::Block {
        dir: dir.display().to_string(),
        reason: e.to_string(),
    }
}

impl Queryable for LocalBlock {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        self.reader.select(matchers, mint, maxt, hints)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        self.reader.label_names(matchers, mint, maxt)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        self.reader.label_values(name, matchers, mint, maxt)
    }
}

pub fn sort(list: &mut [std::sync::Arc<LocalBlock>]) {
    list.sort_by(|a, b| {
        a.meta
            .min_time
            .cmp(&b.meta.min_time)
            .then(a.meta.ulid.cmp(&b.meta.ulid))
    });
}

/// Opens every `<ULID>/` block under `dir`, removes leftovers of interrupted writes and
/// deletions (`<ULID>.tmp*`), and skips (with a warning) directories that fail to open, so a
/// single bad block never stops the node.
pub fn load_all(dir: &Path) -> Result<Vec<std::sync::Arc<LocalBlock>>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| DbError::io(dir, "list", e))?;
    for entry in rd {
        let entry = entry.map_err(|e| DbError::io(dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if let Some((id, _)) = name.split_once(".tmp") {
            if Ulid::from_string(id).is_ok() {
                tracing::info!(dir = %path.display(), "removing leftover temporary block directory");
                fs::remove_dir_all(&path).map_err(|e| DbError::io(&path, "remove", e))?;
            }
            continue;
        }
        if Ulid::from_string(&name).is_err() {
            continue;
        }
        match LocalBlock::open(&path) {
            Ok(b) if b.meta.compaction.deletable => {
                tracing::info!(dir = %path.display(), "removing block marked deletable");
                delete_dir(&path)?;
            }
            Ok(b) => out.push(std::sync::Arc::new(b)),
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "skipping unreadable block")
            }
        }
    }
    sort(&mut out);
    Ok(out)
}

/// Writes `[mint, maxt)` of the head as a level-1 block with itself as its only source.
pub fn write_block(
    dir: &Path,
    mint: i64,
    maxt: i64,
    data: &[(Labels, Vec<EncodedChunk>)],
) -> Result<LocalBlock> {
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (labels, _) in data {
        for l in labels.iter() {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    let symbols: Vec<String> = symbols.into_iter().map(str::to_string).collect();
    let mut w = BlockWriter::create(dir, symbols).map_err(|e| block_err(dir, e))?;
    for (labels, chunks) in data {
        w.add_series(labels, chunks)
            .map_err(|e| block_err(dir, e))?;
    }
    // Level 1 with itself as the only source.
    let meta = BlockMeta::new(w.ulid(), mint, maxt);
    let meta = w.finish(meta).map_err(|e| block_err(dir, e))?;
    LocalBlock::open(&dir.join(meta.ulid.to_string()))
}

/// Renames the block out of sight first, so a crash mid-delete leaves a `.tmp` leftover that
/// `load_all` cleans up instead of a half-deleted block.
pub fn delete_dir(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.tmp-for-deletion"));
    fs::rename(path, &tmp).map_err(|e| DbError::io(path, "rename", e))?;
    fs::remove_dir_all(&tmp).map_err(|e| DbError::io(&tmp, "remove", e))
}
