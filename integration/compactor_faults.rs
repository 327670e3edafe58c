//! The compactor when things go wrong, through the real binary and a real S3 server (s3s-fs):
//! SIGKILL in the middle of an upload, bad input in the bucket (a corrupt index, an unreadable
//! meta.json, a deletion mark of garbage), and retention with its delayed, meta-first deletion.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use strata_testing::{wait_until, S3Server, TestNode};

use crate::compactor::{bucket_blocks, dump, promtool_blocks, visible_copy, write_config};
use crate::shipping_cli::{promtool_create_blocks, strata};

/// The ULIDs of the block directories of a promtool data dir, oldest first.
fn block_ulids(dir: &Path) -> Vec<String> {
    let mut v: Vec<(i64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let meta: Value =
                serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).ok()?).ok()?;
            Some((
                meta["minTime"].as_i64()?,
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, u)| u).collect()
}

fn visible_hours(bucket: &Path, cluster: &str) -> Vec<i64> {
    bucket_blocks(bucket)
        .into_iter()
        .filter(|(_, m, marked)| !marked && m["thanos"]["labels"]["cluster"] == cluster)
        .map(|(_, m, _)| {
            (m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap() + 1_800_000)
                / 3_600_000
        })
        .collect()
}

#[test]
fn sigkill_mid_upload_shows_no_partial_block_and_the_next_pass_finishes_without_duplicates() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let prom = promtool_blocks(tmp.path(), 24);
    let cfg = write_config(tmp.path(), &s3.bucket_yaml());
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");
    let inputs: BTreeSet<String> = bucket_blocks(&s3.bucket_dir())
        .into_iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(inputs.len(), 12);

    // The compactor's first upload reaches the index of its first output, is held there, and
    // the process is killed while the request hangs.
    s3.hold_puts("/index");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tools", "bucket", "compact", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while s3.held().is_empty() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the compactor never uploaded"
        );
        assert!(child.try_wait().unwrap().is_none(), "the pass ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    s3.release();
    let held = s3.held();
    let partial = held[0].split('/').next().unwrap().to_string();
    assert!(
        !inputs.contains(&partial),
        "held a new block's upload: {held:?}"
    );

    // Nothing visible changed: the 12 inputs, unmarked; the new block has no meta.json.
    let after_kill = bucket_blocks(&s3.bucket_dir());
    let names: BTreeSet<String> = after_kill.iter().map(|b| b.0.clone()).collect();
    assert_eq!(
        names, inputs,
        "a block without all its files became visible"
    );
    assert!(
        after_kill.iter().all(|b| !b.2),
        "inputs marked before their output was in"
    );
    assert!(!s3.bucket_dir().join(&partial).join("meta.json").exists());
    let scratch = tmp.path().join("data/compactor");
    assert!(
        std::fs::read_dir(&scratch).is_ok_and(|d| d.count() > 0),
        "the killed pass left its scratch behind (as a kill does)"
    );

    // The next pass finishes the work; the data is exactly the input's, never doubled.
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &cfg);
    assert!(ok, "pass after the kill failed: {out}\n{err}");
    assert_eq!(
        visible_hours(&s3.bucket_dir(), "eu1"),
        vec![8, 8, 2, 2, 2, 2]
    );
    let copy = tmp.path().join("compacted");
    visible_copy(&s3.bucket_dir(), &copy);
    assert_eq!(
        dump(&copy),
        dump(&prom),
        "promtool dump differs after the kill"
    );
    // The killed pass's scratch is gone; the partial upload stays invisible until it is old
    // enough to be an abandoned upload (48h, as in Thanos).
    let left: Vec<String> = std::fs::read_dir(&scratch)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("pass-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch of the killed pass left: {left:?}");
    assert!(!s3.bucket_dir().join(&partial).join("meta.json").exists());
}

/// Uploads promtool blocks of `hours` under external labels `{cluster: <cluster>}`.
fn upload_stream(s3: &S3Server, dir: &Path, cluster: &str, hours: i64) -> (PathBuf, Vec<String>) {
    std::fs::create_dir_all(dir).unwrap();
    let prom = promtool_blocks(dir, hours);
    let cfg = dir.join("upload.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels: {{cluster: {cluster}, replica: r1}}\nnode:\n  data_dir: {}\n{}",
            dir.join("data").display(),
            s3.bucket_yaml()
        ),
    )
    .unwrap();
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");
    let ulids = block_ulids(&prom);
    (prom, ulids)
}

