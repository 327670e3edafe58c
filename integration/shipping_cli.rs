//! `strata tools bucket upload|ls|inspect|verify` as a user runs them (the real binary with a
//! config file), against the embedded filesystem bucket and a real S3 server, on a Prometheus
//! data dir written by `promtool tsdb create-blocks-from openmetrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_testing::{require_binary, S3Server};

use crate::shipping::bucket_metas;

/// Runs the real binary with `--config cfg`: (success, stdout, stderr).
pub(crate) fn strata(args: &[&str], cfg: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("run strata");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `promtool tsdb create-blocks-from openmetrics` of the OpenMetrics text `om` into
/// `<dir>/prom-data` (2h blocks cut by promtool itself); fails the test if promtool does.
pub(crate) fn promtool_create_blocks(dir: &Path, om: &str) -> PathBuf {
    let input = dir.join("input.om");
    std::fs::write(&input, om).unwrap();
    let out_dir = dir.join("prom-data");
    let out = Command::new(require_binary("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir
}

/// A Prometheus data dir with blocks over three 2h ranges, made by promtool itself.
fn promtool_blocks(dir: &Path) -> (PathBuf, Vec<String>) {
    let start = 1_700_000_000i64 / 7200 * 7200;
    let mut om = String::from("# HELP cli_metric A test gauge.\n# TYPE cli_metric gauge\n");
    for job in ["a", "b"] {
        for i in 0..(3 * 120) {
            let t = start + i * 60;
            let _ = writeln!(om, "cli_metric{{job=\"{job}\"}} {} {t}", i as f64 * 0.5);
        }
    }
    om.push_str("# EOF\n");
    let out_dir = promtool_create_blocks(dir, &om);
    let mut blocks: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    blocks.sort();
    assert_eq!(blocks.len(), 3, "promtool cut three 2h blocks");
    (out_dir, blocks)
}

fn write_config(dir: &Path, bucket_yaml: &str, labels: &str) -> PathBuf {
    let cfg = dir.join(format!("strata-{}.yml", labels.len()));
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels: {labels}\nnode:\n  data_dir: {}\n{bucket_yaml}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// The whole user story against one bucket; `bucket_dir` is where its objects sit on disk.
fn exercise(bucket_yaml: &str, bucket_dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let (prom, blocks) = promtool_blocks(tmp.path());

    // No external labels: refused, nothing uploaded.
    let bare = write_config(tmp.path(), bucket_yaml, "{}");
    let (ok, _, err) = strata(
        &["tools", "bucket", "upload", prom.to_str().unwrap()],
        &bare,
    );
    assert!(!ok && err.contains("external labels"), "{err}");
    assert!(bucket_metas(bucket_dir).is_empty());

    let cfg = write_config(tmp.path(), bucket_yaml, "{cluster: eu1, env: cli}");
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "upload failed: {out}{err}");
    assert!(
        out.contains("3 uploaded, 0 already present, 0 failed"),
        "{out}"
    );
    assert!(
        err.contains("meta.json: block complete"),
        "progress on stderr: {err}"
    );
    let metas = bucket_metas(bucket_dir);
    assert_eq!(metas.keys().cloned().collect::<Vec<_>>(), blocks);
    let want = BTreeMap::from([
        ("cluster".to_string(), "eu1".to_string()),
        ("env".to_string(), "cli".to_string()),
    ]);
    for (ulid, meta) in &metas {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(meta["thanos"]["labels"].clone()).unwrap();
        assert_eq!(labels, want, "{ulid}: the config's external labels");
        assert_eq!(meta["thanos"]["source"], "bucket.upload");
        assert_eq!(meta["thanos"]["downsample"]["resolution"], 0);
        let local: Value =
            serde_json::from_slice(&std::fs::read(prom.join(ulid).join("meta.json")).unwrap())
                .unwrap();
        assert_eq!(
            meta["stats"], local["stats"],
            "{ulid}: promtool's stats kept"
        );
        for f in meta["thanos"]["files"].as_array().unwrap() {
            let rel = f["rel_path"].as_str().unwrap();
            if rel != "meta.json" {
                assert_eq!(
                    std::fs::read(bucket_dir.join(ulid).join(rel)).unwrap(),
                    std::fs::read(prom.join(ulid).join(rel)).unwrap(),
                    "{ulid}/{rel} byte for byte"
                );
            }
        }
    }

    // Again: already there, nothing re-sent.
    let (ok, out, _) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok && out.contains("0 uploaded, 3 already present"), "{out}");

    let (ok, out, err) = strata(&["tools", "bucket", "ls"], &cfg);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    for (row, ulid) in rows.iter().zip(&blocks) {
        assert!(row.starts_with(ulid.as_str()), "sorted by time: {out}");
        assert!(row.contains("{cluster=\"eu1\",env=\"cli\"}"), "{row}");
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(
            cols.windows(4).any(|w| w == ["0s", "1", "2", "240"]),
            "resolution, level, series, samples: {row}"
        );
    }

    let (ok, out, err) = strata(&["tools", "bucket", "inspect", &blocks[1]], &cfg);
    assert!(ok, "{err}");
    let v: String = out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("objects:"))
        .collect::<Vec<_>>()
        .join("\n");
    let shown: Value = serde_json::from_str(&v).expect("inspect prints the meta as JSON");
    assert_eq!(shown["ulid"], blocks[1].as_str());
    assert!(
        out.contains(&format!("{}/index", blocks[1]))
            && out.contains(&format!("{}/chunks/000001", blocks[1])),
        "{out}"
    );
    let (ok, _, err) = strata(&["tools", "bucket", "inspect", "../../etc/passwd"], &cfg);
    assert!(!ok && err.contains("is not a block ULID"), "{err}");

    let (ok, out, err) = strata(&["tools", "bucket", "verify"], &cfg);
    assert!(
        ok && out.contains("verified 3 blocks: 0 problems, 0 partial uploads"),
        "{out}{err}"
    );
    assert!(err.contains("[3/3] verifying"), "progress on stderr: {err}");

    // Same size, wrong bytes: only parsing the chunks notices.
    let seg = bucket_dir.join(&blocks[0]).join("chunks/000001");
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    let mut bad = std::fs::read(&seg).unwrap();
    for b in bad.iter_mut().skip(8) {
        *b = 0xff;
    }
    std::fs::write(&seg, &bad).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, len);
    let (ok, out, _) = strata(&["tools", "bucket", "verify", "--files-only"], &cfg);
    assert!(ok, "sizes still match: {out}");
    let (ok, out, _) = strata(&["tools", "bucket", "verify"], &cfg);
    assert!(
        !ok && out.contains(&format!("{}: content:", blocks[0]))
            && out.contains("verified 3 blocks: 1 problems"),
        "{out}"
    );

    // A short index is a size problem even without parsing.
    let index = bucket_dir.join(&blocks[2]).join("index");
    let data = std::fs::read(&index).unwrap();
    std::fs::write(&index, &data[..data.len() / 2]).unwrap();
    let (ok, out, _) = strata(&["tools", "bucket", "verify", "--files-only"], &cfg);
    assert!(
        !ok && out.contains(&format!("{}: file index is", blocks[2])),
        "{out}"
    );
}

