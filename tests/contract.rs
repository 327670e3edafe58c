//! One contract suite run against every backend: memory, filesystem and a real S3 server
//! (s3s-fs in-process). Each test body takes a store and checks the `ObjectStore` contract.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use strata::storage::bucket::{BucketError, ObjectStore};

type Store = Arc<dyn ObjectStore>;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

async fn put_get_overwrite(s: Store) {
    s.put_bytes("a/b/c.txt", b("hello")).await.unwrap();
    assert_eq!(&s.get("a/b/c.txt").await.unwrap()[..], b"hello");
    s.put_bytes("a/b/c.txt", b("world!")).await.unwrap();
    assert_eq!(&s.get("a/b/c.txt").await.unwrap()[..], b"world!");
    let meta = s.head("a/b/c.txt").await.unwrap().expect("exists");
    assert_eq!(meta.size, 6);
    assert!(s.exists("a/b/c.txt").await.unwrap());
    s.put_bytes("empty", Bytes::new()).await.unwrap();
    assert!(s.get("empty").await.unwrap().is_empty());
    assert_eq!(s.head("empty").await.unwrap().expect("exists").size, 0);
}

async fn unusual_key_characters(s: Store) {
    let keys = [
        "sp ace/file name.json",
        "plus+eq=amp&/q?x#y",
        "pct%20lit/ünïcödé-🦀",
        "tilde~/star*(paren)",
    ];
    for (i, k) in keys.iter().enumerate() {
        s.put_bytes(k, Bytes::from(vec![i as u8; i + 1]))
            .await
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(s.get(k).await.unwrap().len(), i + 1, "{k}");
        assert_eq!(s.head(k).await.unwrap().unwrap().size, i as u64 + 1, "{k}");
    }
    let all = s.list("", None).await.unwrap();
    let mut got: Vec<_> = all.objects.iter().map(|o| o.key.clone()).collect();
    got.sort();
    let mut want: Vec<_> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    let r = s.list("sp ace/", Some("/")).await.unwrap();
    assert_eq!(r.objects.len(), 1);
    assert_eq!(r.objects[0].key, "sp ace/file name.json");
    for k in keys {
        s.delete(k).await.unwrap();
        assert!(!s.exists(k).await.unwrap(), "{k}");
    }
}

async fn missing_is_not_found(s: Store) {
    assert!(s.get("nope/x").await.unwrap_err().is_not_found());
    assert!(s
        .get_range("nope/x", 0, 10)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(s
        .get_range("nope/x", 0, 0)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(s.head("nope/x").await.unwrap(), None);
    assert!(!s.exists("nope/x").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let err = s
        .get_to_file("nope/x", &dir.path().join("out"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!dir.path().join("out").exists());
    // A prefix of existing keys is not an object. (s3s-fs, our test S3 server, answers 500
    // for a key that is one of its directories, where real S3 answers 404; so only the
    // local backends are held to it here.)
    s.put_bytes("pre/fix/obj", b("x")).await.unwrap();
    let dir_keys: &[&str] = if s.backend() == "s3" {
        &[]
    } else {
        &["pre", "pre/fix"]
    };
    for &k in dir_keys {
        let e = s.get(k).await.unwrap_err();
        assert!(e.is_not_found(), "{k}: {e}");
        assert!(
            s.get_range(k, 0, 1).await.unwrap_err().is_not_found(),
            "{k}"
        );
        assert_eq!(s.head(k).await.unwrap(), None, "{k}");
        let err = s.get_to_file(k, &dir.path().join("out")).await.unwrap_err();
        assert!(err.is_not_found(), "{k}: {err}");
        s.delete(k).await.unwrap();
    }
    assert!(s.exists("pre/fix/obj").await.unwrap());
    let r = s.list("nope/", Some("/")).await.unwrap();
    assert!(r.objects.is_empty() && r.common_prefixes.is_empty());
}

async fn ranges(s: Store) {
    s.put_bytes("r", b("0123456789")).await.unwrap();
    assert_eq!(&s.get_range("r", 0, 1).await.unwrap()[..], b"0");
    assert_eq!(&s.get_range("r", 2, 3).await.unwrap()[..], b"234");
    assert_eq!(&s.get_range("r", 9, 1).await.unwrap()[..], b"9");
    // Clamped at the end, also for lengths that would overflow u64.
    assert_eq!(&s.get_range("r", 7, 100).await.unwrap()[..], b"789");
    assert_eq!(&s.get_range("r", 5, u64::MAX).await.unwrap()[..], b"56789");
    assert!(s.get_range("r", 3, 0).await.unwrap().is_empty());
    for offset in [10, 11, u64::MAX] {
        let err = s.get_range("r", offset, 5).await.unwrap_err();
        assert!(
            matches!(err, BucketError::InvalidRange { .. }),
            "{offset}: {err}"
        );
        assert!(!err.is_transient());
    }
}

async fn list_with_delimiter(s: Store) {
    for k in [
        "01AAA/meta.json",
        "01AAA/chunks/000001",
        "01AAA/index",
        "01BBB/index",
        "debug/metas/x.json",
        "top.json",
        "topaz",
    ] {
        s.put_bytes(k, b("x")).await.unwrap();
    }
    let r = s.list("", Some("/")).await.unwrap();
    assert_eq!(r.common_prefixes, ["01AAA/", "01BBB/", "debug/"]);
    let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["top.json", "topaz"]);
    assert!(r.objects.iter().all(|o| o.size == 1));

    let r = s.list("01AAA/", Some("/")).await.unwrap();
    assert_eq!(r.common_prefixes, ["01AAA/chunks/"]);
    let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["01AAA/index", "01AAA/meta.json"]);

    let r = s.list("01AAA/", None).await.unwrap();
    let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        ["01AAA/chunks/000001", "01AAA/index", "01AAA/meta.json"]
    );
    assert!(r.common_prefixes.is_empty());

    // A prefix that is not a directory boundary.
    let r = s.list("top", Some("/")).await.unwrap();
    let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["top.json", "topaz"]);
    let r = s.list("01", Some("/")).await.unwrap();
    assert_eq!(r.common_prefixes, ["01AAA/", "01BBB/"]);
    assert!(r.objects.is_empty());

    let all = s.list("", None).await.unwrap();
    assert_eq!(all.objects.len(), 7);
    let mut sorted: Vec<_> = all.objects.iter().map(|o| o.key.clone()).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        all.objects
            .iter()
            .map(|o| o.key.clone())
            .collect::<Vec<_>>()
    );
}

