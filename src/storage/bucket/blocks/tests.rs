//! Unit tests of the block catalogue over the in-memory bucket: listing with partial uploads,
//! the meta and mark parsing rules (garbage gives an error naming the block and file, never a
//! panic), marks written once, and the upload and delete orders, observed through a store that
//! records every write and can fail chosen ones.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use proptest::prelude::*;
use ulid::Ulid;

use super::*;
use crate::storage::bucket::memory::MemoryStore;
use crate::storage::bucket::{ListResult, ObjectMeta};

type FailWhen = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A memory bucket that logs every successful put and delete as `"put <key>"` /
/// `"delete <key>"`, in order, and fails the operations `fail(op, key)` selects.
#[derive(Default)]
struct Recorder {
    inner: MemoryStore,
    log: Mutex<Vec<String>>,
    fail: Mutex<Option<FailWhen>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn fail_when(&self, pred: impl Fn(&str, &str) -> bool + Send + Sync + 'static) {
        *self.fail.lock().unwrap() = Some(Box::new(pred));
    }

    fn check(&self, op: &'static str, key: &str) -> crate::storage::bucket::Result<()> {
        if self
            .fail
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|f| f(op, key))
        {
            return Err(BucketError::Transient {
                op,
                key: key.to_string(),
                message: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn record(&self, op: &str, key: &str) {
        self.log.lock().unwrap().push(format!("{op} {key}"));
    }
}

#[async_trait]
impl ObjectStore for Recorder {
    fn backend(&self) -> &'static str {
        "recorder"
    }
    async fn get(&self, key: &str) -> crate::storage::bucket::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> crate::storage::bucket::Result<Bytes> {
        self.inner.get_range(key, offset, len).await
    }
    async fn put_bytes(&self, key: &str, data: Bytes) -> crate::storage::bucket::Result<()> {
        self.check("put", key)?;
        self.inner.put_bytes(key, data).await?;
        self.record("put", key);
        Ok(())
    }
    async fn put_file(&self, key: &str, path: &Path) -> crate::storage::bucket::Result<u64> {
        self.check("put", key)?;
        let n = self.inner.put_file(key, path).await?;
        self.record("put", key);
        Ok(n)
    }
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> crate::storage::bucket::Result<ListResult> {
        self.inner.list(prefix, delimiter).await
    }
    async fn head(&self, key: &str) -> crate::storage::bucket::Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> crate::storage::bucket::Result<()> {
        self.check("delete", key)?;
        self.inner.delete(key).await?;
        self.record("delete", key);
        Ok(())
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> crate::storage::bucket::Result<u64> {
        self.inner.get_to_file(key, path).await
    }
}

async fn put(store: &dyn ObjectStore, key: &str, data: &[u8]) {
    store
        .put_bytes(key, Bytes::copy_from_slice(data))
        .await
        .unwrap();
}

fn meta_json(u: Ulid) -> Vec<u8> {
    BlockMeta::new(u, 0, 7_200_000).to_json().unwrap()
}

/// A complete block `u` with both marks, in the memory bucket.
async fn full_block(store: &dyn ObjectStore, u: Ulid) {
    put(store, &object_key(u, "chunks/000002"), &[0; 3]).await;
    put(store, &object_key(u, "chunks/000001"), &[0; 5]).await;
    put(store, &object_key(u, INDEX_FILE), &[0; 10]).await;
    put(store, &object_key(u, TOMBSTONES_FILE), &[0; 1]).await;
    put(store, &object_key(u, META_FILE), &meta_json(u)).await;
    put(store, &object_key(u, NO_COMPACT_MARK_FILE), b"{}").await;
    put(store, &object_key(u, DELETION_MARK_FILE), b"{}").await;
}

fn secs(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

#[tokio::test]
async fn listing_groups_objects_per_block_and_finds_partial_uploads() {
    let store = MemoryStore::new();
    let (a, b) = (Ulid::new(), Ulid::new());
    full_block(&store, a).await;
    put(&store, &object_key(b, INDEX_FILE), &[0; 4]).await;
    put(&store, &object_key(b, "chunks/000001"), &[0; 2]).await;
    put(&store, "debug/metas/x.json", b"{}").await;
    put(&store, "top-level-object", b"x").await;
    put(&store, "not-a-ulid/meta.json", b"{}").await;

    let dirs = list_blocks(&store).await.unwrap();
    assert_eq!(dirs.keys().copied().collect::<Vec<_>>(), {
        let mut v = vec![a, b];
        v.sort();
        v
    });
    let da = &dirs[&a];
    assert!(da.has_meta && da.has_deletion_mark && da.has_no_compact_mark);
    assert!(!da.is_partial());
    assert_eq!(da.index_size, Some(10));
    let segs: Vec<(&str, u64)> = da
        .segments
        .iter()
        .map(|s| (s.key.as_str(), s.size))
        .collect();
    assert_eq!(
        segs,
        [
            (object_key(a, "chunks/000001").as_str(), 5),
            (object_key(a, "chunks/000002").as_str(), 3)
        ]
    );
    assert_eq!(da.objects.len(), 7);
    assert!(da.objects.windows(2).all(|w| w[0].key < w[1].key));

    let db = &dirs[&b];
    assert!(db.is_partial());
    assert!(!db.has_deletion_mark && !db.has_no_compact_mark);
    assert_eq!(db.index_size, Some(4));
    assert_eq!(db.segments.len(), 1);
    assert!(block_exists(&store, a).await.unwrap());
    assert!(!block_exists(&store, b).await.unwrap());
}

#[tokio::test]
async fn a_partial_upload_is_abandoned_only_after_the_threshold() {
    let store = MemoryStore::new();
    let (a, b) = (Ulid::new(), Ulid::new());
    put(&store, &object_key(a, "chunks/000001"), b"x").await;
    full_block(&store, b).await;
    let dirs = list_blocks(&store).await.unwrap();
    let now = SystemTime::now();
    let later = now + PARTIAL_UPLOAD_THRESHOLD + Duration::from_secs(60);
    assert!(!dirs[&a].is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, now));
    assert!(dirs[&a].is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, later));
    assert!(!dirs[&b].is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, later));

    // Without modification times the ULID's time is the age.
    let old = Ulid::from_datetime(now - PARTIAL_UPLOAD_THRESHOLD - Duration::from_secs(60));
    let mut dir = BlockDir::new(old);
    dir.objects.push(ListEntry {
        key: object_key(old, INDEX_FILE),
        size: 1,
        last_modified: None,
    });
    assert!(dir.is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, now));
    assert!(!BlockDir::new(Ulid::new()).is_abandoned_partial(PARTIAL_UPLOAD_THRESHOLD, now));
}

