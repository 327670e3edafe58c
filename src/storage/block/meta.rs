//! `meta.json`: the Prometheus `BlockMeta` (plus the optional Thanos section) as serde types,
//! with Go-compatible field names and `omitempty` behaviour, tolerant reading (unknown fields
//! are kept and written back) and atomic writing (tmp file, fsync, rename, fsync dir).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::{fsync_dir, io_err, BlockError, Result};

pub const META_FILENAME: &str = "meta.json";

/// The only meta.json format version Prometheus reads.
pub const META_VERSION: u32 = 1;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Go marshals nil slices and maps as `null`; read those (and any missing field) as empty.
fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A block's descriptor and statistics, exactly as Prometheus 2.42 and Thanos serialize it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// Inclusive lower bound in ms.
    pub min_time: i64,
    /// Exclusive upper bound in ms.
    pub max_time: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub stats: BlockStats,
    #[serde(default, deserialize_with = "null_default")]
    pub compaction: BlockMetaCompaction,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
    /// Fields we do not model, preserved so rewriting a foreign meta loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BlockMeta {
    /// The block's downsampling resolution in ms (`thanos.downsample.resolution`); 0 = raw,
    /// also for a meta without a `thanos` section.
    pub fn resolution(&self) -> i64 {
        self.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
    }

    /// A level-1 meta for a new block covering `[min_time, max_time)`.
    pub fn new(ulid: Ulid, min_time: i64, max_time: i64) -> Self {
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: BlockMetaCompaction {
                level: 1,
                sources: vec![ulid],
                ..Default::default()
            },
            version: META_VERSION,
            thanos: None,
            extra: serde_json::Map::new(),
        }
    }

    pub fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }

    /// Reads and validates `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<BlockMeta> {
        let path = dir.join(META_FILENAME);
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let meta: BlockMeta = serde_json::from_slice(&bytes).map_err(|e| BlockError::Meta {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if meta.version != META_VERSION {
            return Err(BlockError::Meta {
                file: path.display().to_string(),
                reason: format!(
                    "unsupported meta.json version {} (want {META_VERSION})",
                    meta.version
                ),
            });
        }
        if let Some(t) = &meta.thanos {
            if t.version > 1 {
                return Err(BlockError::Meta {
                    file: path.display().to_string(),
                    reason: format!("unsupported thanos meta version {}", t.version),
                });
            }
        }
        Ok(meta)
    }

    /// Serializes like Go's `json.MarshalIndent(meta, "", "\t")`.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser).map_err(|e| BlockError::Meta {
            file: META_FILENAME.into(),
            reason: e.to_string(),
        })?;
        Ok(out)
    }

    /// Atomically writes `<dir>/meta.json` (tmp file, fsync, rename, fsync dir).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let data = self.to_json()?;
        let tmp = dir.join(format!("{META_FILENAME}.tmp"));
        let path = dir.join(META_FILENAME);
        {
            let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&data).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        fsync_dir(dir)
    }
}

/// Block statistics; zero counters are omitted like Go's `omitempty`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_samples: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_float_samples: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_histogram_samples: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_series: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_chunks: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub num_tombstones: u64,
}

/// ULID and time range of a parent block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMetaCompaction {
    #[serde(default, deserialize_with = "null_default")]
    pub level: u32,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<Ulid>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parents: Vec<BlockDesc>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub deletable: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub failed: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hints: Vec<String>,
}