async fn list_paginates(s: Store) {
    // > 1000 keys so S3 must return several pages.
    let n = 1203;
    futures::stream::iter(0..n)
        .map(|i| {
            let s = s.clone();
            async move { s.put_bytes(&format!("many/{i:05}"), b("v")).await }
        })
        .buffer_unordered(16)
        .for_each(|r| async move { r.unwrap() })
        .await;
    for i in 0..1050 {
        if i % 50 == 0 {
            s.put_bytes(&format!("dirs/d{i:05}/x"), b("v"))
                .await
                .unwrap();
        }
    }
    let r = s.list("many/", None).await.unwrap();
    assert_eq!(r.objects.len(), n);
    assert_eq!(r.objects[0].key, "many/00000");
    assert_eq!(r.objects[n - 1].key, format!("many/{:05}", n - 1));
    let r = s.list("many/", Some("/")).await.unwrap();
    assert_eq!(r.objects.len(), n);
    let r = s.list("", Some("/")).await.unwrap();
    assert_eq!(r.common_prefixes, ["dirs/", "many/"]);
    let r = s.list("dirs/", Some("/")).await.unwrap();
    assert_eq!(r.common_prefixes.len(), 21);
}

async fn delete_is_idempotent(s: Store) {
    s.put_bytes("d/x", b("1")).await.unwrap();
    s.put_bytes("d/y", b("2")).await.unwrap();
    s.delete("d/x").await.unwrap();
    s.delete("d/x").await.unwrap();
    s.delete("never/existed").await.unwrap();
    assert!(s.get("d/x").await.unwrap_err().is_not_found());
    assert_eq!(&s.get("d/y").await.unwrap()[..], b"2");
    let r = s.list("d/", None).await.unwrap();
    assert_eq!(r.objects.len(), 1);
    s.delete("d/y").await.unwrap();
    let r = s.list("", Some("/")).await.unwrap();
    assert!(r.common_prefixes.is_empty(), "{:?}", r.common_prefixes);
}

async fn invalid_keys_are_refused(s: Store) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("f");
    std::fs::write(&local, b"x").unwrap();
    for key in [
        "", "/abs", "a/../b", "..", "a/..", "a\0b", "a\\b", "a//b", "a/",
    ] {
        let is_invalid = |e: BucketError| matches!(e, BucketError::InvalidKey { .. });
        assert!(is_invalid(s.get(key).await.unwrap_err()), "get {key:?}");
        assert!(
            is_invalid(s.get_range(key, 0, 1).await.unwrap_err()),
            "range {key:?}"
        );
        assert!(
            is_invalid(s.put_bytes(key, b("x")).await.unwrap_err()),
            "put {key:?}"
        );
        assert!(
            is_invalid(s.put_file(key, &local).await.unwrap_err()),
            "put_file {key:?}"
        );
        assert!(is_invalid(s.head(key).await.unwrap_err()), "head {key:?}");
        assert!(
            is_invalid(s.exists(key).await.unwrap_err()),
            "exists {key:?}"
        );
        assert!(
            is_invalid(s.delete(key).await.unwrap_err()),
            "delete {key:?}"
        );
        let out = dir.path().join("out");
        assert!(
            is_invalid(s.get_to_file(key, &out).await.unwrap_err()),
            "get_to_file {key:?}"
        );
    }
    assert!(matches!(
        s.list("../", None).await.unwrap_err(),
        BucketError::InvalidKey { .. }
    ));
    // Nothing was created by any of the refused calls.
    assert!(s.list("", None).await.unwrap().objects.is_empty());
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7919) % 251) as u8).collect()
}