#[tokio::test]
async fn meta_json_is_validated_and_errors_name_block_and_file() {
    let u = Ulid::new();
    assert_eq!(parse_meta(&meta_json(u), u).unwrap().ulid, u);

    let mut v2 = BlockMeta::new(u, 0, 1);
    v2.version = 2;
    let mut thanos2 = BlockMeta::new(u, 0, 1);
    thanos2.thanos = Some(crate::storage::block::ThanosMeta {
        version: 2,
        ..Default::default()
    });
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "key must be a string"),
        (meta_json(Ulid::new()), "but lives under"),
        (v2.to_json().unwrap(), "unsupported meta.json version 2"),
        (
            thanos2.to_json().unwrap(),
            "unsupported thanos meta version 2",
        ),
        (
            BlockMeta::new(u, 5, 1).to_json().unwrap(),
            "minTime 5 after maxTime 1",
        ),
    ];
    for (bytes, want) in cases {
        let err = parse_meta(&bytes, u).unwrap_err();
        assert!(
            matches!(&err, BlocksError::Invalid { ulid, file, .. } if *ulid == u && *file == META_FILE),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{u}/meta.json: ")), "{msg}");
        assert!(msg.contains(want), "{msg} lacks {want:?}");
    }

    let store = MemoryStore::new();
    assert!(matches!(
        read_meta(&store, u).await,
        Err(BlocksError::Bucket(BucketError::NotFound { .. }))
    ));
    assert!(read_meta_json(&store, u).await.unwrap().is_none());
    put(&store, &object_key(u, META_FILE), b"{\"ulid\": 1, \"x\": [").await;
    assert!(matches!(
        read_meta_json(&store, u).await,
        Err(BlocksError::Invalid {
            file: META_FILE,
            ..
        })
    ));
    put(&store, &object_key(u, META_FILE), b"{\"kept\": true}").await;
    let raw = read_meta_json(&store, u).await.unwrap().unwrap();
    assert_eq!(raw["kept"], true, "the stored JSON, not a model of it");
}

