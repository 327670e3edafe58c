//! Uploading one local TSDB block to the bucket: reads the local directory (`meta.json`,
//! `chunks/*`, `index`, `tombstones`), injects the `thanos` section into the meta and hands
//! the files to the block catalogue's `blocks::upload`, which sends them in Thanos order with
//! `meta.json` last. `meta.json` is handled as a `serde_json::Value` so fields we do not know
//! survive. Shared by the shipper and the `upload_dir` tool so both take the same code path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use ulid::Ulid;

use super::blocks::{self, BlockFile, CHUNKS_DIR, INDEX_FILE, META_FILE, TOMBSTONES_FILE};
use super::{BucketError, ObjectStore};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid meta.json {path}: {reason}")]
    InvalidMeta { path: PathBuf, reason: String },
    #[error("block {dir} is incomplete: {reason}")]
    IncompleteBlock { dir: PathBuf, reason: String },
    #[error("empty external labels are not allowed (block {ulid})")]
    EmptyExternalLabels { ulid: Ulid },
}

pub type Result<T> = std::result::Result<T, UploadError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
    move |source| UploadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A block directory on local disk with its parsed `meta.json`.
#[derive(Debug, Clone)]
pub struct LocalBlock {
    pub ulid: Ulid,
    pub dir: PathBuf,
    pub meta: Value,
    pub min_time: i64,
    pub max_time: i64,
    pub level: u64,
    /// `None` when `stats.numSamples` is absent.
    pub num_samples: Option<u64>,
}

/// Parses `<dir>/meta.json`; the dir name must be the block's ULID and match `meta.ulid`.
pub fn read_local_block(dir: &Path) -> Result<LocalBlock> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let ulid = Ulid::from_string(name).map_err(|e| UploadError::IncompleteBlock {
        dir: dir.to_path_buf(),
        reason: format!("directory name is not a ULID: {e}"),
    })?;
    let path = dir.join(META_FILE);
    let raw = std::fs::read(&path).map_err(io_err(&path))?;
    let meta: Value = serde_json::from_slice(&raw).map_err(|e| UploadError::InvalidMeta {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let bad = |reason: String| UploadError::InvalidMeta {
        path: path.clone(),
        reason,
    };
    if !meta.is_object() {
        return Err(bad("top level is not a JSON object".into()));
    }
    match meta.get("ulid").and_then(Value::as_str) {
        Some(s) if s == ulid.to_string() => {}
        Some(s) => return Err(bad(format!("ulid {s} does not match directory {ulid}"))),
        None => return Err(bad("missing string field \"ulid\"".into())),
    }
    let min_time = meta
        .get("minTime")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("missing integer field \"minTime\"".into()))?;
    let max_time = meta
        .get("maxTime")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("missing integer field \"maxTime\"".into()))?;
    let level = meta
        .pointer("/compaction/level")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let num_samples = meta.pointer("/stats/numSamples").and_then(Value::as_u64);
    Ok(LocalBlock {
        ulid,
        dir: dir.to_path_buf(),
        meta,
        min_time,
        max_time,
        level,
        num_samples,
    })
}

/// The data files of a block in upload order: `chunks/*` (sorted), `index`, `tombstones`
/// (if present). `meta.json` is not included; it is uploaded separately, last.
pub fn gather_files(dir: &Path) -> Result<Vec<BlockFile>> {
    let mut files = Vec::new();
    let chunks = dir.join(CHUNKS_DIR);
    let rd = std::fs::read_dir(&chunks).map_err(|e| UploadError::IncompleteBlock {
        dir: dir.to_path_buf(),
        reason: format!("cannot read {}: {e}", chunks.display()),
    })?;
    let mut segments = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err(&chunks))?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        if !meta.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(UploadError::IncompleteBlock {
                dir: dir.to_path_buf(),
                reason: format!("non UTF-8 file name in {}", chunks.display()),
            });
        };
        segments.push(BlockFile {
            rel_path: format!("{CHUNKS_DIR}/{name}"),
            size: meta.len(),
        });
    }
    segments.sort();
    files.extend(segments);
    let index = dir.join(INDEX_FILE);
    let size = std::fs::metadata(&index)
        .map_err(|e| UploadError::IncompleteBlock {
            dir: dir.to_path_buf(),
            reason: format!("no index file: {e}"),
        })?
        .len();
    files.push(BlockFile {
        rel_path: INDEX_FILE.into(),
        size,
    });
    let tombstones = dir.join(TOMBSTONES_FILE);
    match std::fs::metadata(&tombstones) {
        Ok(m) if m.is_file() => files.push(BlockFile {
            rel_path: TOMBSTONES_FILE.into(),
            size: m.len(),
        }),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tombstones)(e)),
    }
    Ok(files)
}

