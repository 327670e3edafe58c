//! The embedded default bucket: objects are files under one root directory. Writes are atomic
//! (temp file in `<root>/.strata-tmp`, fsync, rename, fsync of the parent), keys can never
//! resolve outside the root (validated keys, symlinks refused), and `list` follows S3
//! delimiter semantics exactly. Also owns the atomic local-file helpers other modules reuse.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    group_by_delimiter, validate_key, validate_prefix, BucketError, ListEntry, ListResult,
    ObjectMeta, ObjectStore, Result,
};

/// Directory under the root that holds in-flight writes; hidden from listings and refused as
/// a key so that a temp file can never be mistaken for an object.
const TMP_DIR: &str = ".strata-tmp";

#[derive(Debug, Clone)]
pub struct FilesystemStore {
    root: PathBuf,
}

impl FilesystemStore {
    /// Opens (creating if needed) a bucket rooted at `root`.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root.join(TMP_DIR)).map_err(|e| BucketError::io(root, e))?;
        let root = fs::canonicalize(root).map_err(|e| BucketError::io(root, e))?;
        remove_stale_tmp(&root.join(TMP_DIR));
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a validated key to its path, refusing the temp dir and any symlink on the way so
    /// that a link planted inside the root cannot lead outside it.
    fn resolve(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        if key == TMP_DIR || key.starts_with(&format!("{TMP_DIR}/")) {
            return Err(BucketError::InvalidKey {
                key: key.to_string(),
                reason: "reserved for in-flight writes of the filesystem bucket",
            });
        }
        let mut path = self.root.clone();
        for segment in key.split('/') {
            path.push(segment);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(BucketError::Permanent {
                        op: "resolve",
                        key: key.to_string(),
                        message: format!("{} is a symlink; refusing to follow", path.display()),
                    })
                }
                Ok(_) => {}
                // Missing components are fine: the object may be about to be created.
                Err(_) => break,
            }
        }
        Ok(self.root.join(key))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(format!("{:016x}.tmp", rand::random::<u64>()))
    }

    /// Moves a fully written and synced temp file into place at `dest`.
    fn commit(&self, tmp: &Path, dest: &Path) -> io::Result<()> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(tmp, dest)?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn write_from<R: Read>(&self, key: &str, dest: &Path, mut reader: R) -> Result<u64> {
        let tmp = self.tmp_path();
        let result = (|| -> io::Result<u64> {
            let mut file = File::create(&tmp)?;
            let n = io::copy(&mut reader, &mut file)?;
            file.sync_all()?;
            drop(file);
            self.commit(&tmp, dest)?;
            Ok(n)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            map_io(key, dest, e)
        })
    }

    fn list_blocking(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        let (dir_part, name_prefix) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let dir = self.root.join(dir_part);
        if delimiter == Some("/") {
            return self.list_one_level(&dir, dir_part, name_prefix);
        }
        let mut entries = Vec::new();
        walk_files(&dir, dir_part, dir_part.is_empty(), &mut entries)
            .map_err(|e| map_io(prefix, &dir, e))?;
        Ok(group_by_delimiter(entries, prefix, delimiter))
    }

    /// Fast path for the common `/` delimiter: one directory read instead of a tree walk.
    fn list_one_level(&self, dir: &Path, dir_part: &str, name_prefix: &str) -> Result<ListResult> {
        let mut out = ListResult::default();
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(BucketError::io(dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| BucketError::io(dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.starts_with(name_prefix) || (dir_part.is_empty() && name == TMP_DIR) {
                continue;
            }
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| BucketError::io(&path, e))?;
            if meta.is_dir() {
                // Empty directories are not objects on S3, so they must not show up as prefixes.
                if dir_has_file(&path).map_err(|e| BucketError::io(&path, e))? {
                    out.common_prefixes.push(format!("{dir_part}{name}/"));
                }
            } else if meta.is_file() {
                out.objects.push(ListEntry {
                    key: format!("{dir_part}{name}"),
                    size: meta.len(),
                    last_modified: meta.modified().ok(),
                });
            }
        }
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.common_prefixes.sort();
        Ok(out)
    }

    fn remove_empty_parents(&self, path: &Path) {
        let mut cur = path.parent();
        while let Some(dir) = cur {
            if dir == self.root || !dir.starts_with(&self.root) {
                break;
            }
            if fs::remove_dir(dir).is_err() {
                break;
            }
            cur = dir.parent();
        }
    }
}

/// A directory in the tree is only a prefix, never an object (as on S3), so reading one is
/// NotFound rather than an I/O error.
fn map_io(key: &str, path: &Path, e: io::Error) -> BucketError {
    if e.kind() == io::ErrorKind::NotFound || path.is_dir() {
        BucketError::NotFound {
            key: key.to_string(),
        }
    } else {
        BucketError::io(path, e)
    }
}

/// Temp files left by a crash mid-write. Only old ones are removed: another store instance in
/// this process (or another process) may be writing into the same root right now.
fn remove_stale_tmp(tmp_dir: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(3600);
    let Ok(rd) = fs::read_dir(tmp_dir) else {
        return;
    };
    for entry in rd.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn dir_has_file(dir: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_file() || (ft.is_dir() && dir_has_file(&entry.path())?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Collects every regular file under `dir` as a key starting with `key_prefix`.
fn walk_files(
    dir: &Path,
    key_prefix: &str,
    at_root: bool,
    out: &mut Vec<ListEntry>,
) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if at_root && name == TMP_DIR {
            continue;
        }
        let ft = entry.file_type()?;
        let key = format!("{key_prefix}{name}");
        if ft.is_dir() {
            walk_files(&entry.path(), &format!("{key}/"), false, out)?;
        } else if ft.is_file() {
            let meta = entry.metadata()?;
            out.push(ListEntry {
                key,
                size: meta.len(),
                last_modified: meta.modified().ok(),
            });
        }
    }
    Ok(())
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BucketError::Permanent {
            op: "blocking task",
            key: String::new(),
            message: e.to_string(),
        })?
}