#[test]
fn marks_parse_thanos_json() {
    let u = Ulid::new();
    let d =
        format!(r#"{{"id":"{u}","version":1,"details":"retention","deletion_time":1700000000}}"#);
    let m = parse_deletion_mark(d.as_bytes(), u).unwrap();
    assert_eq!(
        m,
        DeletionMark {
            id: u,
            version: 1,
            details: "retention".into(),
            deletion_time: 1_700_000_000
        }
    );
    let n = format!(
        r#"{{"id":"{u}","version":1,"no_compact_time":1700000001,"reason":"index-size-exceeding"}}"#
    );
    let m = parse_no_compact_mark(n.as_bytes(), u).unwrap();
    assert_eq!(m.reason, NoCompactReason::IndexSizeExceeding);
    assert_eq!(m.no_compact_time, 1_700_000_001);
    assert!(m.details.is_empty());
    for (text, reason) in [
        ("manual", NoCompactReason::Manual),
        (
            "block-index-out-of-order-chunk",
            NoCompactReason::OutOfOrderChunks,
        ),
        (
            "downsample-vertical-compaction",
            NoCompactReason::DownsampleVerticalCompaction,
        ),
        (
            "from-the-future",
            NoCompactReason::Other("from-the-future".into()),
        ),
    ] {
        let j = format!(r#"{{"id":"{u}","version":1,"no_compact_time":1,"reason":"{text}"}}"#);
        let m = parse_no_compact_mark(j.as_bytes(), u).unwrap();
        assert_eq!(m.reason, reason);
        assert_eq!(m.reason.as_str(), text);
    }
    // Absent fields read as zero, as in Go; only the version is checked, as Thanos does.
    let m = parse_deletion_mark(br#"{"version":1}"#, u).unwrap();
    assert_eq!((m.id, m.deletion_time), (Ulid::nil(), 0));
}

#[test]
fn garbage_marks_are_errors_naming_block_and_file() {
    let u = Ulid::new();
    let garbage: [&[u8]; 8] = [
        b"",
        b"{not json",
        b"[]",
        b"null",
        br#"{"deletion_time":5}"#,
        br#"{"version":2,"deletion_time":5,"no_compact_time":5}"#,
        br#"{"id":"not-a-ulid","version":1}"#,
        br#"{"version":1,"deletion_time":"yesterday","no_compact_time":"yesterday"}"#,
    ];
    for bytes in garbage {
        let shown = String::from_utf8_lossy(bytes);
        let err = parse_deletion_mark(bytes, u).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{u}/deletion-mark.json: ")),
            "{shown}: {err}"
        );
        let err = parse_no_compact_mark(bytes, u).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{u}/no-compact-mark.json: ")),
            "{shown}: {err}"
        );
    }
    let err = parse_deletion_mark(br#"{"version":2}"#, u).unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported version 2, expected 1"),
        "{err}"
    );
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let u = Ulid::nil();
        if let Err(e) = parse_meta(&bytes, u) {
            let named = matches!(e, BlocksError::Invalid { file: META_FILE, .. });
            prop_assert!(named, "{:?}", e);
        }
        if let Err(e) = parse_deletion_mark(&bytes, u) {
            let named = matches!(e, BlocksError::Invalid { file: DELETION_MARK_FILE, .. });
            prop_assert!(named, "{:?}", e);
        }
        if let Err(e) = parse_no_compact_mark(&bytes, u) {
            let named = matches!(e, BlocksError::Invalid { file: NO_COMPACT_MARK_FILE, .. });
            prop_assert!(named, "{:?}", e);
        }
    }
}