async fn files_and_multipart(s: Store) {
    let dir = tempfile::tempdir().unwrap();
    // 12 MiB + 3 bytes: above the multipart threshold, last part short.
    let big_len = 12 * 1024 * 1024 + 3;
    let big = pattern(big_len);
    let src = dir.path().join("big");
    std::fs::write(&src, &big).unwrap();
    assert_eq!(
        s.put_file("blk/chunks/000001", &src).await.unwrap(),
        big_len as u64
    );
    assert_eq!(
        s.head("blk/chunks/000001").await.unwrap().unwrap().size,
        big_len as u64
    );
    // A range across the 8 MiB part boundary.
    let off = 8 * 1024 * 1024 - 10;
    let got = s
        .get_range("blk/chunks/000001", off as u64, 20)
        .await
        .unwrap();
    assert_eq!(&got[..], &big[off..off + 20]);
    let out = dir.path().join("out");
    assert_eq!(
        s.get_to_file("blk/chunks/000001", &out).await.unwrap(),
        big_len as u64
    );
    assert!(
        std::fs::read(&out).unwrap() == big,
        "downloaded content differs"
    );

    // Exactly one 8 MiB part, and exactly two: the part-boundary edge cases of the crate.
    for len in [8 * 1024 * 1024, 16 * 1024 * 1024] {
        let data = pattern(len);
        let p = dir.path().join(format!("exact{len}"));
        std::fs::write(&p, &data).unwrap();
        let key = format!("blk/exact{len}");
        assert_eq!(s.put_file(&key, &p).await.unwrap(), len as u64);
        assert_eq!(s.head(&key).await.unwrap().unwrap().size, len as u64);
        let tail = s.get_range(&key, len as u64 - 5, 100).await.unwrap();
        assert_eq!(&tail[..], &data[len - 5..]);
    }

    let small = dir.path().join("small");
    std::fs::write(&small, b"tiny").unwrap();
    assert_eq!(s.put_file("blk/index", &small).await.unwrap(), 4);
    assert_eq!(&s.get("blk/index").await.unwrap()[..], b"tiny");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(s.put_file("blk/tombstones", &empty).await.unwrap(), 0);
    assert!(s.get("blk/tombstones").await.unwrap().is_empty());

    let err = s
        .put_file("blk/x", &dir.path().join("does-not-exist"))
        .await
        .unwrap_err();
    assert!(matches!(err, BucketError::Io { .. }), "{err}");
    assert!(!s.exists("blk/x").await.unwrap());
}

macro_rules! contract_suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fx = strata_testing::bucket::$backend().await;
                    super::$test(fx.store.clone()).await;
                    drop(fx);
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        contract_suite!(memory: $($test),*);
        contract_suite!(filesystem: $($test),*);
        contract_suite!(s3: $($test),*);
    };
}

all_backends!(
    put_get_overwrite,
    unusual_key_characters,
    missing_is_not_found,
    ranges,
    list_with_delimiter,
    list_paginates,
    delete_is_idempotent,
    invalid_keys_are_refused,
    files_and_multipart,
);

mod s3_only {
    use strata::storage::bucket::s3::S3Store;
    use strata::storage::bucket::{BucketError, ObjectStore};
    use strata_testing::{free_port, S3Server};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_secret_is_permanent_403() {
        let server = S3Server::start();
        let mut cfg = server.config();
        cfg.secret_key = Some("not-the-secret".into());
        let store = S3Store::new(&cfg).unwrap();
        let err = store
            .put_bytes("k", bytes::Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        match &err {
            BucketError::Permanent { message, .. } => {
                assert!(message.contains("403"), "{message}")
            }
            other => panic!("expected Permanent, got {other}"),
        }
        assert!(!err.is_transient());
        let err = store.get("k").await.unwrap_err();
        assert!(matches!(err, BucketError::Permanent { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_server_is_transient_and_restart_keeps_data() {
        let mut server = S3Server::start();
        let store = server.store();
        store
            .put_bytes("k", bytes::Bytes::from_static(b"v"))
            .await
            .unwrap();
        server.stop().await;
        let err = store.get("k").await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        server.restart().await;
        assert_eq!(&store.get("k").await.unwrap()[..], b"v");
    }

    #[tokio::test]
    async fn invalid_key_needs_no_server() {
        // Nothing listens here: any request would fail as Transient, not InvalidKey.
        let mut cfg = S3Server::start().config();
        cfg.endpoint = format!("http://127.0.0.1:{}", free_port());
        let store = S3Store::new(&cfg).unwrap();
        let err = store.get("/etc/passwd").await.unwrap_err();
        assert!(matches!(err, BucketError::InvalidKey { .. }), "{err}");
        let err = store.get("ok/key").await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