/// Writes `data` to `path` atomically: temp file beside it, fsync, rename, fsync of the dir.
pub async fn write_file_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let path = path.to_path_buf();
    let data = data.to_vec();
    blocking(move || write_file_atomic_blocking(&path, &data)).await
}

pub fn write_file_atomic_blocking(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = sibling_tmp(path);
    let result = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        BucketError::io(path, e)
    })
}

/// Temp name in the same directory as `path` (so the final rename stays on one filesystem).
pub fn sibling_tmp(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{:08x}", rand::random::<u32>()))
}

#[async_trait]
impl ObjectStore for FilesystemStore {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.resolve(key)?;
        let key = key.to_string();
        blocking(move || {
            fs::read(&path)
                .map(Bytes::from)
                .map_err(|e| map_io(&key, &path, e))
        })
        .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        use std::io::{Seek, SeekFrom};
        let path = self.resolve(key)?;
        let key = key.to_string();
        blocking(move || {
            let mut f = File::open(&path).map_err(|e| map_io(&key, &path, e))?;
            let meta = f.metadata().map_err(|e| BucketError::io(&path, e))?;
            if !meta.is_file() {
                return Err(BucketError::NotFound { key });
            }
            let size = meta.len();
            if len == 0 {
                return Ok(Bytes::new());
            }
            if offset >= size {
                return Err(BucketError::InvalidRange {
                    key,
                    offset,
                    len,
                    size: Some(size),
                });
            }
            let n = len.min(size - offset);
            let mut buf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| BucketError::io(&path, e))?;
            f.take(n)
                .read_to_end(&mut buf)
                .map_err(|e| BucketError::io(&path, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<()> {
        let dest = self.resolve(key)?;
        let this = self.clone();
        let key = key.to_string();
        blocking(move || this.write_from(&key, &dest, &data[..]).map(|_| ())).await
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let dest = self.resolve(key)?;
        let this = self.clone();
        let key = key.to_string();
        let src = path.to_path_buf();
        blocking(move || {
            let f = File::open(&src).map_err(|e| BucketError::io(&src, e))?;
            this.write_from(&key, &dest, f)
        })
        .await
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListResult> {
        validate_prefix(prefix)?;
        let this = self.clone();
        let prefix = prefix.to_string();
        let delimiter = delimiter.map(str::to_string);
        blocking(move || this.list_blocking(&prefix, delimiter.as_deref())).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.resolve(key)?;
        blocking(move || match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                size: m.len(),
                last_modified: m.modified().ok(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BucketError::io(&path, e)),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.resolve(key)?;
        let this = self.clone();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => {
                this.remove_empty_parents(&path);
                Ok(())
            }
            // A directory is a prefix, not an object: nothing to delete, as on S3.
            Err(e) if e.kind() == io::ErrorKind::NotFound || path.is_dir() => Ok(()),
            Err(e) => Err(BucketError::io(&path, e)),
        })
        .await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        let src = self.resolve(key)?;
        let dest = path.to_path_buf();
        let key = key.to_string();
        blocking(move || {
            if src.is_dir() {
                return Err(BucketError::NotFound { key });
            }
            let mut from = File::open(&src).map_err(|e| map_io(&key, &src, e))?;
            let tmp = sibling_tmp(&dest);
            let result = (|| -> io::Result<u64> {
                let mut to = File::create(&tmp)?;
                let n = io::copy(&mut from, &mut to)?;
                to.sync_all()?;
                fs::rename(&tmp, &dest)?;
                if let Some(parent) = dest.parent() {
                    sync_dir(parent)?;
                }
                Ok(n)
            })();
            result.map_err(|e| {
                let _ = fs::remove_file(&tmp);
                BucketError::io(&dest, e)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tmp_dir_is_hidden_and_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(dir.path()).unwrap();
        store
            .put_bytes("a/b", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let r = store.list("", Some("/")).await.unwrap();
        assert_eq!(r.common_prefixes, ["a/"]);
        assert!(r.objects.is_empty());
        let r = store.list("", None).await.unwrap();
        assert_eq!(r.objects.len(), 1);
        let err = store.get(".strata-tmp/x").await.unwrap_err();
        assert!(matches!(err, BucketError::InvalidKey { .. }));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_cannot_escape_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(dir.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = store.get("link/secret").await.unwrap_err();
        assert!(matches!(err, BucketError::Permanent { .. }), "{err}");
        let err = store
            .put_bytes("link/new", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(err, BucketError::Permanent { .. }), "{err}");
        assert!(!outside.path().join("new").exists());
    }

    #[tokio::test]
    async fn delete_prunes_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::new(dir.path()).unwrap();
        store
            .put_bytes("x/y/z", Bytes::from_static(b"1"))
            .await
            .unwrap();
        store.delete("x/y/z").await.unwrap();
        assert!(!dir.path().join("x").exists());
        assert!(store
            .list("", Some("/"))
            .await
            .unwrap()
            .common_prefixes
            .is_empty());
    }
}