#[tokio::test]
async fn marks_are_written_once_in_thanos_json() {
    let store = MemoryStore::new();
    let u = Ulid::new();
    assert!(read_deletion_mark(&store, u).await.unwrap().is_none());
    assert!(write_deletion_mark(&store, u, "", secs(1_700_000_000))
        .await
        .unwrap());
    let raw = store.get(&object_key(u, DELETION_MARK_FILE)).await.unwrap();
    assert_eq!(
        std::str::from_utf8(&raw).unwrap(),
        format!(r#"{{"id":"{u}","version":1,"deletion_time":1700000000}}"#)
    );
    // Marking again keeps the first mark, so the delete delay does not restart.
    assert!(
        !write_deletion_mark(&store, u, "again", secs(1_800_000_000))
            .await
            .unwrap()
    );
    let m = read_deletion_mark(&store, u).await.unwrap().unwrap();
    assert_eq!((m.deletion_time, m.details.as_str()), (1_700_000_000, ""));

    assert!(read_no_compact_mark(&store, u).await.unwrap().is_none());
    assert!(write_no_compact_mark(
        &store,
        u,
        NoCompactReason::IndexSizeExceeding,
        "index 70GiB",
        secs(1_700_000_001)
    )
    .await
    .unwrap());
    let raw = store
        .get(&object_key(u, NO_COMPACT_MARK_FILE))
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&raw).unwrap(),
        format!(
            r#"{{"id":"{u}","version":1,"details":"index 70GiB","no_compact_time":1700000001,"reason":"index-size-exceeding"}}"#
        )
    );
    assert!(
        !write_no_compact_mark(&store, u, NoCompactReason::Manual, "", secs(1))
            .await
            .unwrap()
    );
    let m = read_no_compact_mark(&store, u).await.unwrap().unwrap();
    assert_eq!(m.reason, NoCompactReason::IndexSizeExceeding);

    // no-downsample-mark.json: Thanos's `NoDownsampleMark` shape, written once.
    assert!(read_no_downsample_mark(&store, u).await.unwrap().is_none());
    assert!(write_no_downsample_mark(
        &store,
        u,
        NoCompactReason::Manual,
        "keep raw",
        secs(1_700_000_002)
    )
    .await
    .unwrap());
    let raw = store
        .get(&object_key(u, NO_DOWNSAMPLE_MARK_FILE))
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&raw).unwrap(),
        format!(
            r#"{{"id":"{u}","version":1,"details":"keep raw","no_downsample_time":1700000002,"reason":"manual"}}"#
        )
    );
    assert!(
        !write_no_downsample_mark(&store, u, NoCompactReason::Other("x".into()), "", secs(1))
            .await
            .unwrap()
    );
    let m = read_no_downsample_mark(&store, u).await.unwrap().unwrap();
    assert_eq!(
        (m.no_downsample_time, m.reason),
        (1_700_000_002, NoCompactReason::Manual)
    );
    // A mark without a reason (older Thanos) reads with the default one, `manual`; the
    // version is still checked.
    let bare = format!(r#"{{"id":"{u}","version":1,"no_downsample_time":5}}"#);
    let m = parse_no_downsample_mark(bare.as_bytes(), u).unwrap();
    assert_eq!(
        (m.no_downsample_time, m.reason),
        (5, NoCompactReason::Manual)
    );
    assert!(parse_no_downsample_mark(br#"{"version":2}"#, u).is_err());

    put(&store, &object_key(u, DELETION_MARK_FILE), b"{\"version\":").await;
    assert!(matches!(
        read_deletion_mark(&store, u).await,
        Err(BlocksError::Invalid {
            file: DELETION_MARK_FILE,
            ..
        })
    ));
}

#[test]
fn a_deletion_mark_is_due_once_the_delay_has_passed() {
    let m = DeletionMark::new(Ulid::new(), "", secs(10_000));
    let delay = Duration::from_secs(3600);
    assert!(!m.is_due(delay, secs(10_000)));
    assert!(!m.is_due(delay, secs(13_599)));
    assert!(m.is_due(delay, secs(13_600)));
    assert!(m.is_due(Duration::ZERO, secs(10_000)));
    assert!(!m.is_due(delay, UNIX_EPOCH - Duration::from_secs(1)));
}

/// A local block directory with chunks, index and a stale local meta.json.
fn local_block(dir: &Path) -> Vec<BlockFile> {
    std::fs::create_dir_all(dir.join(CHUNKS_DIR)).unwrap();
    let files = [
        ("chunks/000001", 5usize),
        ("chunks/000002", 3),
        (INDEX_FILE, 10),
        (META_FILE, 2),
    ];
    for (rel, size) in files {
        std::fs::write(dir.join(rel), vec![7u8; size]).unwrap();
    }
    files
        .iter()
        .map(|(rel, size)| BlockFile {
            rel_path: rel.to_string(),
            size: *size as u64,
        })
        .collect()
}

#[tokio::test]
async fn upload_puts_meta_json_last() {
    let tmp = tempfile::tempdir().unwrap();
    let files = local_block(tmp.path());
    let store = Recorder::default();
    let u = Ulid::new();
    let mut sent = Vec::new();
    let meta_built_after = Mutex::new(Vec::new());
    let bytes = upload(
        &store,
        u,
        tmp.path(),
        &files,
        || {
            *meta_built_after.lock().unwrap() = store.log();
            Ok::<_, BucketError>(Bytes::from(meta_json(u)))
        },
        &mut |rel, n| sent.push((rel.to_string(), n)),
    )
    .await
    .unwrap();
    let want: Vec<String> = ["chunks/000001", "chunks/000002", INDEX_FILE, META_FILE]
        .iter()
        .map(|f| format!("put {}", object_key(u, f)))
        .collect();
    assert_eq!(
        store.log(),
        want,
        "data files in order, meta.json last and once"
    );
    assert_eq!(
        *meta_built_after.lock().unwrap(),
        want[..3],
        "meta.json is built once every data file is in"
    );
    let meta_len = meta_json(u).len() as u64;
    assert_eq!(bytes, 5 + 3 + 10 + meta_len);
    assert_eq!(sent.last(), Some(&(META_FILE.to_string(), meta_len)));
    assert_eq!(sent.len(), 4);
    assert_eq!(
        store.inner.get(&object_key(u, META_FILE)).await.unwrap(),
        Bytes::from(meta_json(u)),
        "the body built, not the local meta.json"
    );
}

#[tokio::test]
async fn a_failed_upload_leaves_a_partial_block() {
    let tmp = tempfile::tempdir().unwrap();
    let files = local_block(tmp.path());
    let store = Recorder::default();
    let u = Ulid::new();
    store.fail_when(|op, key| op == "put" && key.ends_with("/index"));
    let built = Mutex::new(false);
    let err = upload(
        &store,
        u,
        tmp.path(),
        &files,
        || {
            *built.lock().unwrap() = true;
            Ok::<_, BucketError>(Bytes::from(meta_json(u)))
        },
        &mut |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!*built.lock().unwrap());
    assert_eq!(
        store.log(),
        [
            format!("put {}", object_key(u, "chunks/000001")),
            format!("put {}", object_key(u, "chunks/000002"))
        ],
        "nothing is sent after the failed put"
    );
    let dirs = list_blocks(&store).await.unwrap();
    assert!(dirs[&u].is_partial());
    assert!(!block_exists(&store, u).await.unwrap());
}

#[tokio::test]
async fn delete_removes_meta_json_first_and_the_deletion_mark_last() {
    let store = Recorder::default();
    let (u, other) = (Ulid::new(), Ulid::new());
    full_block(&store, u).await;
    full_block(&store, other).await;
    let before = store.log().len();
    delete_block(&store, u).await.unwrap();
    let deletes: Vec<String> = store.log()[before..].to_vec();
    assert_eq!(deletes.len(), 7, "{deletes:?}");
    assert_eq!(deletes[0], format!("delete {}", object_key(u, META_FILE)));
    assert_eq!(
        deletes[6],
        format!("delete {}", object_key(u, DELETION_MARK_FILE))
    );
    let mut middle: Vec<&str> = deletes[1..6].iter().map(String::as_str).collect();
    middle.sort_unstable();
    let mut want: Vec<String> = [
        "chunks/000001",
        "chunks/000002",
        INDEX_FILE,
        NO_COMPACT_MARK_FILE,
        TOMBSTONES_FILE,
    ]
    .iter()
    .map(|f| format!("delete {}", object_key(u, f)))
    .collect();
    want.sort_unstable();
    assert_eq!(middle, want);
    let dirs = list_blocks(&store).await.unwrap();
    assert!(!dirs.contains_key(&u));
    assert_eq!(dirs[&other].objects.len(), 7, "other blocks are untouched");
    // Deleting what is already gone succeeds.
    delete_block(&store, u).await.unwrap();
}

#[tokio::test]
async fn an_interrupted_delete_leaves_a_marked_partial_block() {
    let store = Recorder::default();
    let u = Ulid::new();
    full_block(&store, u).await;
    store.fail_when(|op, key| op == "delete" && key.ends_with("/index"));
    assert!(delete_block(&store, u).await.is_err());
    let dirs = list_blocks(&store).await.unwrap();
    let d = &dirs[&u];
    assert!(d.is_partial(), "readers stopped seeing the block first");
    assert!(
        d.has_deletion_mark,
        "the mark stays until everything else is gone"
    );
    *store.fail.lock().unwrap() = None;
    delete_block(&store, u).await.unwrap();
    assert!(list_blocks(&store).await.unwrap().is_empty());
}