#[actix_rt::test]
async fn bad_blocks_and_files_are_marked_or_skipped_and_the_rest_of_the_bucket_compacts() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket_dir();
    // eu1: the first block's index is corrupt. us1: a deletion mark of garbage on a block of
    // the newest range. A third directory's meta.json is not JSON.
    let (_, eu1) = upload_stream(&s3, &tmp.path().join("eu1"), "eu1", 24);
    let (_, us1) = upload_stream(&s3, &tmp.path().join("us1"), "us1", 24);
    let index = bucket.join(&eu1[0]).join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 3..n / 3 + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&index, bytes).unwrap();
    std::fs::write(
        bucket.join(&us1[11]).join("deletion-mark.json"),
        "{{{ not a mark",
    )
    .unwrap();
    let garbage = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    std::fs::create_dir_all(bucket.join(garbage).join("chunks")).unwrap();
    std::fs::write(bucket.join(garbage).join("meta.json"), "not json at all").unwrap();
    std::fs::write(bucket.join(garbage).join("index"), "x").unwrap();

    // One pass through the binary: it finishes, names each problem, and compacts the rest.
    std::fs::create_dir_all(tmp.path().join("cli")).unwrap();
    let cfg = write_config(&tmp.path().join("cli"), &s3.bucket_yaml());
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &cfg);
    assert!(ok, "the pass halted: {out}\n{err}");
    println!("{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("no-compact") && l.contains(&eu1[0])),
        "the corrupt block is named: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("skipped") && l.contains(garbage)),
        "the unreadable meta.json is named: {out}"
    );
    assert!(
        err.contains(&eu1[0]),
        "a log line names the corrupt block: {err}"
    );
    let mark: Value = serde_json::from_slice(
        &std::fs::read(bucket.join(&eu1[0]).join("no-compact-mark.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(mark["version"], 1);
    assert!(
        mark["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{mark}"
    );
    assert!(
        mark["details"].as_str().is_some_and(|d| !d.is_empty()),
        "{mark}"
    );
    // us1 compacts as usual (the garbage-marked block is skipped for the pass: neither
    // planned nor deleted, and not counted here as it has a deletion-mark file); eu1 too,
    // its first range from the three good blocks, the corrupt one left as it is.
    assert_eq!(visible_hours(&bucket, "us1"), vec![8, 8, 2, 2, 2]);
    let eu1_hours = visible_hours(&bucket, "eu1");
    assert!(
        eu1_hours.contains(&8),
        "eu1's good range compacted: {eu1_hours:?}"
    );
    // Nothing that should stay was deleted: the corrupt block, the garbage-marked block and
    // the directory with the bad meta.json are all still there.
    for u in [&eu1[0], &us1[11], &garbage.to_string()] {
        assert!(bucket.join(u).join("meta.json").exists(), "{u} was deleted");
    }

    // The same bucket through the Compactor role: the metric counts the mark by reason and
    // the garbage files, and later passes change nothing more.
    let node = TestNode::builder()
        .roles(&["compactor"])
        .yaml(&format!(
            "compactor: {{interval: 1s, consistency_delay: 0s, delete_delay: 0s}}\n{}",
            s3.bucket_yaml()
        ))
        .start()
        .await;
    wait_until("two compactor passes", Duration::from_secs(60), || async {
        let v = node.get_json("/api/v1/admin/compactor").await;
        v["data"]["status"]["passes"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let metrics = node.metrics().await;
    let status = node.get_json("/api/v1/admin/compactor").await;
    assert!(
        status["data"]["status"]["last_pass"]["invalid_files"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f.to_string().contains(garbage))),
        "{status}"
    );
    assert!(
        metrics.lines().any(|l| l.starts_with("strata_compactor_")
            && l.contains("invalid")
            && !l.ends_with(" 0")),
        "invalid files are counted: {}",
        metrics
            .lines()
            .filter(|l| l.starts_with("strata_compactor_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for u in [&eu1[0], &us1[11], &garbage.to_string()] {
        assert!(bucket.join(u).join("meta.json").exists(), "{u} was deleted");
    }
    node.handle.stop().await;
}

/// The number of files below `dir` (0 when it is gone; s3s-fs may leave empty directories).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        if e.path().is_dir() {
            n += files_under(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// promtool blocks of one gauge over `hours`, starting `start_s`.
fn recent_blocks(dir: &Path, start_s: i64, hours: i64) -> PathBuf {
    use std::fmt::Write as _;
    let mut om = String::from("# TYPE ret_gauge gauge\n");
    for i in 0..(hours * 60) {
        let _ = writeln!(om, "ret_gauge 1 {}", start_s + i * 60);
    }
    om.push_str("# EOF\n");
    std::fs::create_dir_all(dir).unwrap();
    promtool_create_blocks(dir, &om)
}

#[test]
fn retention_marks_then_deletes_after_the_delay_meta_json_first() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    // Old data (2023) and data of the last few hours, one stream.
    std::fs::create_dir_all(tmp.path().join("old")).unwrap();
    let old = promtool_blocks(&tmp.path().join("old"), 4);
    let now_s = strata_testing::now_ms() / 1000;
    let recent = recent_blocks(&tmp.path().join("recent"), now_s - 5 * 3600, 4);
    let cfg_with = |delete_delay: &str| {
        let cfg = tmp.path().join(format!("strata-{delete_delay}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "global:\n  external_labels: {{cluster: eu1, replica: r1}}\nnode:\n  data_dir: {}\n\
                 compactor:\n  consistency_delay: 0s\n  delete_delay: {delete_delay}\n  retention: {{raw: 30d}}\n{}",
                tmp.path().join("data").display(),
                s3.bucket_yaml()
            ),
        )
        .unwrap();
        cfg
    };
    let (slow, fast) = (cfg_with("1h"), cfg_with("0s"));
    for dir in [&old, &recent] {
        let (ok, out, err) = strata(&["tools", "bucket", "upload", dir.to_str().unwrap()], &slow);
        assert!(ok, "upload failed: {out}{err}");
    }
    let old_ulids: BTreeSet<String> = block_ulids(&old).into_iter().collect();
    let recent_ulids: BTreeSet<String> = block_ulids(&recent).into_iter().collect();
    assert_eq!(old_ulids.len(), 2);

    // Pass one, delete_delay 1h: the old blocks are marked, nothing is deleted.
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &slow);
    assert!(ok, "{out}\n{err}");
    let row = |out: &str, name: &str| -> u64 {
        out.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} row: {out}"))
    };
    assert_eq!(row(&out, "retention marks"), 2, "{out}");
    assert_eq!(row(&out, "blocks deleted"), 0, "{out}");
    let blocks = bucket_blocks(&s3.bucket_dir());
    for (u, _, marked) in &blocks {
        assert_eq!(*marked, old_ulids.contains(u), "block {u} marked: {marked}");
    }
    let mark: Value = serde_json::from_slice(
        &std::fs::read(
            s3.bucket_dir()
                .join(old_ulids.iter().next().unwrap())
                .join("deletion-mark.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(mark["version"], 1);
    assert!(mark["deletion_time"].as_i64().unwrap() >= now_s - 60);

    // Pass two, delete_delay 0s: the marked blocks go, each meta.json before its other files.
    let log_from = s3.log().len();
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &fast);
    assert!(ok, "{out}\n{err}");
    assert_eq!(row(&out, "blocks deleted"), 2, "{out}");
    let left: BTreeSet<String> = bucket_blocks(&s3.bucket_dir())
        .into_iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(left, recent_ulids, "only the recent blocks stay");
    for u in &old_ulids {
        assert_eq!(files_under(&s3.bucket_dir().join(u)), 0, "{u} left files");
        let deletes: Vec<String> = s3.log()[log_from..]
            .iter()
            .filter(|l| l.method == "DELETE" && l.key.starts_with(u.as_str()))
            .map(|l| l.key.clone())
            .collect();
        assert!(deletes.len() >= 3, "{u}: {deletes:?}");
        assert_eq!(
            deletes[0],
            format!("{u}/meta.json"),
            "meta.json first: {deletes:?}"
        );
    }
}
