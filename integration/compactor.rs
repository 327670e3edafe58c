//! The bucket compactor as a user runs it: blocks made by promtool (Prometheus 2.42) uploaded to
//! a real S3 server (s3s-fs), `strata tools bucket compact` run as the real binary, the result
//! read back by promtool. Also the no-compact and deletion marks by hand, and cleanup.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_testing::{require_binary, S3Server};

use crate::shipping_cli::{promtool_create_blocks, strata};

const HOUR_S: i64 = 3600;

/// `hours` of data for a gauge and a counter of three jobs every 60 s, starting on an 8h
/// boundary (compaction ranges are aligned to the epoch), cut into 2h blocks by promtool.
pub(crate) fn promtool_blocks(dir: &Path, hours: i64) -> PathBuf {
    let start = 1_700_000_000i64 / (8 * HOUR_S) * (8 * HOUR_S);
    let mut om = String::new();
    om.push_str("# TYPE cmp_gauge gauge\n");
    for job in ["a", "b", "c"] {
        for i in 0..(hours * 60) {
            let _ = writeln!(
                om,
                "cmp_gauge{{job=\"{job}\"}} {} {}",
                (i % 17) as f64 * 0.25,
                start + i * 60
            );
        }
    }
    om.push_str("# TYPE cmp_requests counter\n");
    for job in ["a", "b", "c"] {
        for i in 0..(hours * 60) {
            let _ = writeln!(
                om,
                "cmp_requests_total{{job=\"{job}\"}} {} {}",
                i * 3,
                start + i * 60
            );
        }
    }
    om.push_str("# EOF\n");
    promtool_create_blocks(dir, &om)
}

pub(crate) fn write_config(dir: &Path, bucket_yaml: &str) -> PathBuf {
    let cfg = dir.join("strata.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels: {{cluster: eu1, replica: r1}}\nnode:\n  data_dir: {}\n\
             compactor:\n  consistency_delay: 0s\n  delete_delay: 0s\n{bucket_yaml}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// The block directories in the bucket dir with a meta.json, as (ULID, meta, deletion-marked).
pub(crate) fn bucket_blocks(bucket_dir: &Path) -> Vec<(String, Value, bool)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(bucket_dir).unwrap().flatten() {
        let p = e.path();
        let Ok(bytes) = std::fs::read(p.join("meta.json")) else {
            continue;
        };
        // A garbage meta.json (some tests put one there) is no block.
        let Ok(meta) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            meta,
            p.join("deletion-mark.json").exists(),
        ));
    }
    out.sort_by_key(|(_, m, _)| m["minTime"].as_i64());
    out
}