/// The Thanos extension of meta.json (`pkg/block/metadata/meta.go`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// 1; a missing or 0 version is read as 1.
    #[serde(default, deserialize_with = "null_default")]
    pub version: u32,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub downsample: ThanosDownsample,
    #[serde(default, deserialize_with = "null_default")]
    pub source: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segment_files: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<ThanosFile>,
    /// Sizes the index was written with (`index_stats`), set on the blocks the compactor and
    /// the downsampler write, as Thanos's do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_stats: Option<IndexStats>,
    /// RFC 3339 time the block was uploaded; set by the uploader just before writing meta.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
    /// Rewrites, index stats, extensions and anything newer, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ThanosMeta {
    /// A version-1 Thanos section for a block produced by `source` (e.g. "sidecar").
    pub fn new(labels: BTreeMap<String, String>, resolution_ms: i64, source: &str) -> Self {
        ThanosMeta {
            version: 1,
            labels,
            downsample: ThanosDownsample {
                resolution: resolution_ms,
            },
            source: source.to_string(),
            ..Default::default()
        }
    }

    /// The `files` list Thanos records before upload: every chunk segment and the index with
    /// their sizes, plus `meta.json` without a size, sorted by path.
    pub fn gather_files(block_dir: &Path) -> Result<Vec<ThanosFile>> {
        let mut files = Vec::new();
        let chunks = block_dir.join("chunks");
        for entry in fs::read_dir(&chunks).map_err(|e| io_err(&chunks, e))? {
            let entry = entry.map_err(|e| io_err(&chunks, e))?;
            let md = entry.metadata().map_err(|e| io_err(&entry.path(), e))?;
            if md.is_file() {
                let rel_path = format!("chunks/{}", entry.file_name().to_string_lossy());
                files.push(ThanosFile {
                    rel_path,
                    size_bytes: md.len() as i64,
                    hash: None,
                });
            }
        }
        let index = block_dir.join("index");
        let md = fs::metadata(&index).map_err(|e| io_err(&index, e))?;
        files.push(ThanosFile {
            rel_path: "index".into(),
            size_bytes: md.len() as i64,
            hash: None,
        });
        files.push(ThanosFile {
            rel_path: META_FILENAME.into(),
            size_bytes: 0,
            hash: None,
        });
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(files)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    #[serde(default, deserialize_with = "null_default")]
    pub resolution: i64,
}

/// Thanos's `index_stats` (`block.GatherIndexHealthStats`): the largest distance between two
/// consecutive series entries of the index, and between a chunk and the next one of its
/// series in one segment (a series' last two chunks are not measured); stores use them to
/// size their reads. A zero is not written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero_i64"
    )]
    pub series_max_size: i64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero_i64"
    )]
    pub chunk_max_size: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosFile {
    pub rel_path: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero_i64"
    )]
    pub size_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<serde_json::Value>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_and_thanos_metas_and_omits_zero_stats() {
        let prom = r#"{
	"ulid": "01M88ZBNF75DJ19MCGFANQ9S7W",
	"minTime": 1699999999995,
	"maxTime": 1700006385001,
	"stats": {"numSamples": 361, "numSeries": 2, "numChunks": 3, "numFutureThing": 9},
	"compaction": {"level": 1, "sources": ["01M88ZBNF75DJ19MCGFANQ9S7W"], "parents": null},
	"version": 1,
	"thanos": {"labels": {"replica": "a"}, "downsample": {"resolution": 0}, "source": "sidecar", "segment_files": null,
	           "files": [{"rel_path": "index", "size_bytes": 518}], "rewrites": [{"sources": []}]},
	"somethingNew": true
}"#;
        let m: BlockMeta = serde_json::from_str(prom).unwrap();
        assert_eq!(m.stats.num_samples, 361);
        assert_eq!(m.compaction.sources.len(), 1);
        let t = m.thanos.clone().unwrap();
        assert_eq!(t.labels.get("replica").map(String::as_str), Some("a"));
        assert_eq!(t.files[0].size_bytes, 518);
        assert!(t.extra.contains_key("rewrites"));
        let out = String::from_utf8(m.to_json().unwrap()).unwrap();
        assert!(out.contains("\n\t\"ulid\""), "{out}");
        assert!(!out.contains("numTombstones"));
        assert!(out.contains("\"rewrites\""));
        assert!(out.contains("\"somethingNew\""));
        let back: BlockMeta = serde_json::from_str(&out).unwrap();
        assert_eq!(back, m);
        let fresh = BlockMeta::new(Ulid::nil(), 0, 1);
        let s = String::from_utf8(fresh.to_json().unwrap()).unwrap();
        assert!(s.contains("\"stats\": {}"), "{s}");
        assert!(!s.contains("parents") && !s.contains("thanos"));
    }

    #[test]
    fn write_is_atomic_and_version_checked() {
        let dir = tempfile::tempdir().unwrap();
        let m = BlockMeta::new(Ulid::new(), 5, 10);
        m.write(dir.path()).unwrap();
        assert!(!dir.path().join("meta.json.tmp").exists());
        assert_eq!(BlockMeta::read(dir.path()).unwrap(), m);
        let mut bad = m.clone();
        bad.version = 2;
        fs::write(dir.path().join(META_FILENAME), bad.to_json().unwrap()).unwrap();
        assert!(BlockMeta::read(dir.path())
            .unwrap_err()
            .to_string()
            .contains("version"));
    }
}