/// Adds/overwrites the `thanos` section of a block's meta, keeping any other fields of an
/// existing section (e.g. `extensions`, `rewrites`, an existing downsample resolution).
pub fn inject_thanos(
    meta: &mut Value,
    labels: &BTreeMap<String, String>,
    source: &str,
    files: &[BlockFile],
    upload_time: SystemTime,
) {
    let Some(obj) = meta.as_object_mut() else {
        return;
    };
    let thanos = obj
        .entry("thanos")
        .or_insert_with(|| Value::Object(Map::new()));
    if !thanos.is_object() {
        *thanos = Value::Object(Map::new());
    }
    let Some(t) = thanos.as_object_mut() else {
        return;
    };
    let resolution = t
        .get("downsample")
        .and_then(|d| d.get("resolution"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut entries: Vec<Value> = files
        .iter()
        .map(|f| json!({"rel_path": f.rel_path, "size_bytes": f.size}))
        .collect();
    // Like Thanos: meta.json is listed without a size (it is written after the list).
    entries.push(json!({ "rel_path": META_FILE }));
    entries.sort_by(|a, b| {
        let ka = a.get("rel_path").and_then(Value::as_str).unwrap_or("");
        let kb = b.get("rel_path").and_then(Value::as_str).unwrap_or("");
        ka.cmp(kb)
    });
    let mut segments: Vec<&str> = files
        .iter()
        .filter_map(|f| f.rel_path.strip_prefix("chunks/"))
        .collect();
    segments.sort_unstable();
    t.insert("version".into(), json!(1));
    t.insert("labels".into(), json!(labels));
    t.insert("downsample".into(), json!({ "resolution": resolution }));
    t.insert("source".into(), json!(source));
    t.insert("segment_files".into(), json!(segments));
    t.insert("files".into(), Value::Array(entries));
    t.insert(
        "upload_time".into(),
        json!(crate::time::rfc3339_nanos(upload_time)),
    );
}

/// Progress of one block upload, for CLI output.
#[derive(Debug, Clone)]
pub enum UploadEvent {
    FileUploaded {
        ulid: Ulid,
        rel_path: String,
        size: u64,
    },
    MetaUploaded {
        ulid: Ulid,
    },
}

/// What one successful `upload_block` sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedBlock {
    pub ulid: Ulid,
    pub files: usize,
    pub bytes: u64,
}

/// Uploads a block: data files first, then `meta.json` with the `thanos` section (stamped
/// with the time the data files were in), through `blocks::upload`. If any data file fails,
/// `meta.json` is not written, so the block stays invisible and a later attempt re-uploads it
/// completely (puts overwrite).
pub async fn upload_block(
    store: &dyn ObjectStore,
    block: &LocalBlock,
    labels: &BTreeMap<String, String>,
    source: &str,
    progress: &mut (dyn FnMut(&UploadEvent) + Send),
) -> Result<UploadedBlock> {
    if labels.is_empty() {
        return Err(UploadError::EmptyExternalLabels { ulid: block.ulid });
    }
    let files = gather_files(&block.dir)?;
    let ulid = block.ulid;
    let meta = || {
        let mut meta = block.meta.clone();
        inject_thanos(&mut meta, labels, source, &files, SystemTime::now());
        serde_json::to_vec_pretty(&meta)
            .map(Bytes::from)
            .map_err(|e| UploadError::InvalidMeta {
                path: block.dir.join(META_FILE),
                reason: format!("cannot serialise: {e}"),
            })
    };
    let mut sent = |rel_path: &str, size: u64| {
        progress(&if rel_path == META_FILE {
            UploadEvent::MetaUploaded { ulid }
        } else {
            UploadEvent::FileUploaded {
                ulid,
                rel_path: rel_path.to_string(),
                size,
            }
        })
    };
    let bytes = blocks::upload(store, ulid, &block.dir, &files, meta, &mut sent).await?;
    Ok(UploadedBlock {
        ulid,
        files: files.len() + 1,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_keeps_unknown_fields_and_sorts_files() {
        let mut meta = json!({
            "ulid": "01H00000000000000000000000",
            "custom": {"x": 1},
            "thanos": {"extensions": {"a": "b"}, "downsample": {"resolution": 300000}}
        });
        let labels = BTreeMap::from([("cluster".to_string(), "eu".to_string())]);
        let files = vec![
            BlockFile {
                rel_path: "index".into(),
                size: 10,
            },
            BlockFile {
                rel_path: "chunks/000002".into(),
                size: 5,
            },
            BlockFile {
                rel_path: "chunks/000001".into(),
                size: 7,
            },
        ];
        inject_thanos(
            &mut meta,
            &labels,
            "sidecar",
            &files,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(meta["custom"]["x"], 1);
        let t = &meta["thanos"];
        assert_eq!(t["extensions"]["a"], "b");
        assert_eq!(t["downsample"]["resolution"], 300000);
        assert_eq!(t["labels"]["cluster"], "eu");
        assert_eq!(t["source"], "sidecar");
        assert_eq!(t["version"], 1);
        assert_eq!(t["upload_time"], "1970-01-01T00:00:00.000000000Z");
        let paths: Vec<&str> = t["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rel_path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["chunks/000001", "chunks/000002", "index", "meta.json"]
        );
        assert_eq!(t["files"][0]["size_bytes"], 7);
        assert!(t["files"][3].get("size_bytes").is_none());
        assert_eq!(t["segment_files"], json!(["000001", "000002"]));
    }

    #[test]
    fn meta_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ulid = Ulid::new();
        let bdir = dir.path().join(ulid.to_string());
        std::fs::create_dir(&bdir).unwrap();
        std::fs::write(bdir.join(META_FILE), b"{not json").unwrap();
        let err = read_local_block(&bdir).unwrap_err();
        assert!(err.to_string().contains("meta.json"), "{err}");
        std::fs::write(
            bdir.join(META_FILE),
            format!(r#"{{"ulid":"{}","minTime":1,"maxTime":2}}"#, Ulid::new()),
        )
        .unwrap();
        let err = read_local_block(&bdir).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