/// `promtool tsdb dump` of a data dir, lines sorted (series and samples, whatever the blocks).
pub(crate) fn dump(dir: &Path) -> Vec<String> {
    // promtool opens the directory as a TSDB: it wants a (here empty) WAL.
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let out = Command::new(require_binary("promtool"))
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// Copies the visible blocks (meta.json, no deletion mark) of the bucket into a data dir.
pub(crate) fn visible_copy(bucket_dir: &Path, to: &Path) -> usize {
    std::fs::create_dir_all(to).unwrap();
    let mut n = 0;
    for (ulid, _, marked) in bucket_blocks(bucket_dir) {
        if marked {
            continue;
        }
        let from = bucket_dir.join(&ulid);
        let dest = to.join(&ulid);
        std::fs::create_dir_all(dest.join("chunks")).unwrap();
        for f in ["meta.json", "index"] {
            std::fs::copy(from.join(f), dest.join(f)).unwrap();
        }
        for c in std::fs::read_dir(from.join("chunks")).unwrap().flatten() {
            std::fs::copy(c.path(), dest.join("chunks").join(c.file_name())).unwrap();
        }
        n += 1;
    }
    n
}

#[test]
fn twelve_promtool_blocks_compact_to_8h_and_read_back_identical_in_promtool() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let prom = promtool_blocks(tmp.path(), 24);
    let inputs: BTreeSet<String> = std::fs::read_dir(&prom)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inputs.len(), 12, "promtool cut twelve 2h blocks");
    let cfg = write_config(tmp.path(), &s3.bucket_yaml());
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");

    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &cfg);
    assert!(ok, "compact failed: {out}\n{err}");
    assert!(
        err.contains("listing the bucket"),
        "progress on stderr: {err}"
    );
    assert!(out.contains("blocks written"), "summary table: {out}");

    let blocks = bucket_blocks(&s3.bucket_dir());
    let visible: Vec<&(String, Value, bool)> = blocks.iter().filter(|b| !b.2).collect();
    let ranges: Vec<(i64, i64, i64)> = visible
        .iter()
        .map(|(_, m, _)| {
            let min = m["minTime"].as_i64().unwrap() / 1000;
            let max = m["maxTime"].as_i64().unwrap() / 1000;
            // Rounded: promtool's maxTime is the last sample plus 1 ms.
            (
                (max - min + HOUR_S / 2) / HOUR_S,
                m["compaction"]["level"].as_i64().unwrap(),
                min,
            )
        })
        .collect();
    let hours: Vec<i64> = ranges.iter().map(|r| r.0).collect();
    assert_eq!(
        hours,
        vec![8, 8, 2, 2, 2, 2],
        "two 8h blocks, the newest range left alone: {ranges:?}"
    );
    for (_, m, _) in &visible[..2] {
        assert_eq!(m["thanos"]["source"], "compactor");
        assert_eq!(m["compaction"]["sources"].as_array().unwrap().len(), 4);
        assert_eq!(m["thanos"]["labels"]["cluster"], "eu1");
    }
    let marked: BTreeSet<String> = blocks.iter().filter(|b| b.2).map(|b| b.0.clone()).collect();
    assert_eq!(marked.len(), 8, "the eight inputs are marked for deletion");
    assert!(marked.is_subset(&inputs));

    // promtool reads the compacted blocks and sees exactly the input data.
    let copy = tmp.path().join("compacted");
    assert_eq!(visible_copy(&s3.bucket_dir(), &copy), 6);
    assert_eq!(dump(&copy), dump(&prom), "promtool dump differs");

    // A second pass compacts nothing more; with delete_delay 0s it deletes the marked inputs.
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &cfg);
    assert!(ok, "second pass failed: {out}\n{err}");
    let after = bucket_blocks(&s3.bucket_dir());
    let after_visible: Vec<String> = after.iter().filter(|b| !b.2).map(|b| b.0.clone()).collect();
    let before_visible: Vec<String> = visible.iter().map(|b| b.0.clone()).collect();
    assert_eq!(
        after_visible, before_visible,
        "the second pass changes no visible block"
    );
    assert!(
        after.iter().all(|b| !marked.contains(&b.0)),
        "marked inputs deleted after the delay"
    );
    let copy2 = tmp.path().join("compacted2");
    visible_copy(&s3.bucket_dir(), &copy2);
    assert_eq!(dump(&copy2), dump(&prom));
}

#[test]
fn marks_by_hand_are_honoured_and_cleanup_deletes_due_blocks() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let prom = promtool_blocks(tmp.path(), 8);
    let cfg = write_config(tmp.path(), &s3.bucket_yaml());
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");
    let blocks = bucket_blocks(&s3.bucket_dir());
    assert_eq!(blocks.len(), 4);
    let first = blocks[0].0.clone();

    let (ok, out, _) = strata(
        &[
            "tools",
            "bucket",
            "mark",
            "--kind",
            "no-compact",
            "--details",
            "keep it",
            &first,
        ],
        &cfg,
    );
    assert!(ok && out.contains("marked"), "{out}");
    let mark: Value = serde_json::from_slice(
        &std::fs::read(s3.bucket_dir().join(&first).join("no-compact-mark.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(mark["reason"], "manual");
    assert_eq!(mark["details"], "keep it");
    assert_eq!(mark["version"], 1);
    let (ok, out, _) = strata(&["tools", "bucket", "ls"], &cfg);
    assert!(ok && out.contains("no-compact"), "{out}");

    // Not a ULID, and a block that is not there: refused, nothing written.
    let (ok, _, err) = strata(
        &["tools", "bucket", "mark", "--kind", "deletion", "nope"],
        &cfg,
    );
    assert!(!ok && err.contains("not a block ULID"), "{err}");
    let (ok, _, err) = strata(
        &[
            "tools",
            "bucket",
            "mark",
            "--kind",
            "deletion",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ],
        &cfg,
    );
    assert!(!ok && err.contains("no block"), "{err}");

    // Compaction leaves the marked block alone: the other three are not a complete 8h range
    // with it excluded, so nothing is compacted; the marked block is still there.
    let (ok, out, err) = strata(&["tools", "bucket", "compact"], &cfg);
    assert!(ok, "{out}{err}");
    let after = bucket_blocks(&s3.bucket_dir());
    assert!(after.iter().any(|b| b.0 == first && !b.2));

    // Deletion by hand, then cleanup with delete_delay 0s removes the block, meta.json first.
    let (ok, out, _) = strata(
        &["tools", "bucket", "mark", "--kind", "deletion", &first],
        &cfg,
    );
    assert!(ok, "{out}");
    let (ok, out, err) = strata(&["tools", "bucket", "cleanup"], &cfg);
    assert!(ok, "{out}{err}");
    assert!(!s3.bucket_dir().join(&first).join("meta.json").exists());
    assert!(out.contains("blocks deleted"), "{out}");
}