#[test]
fn bucket_tools_on_the_filesystem_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    exercise(
        &format!(
            "bucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\n",
            bucket.display()
        ),
        &bucket,
    );
}

#[test]
fn bucket_tools_on_s3() {
    let s3 = S3Server::start();
    exercise(&s3.bucket_yaml(), &s3.bucket_dir());
}

/// A meta.json that lists `../` paths (a hostile or broken bucket) is reported by verify and
/// never makes the content check read or write outside its scratch dir.
#[test]
fn verify_refuses_file_paths_that_escape_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let bucket_yaml = format!(
        "bucket:\n  type: filesystem\n  filesystem: {{dir: {}}}\n",
        bucket.display()
    );
    let (prom, blocks) = promtool_blocks(dir.path());
    let cfg = write_config(dir.path(), &bucket_yaml, "{cluster: eu1}");
    let (ok, out, err) = strata(&["tools", "bucket", "upload", prom.to_str().unwrap()], &cfg);
    assert!(ok, "{out}{err}");

    let meta_path = bucket.join(&blocks[0]).join("meta.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let escape = format!("../../../{}", "escaped-by-verify");
    meta["thanos"]["files"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"rel_path": escape, "size_bytes": 4}));
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();

    let (ok, out, err) = strata(&["tools", "bucket", "verify"], &cfg);
    assert!(!ok, "verify must fail: {out}{err}");
    assert!(
        out.contains(&format!("{}: missing file {escape}", blocks[0])),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: content: invalid object key", blocks[0])),
        "{out}"
    );
    assert!(out.contains("verified 3 blocks: 2 problems"), "{out}");
    let outside = std::env::temp_dir().join("escaped-by-verify");
    assert!(!outside.exists() && !dir.path().join("escaped-by-verify").exists());
}
