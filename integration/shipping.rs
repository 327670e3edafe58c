//! Block shipping end to end (issue 5): a node fed by remote write cuts blocks and ships them
//! to a real S3 server (s3s-fs, see `strata_testing::s3`); the shipped blocks are checked against
//! Thanos's meta.json contract and read back with `promtool tsdb dump`. Also the helpers the
//! other `shipping_*` modules share: a node config with an S3 bucket and a short block range,
//! synthetic samples, and the expected block cuts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strata::http::remote_write::encode;
use strata::storage::bucket::ObjectStore;
use strata::storage::model::Labels;
use strata_testing::http::fetch_metrics;
use strata_testing::{
    metric_value, now_ms, remote_write, require_binary, wait_until, S3Server, TestNode, Wait,
};

/// Short block range so a test sees several cuts within seconds (maintenance every 2 s).
pub const BLOCK_MS: i64 = 16_000;
pub const NODE_ID: &str = "ship-node";
pub const EXTERNAL: [(&str, &str); 2] = [("cluster", "eu1"), ("team", "infra")];

/// A shipping node's config besides its `node:` section: the external labels, `bucket_yaml` as
/// the bucket section, a short block range.
fn shipping_sections(bucket_yaml: &str) -> String {
    format!(
        "global:\n  external_labels: {{cluster: eu1, team: infra}}\n{bucket_yaml}tsdb:\n  block_duration: {}s\n  retention: 15d\n",
        BLOCK_MS / 1000
    )
}

/// A full config for the `strata` binary: only the scraper_shipper role, HTTP on `web`, the
/// TSDB under `data_dir`, and `bucket_yaml` as the bucket section.
pub fn node_config(data_dir: &Path, web: &str, bucket_yaml: &str) -> String {
    format!(
        "node:\n  id: {NODE_ID}\n  web_listen: {web}\n  gossip_listen: 127.0.0.1:0\n  rpc_listen: 127.0.0.1:0\n  data_dir: {}\n  roles: [scraper_shipper]\n{}",
        data_dir.display(),
        shipping_sections(bucket_yaml)
    )
}

/// The same node in this process (inside the test's actix system), ready.
pub async fn start_ship_node(data_dir: &Path, bucket_yaml: &str) -> TestNode {
    let node = TestNode::builder()
        .id(NODE_ID)
        .roles(&["scraper_shipper"])
        .data_dir(data_dir)
        .yaml(&shipping_sections(bucket_yaml))
        .start()
        .await;
    node.wait_ready().await;
    node
}

/// The TSDB dir of a node started by [`start_ship_node`].
pub fn tsdb_dir(node: &TestNode) -> std::path::PathBuf {
    node.data_dir().join("tsdb")
}

/// One sample of the `/metrics` of the node at `base` (0 when absent or unreachable).
pub async fn metric_at(base: &str, name: &str) -> f64 {
    fetch_metrics(base)
        .await
        .and_then(|text| metric_value(&text, name))
        .unwrap_or(0.0)
}

/// Expected samples per series, keyed by the Go rendering of the labels (`promtool` output).
pub type Expected = BTreeMap<String, Vec<(i64, f64)>>;

/// A remote-write payload before encoding.
pub type WriteBody = Vec<(Labels, Vec<(i64, f64)>)>;

pub fn go_labels(pairs: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = pairs.to_vec();
    sorted.sort();
    let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// `series` series with one sample per `step_ms` over `[from, to)`, values distinct per
/// series and time (including fractions and negatives, so formatting matters).
pub fn synthetic(series: usize, from: i64, to: i64, step_ms: i64) -> (WriteBody, Expected) {
    let mut body = Vec::new();
    let mut expected = Expected::new();
    for s in 0..series {
        let pairs = vec![
            ("__name__", "ship_test_value".to_string()),
            ("instance", format!("i{s}")),
            ("job", "ship".to_string()),
        ];
        let samples: Vec<(i64, f64)> = (0..)
            .map(|i| from + i * step_ms)
            .take_while(|t| *t < to)
            .map(|t| (t, (t - from) as f64 / 8.0 - s as f64 * 3.25))
            .collect();
        expected.insert(go_labels(&pairs), samples.clone());
        body.push((
            Labels::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone()))),
            samples,
        ));
    }
    (body, expected)
}

/// The block ranges the head cuts from these timestamps (Prometheus's rule: cut the oldest
/// aligned range while the head spans more than 1.5 ranges).
pub fn expected_cuts(times: &[i64], width: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return out;
    };
    let mut hmin = first;
    while last - hmin > width / 2 * 3 {
        let maxt = hmin.div_euclid(width) * width + width;
        out.push((maxt - width, maxt));
        match times.iter().find(|t| **t >= maxt) {
            Some(t) => hmin = *t,
            None => break,
        }
    }
    out
}

/// Feeds `series` series over the last `span_ms` to the node; returns what was written and
/// the blocks the node must cut from it.
pub async fn feed(base: &str, series: usize, span_ms: i64) -> (Expected, Vec<(i64, i64)>) {
    let now = now_ms() / 1000 * 1000;
    let (body, expected) = synthetic(series, now - span_ms, now, 1000);
    let times: Vec<i64> = body[0].1.iter().map(|s| s.0).collect();
    remote_write(base, encode(&body)).await;
    (expected, expected_cuts(&times, BLOCK_MS))
}

/// `(ULID, meta)` of every block whose meta.json is in the s3s-fs bucket dir.
pub fn bucket_metas(bucket_dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(bucket_dir) else {
        return out;
    };
    for e in rd.flatten() {
        let meta = e.path().join("meta.json");
        if let Ok(raw) = std::fs::read(&meta) {
            let v: Value = serde_json::from_slice(&raw).expect("meta.json in the bucket is JSON");
            out.insert(e.file_name().to_string_lossy().to_string(), v);
        }
    }
    out
}

/// Block dirs (ULID names with a meta.json) in a local TSDB dir.
pub fn local_blocks(tsdb: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(tsdb)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("meta.json").is_file())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .filter(|n| ulid::Ulid::from_string(n).is_ok())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Downloads one block with the strata S3 client into `<dest>/<ULID>/`.
pub async fn download_block(store: &dyn ObjectStore, ulid: &str, dest: &Path) {
    let objects = store
        .list(&format!("{ulid}/"), None)
        .await
        .expect("list block")
        .objects;
    assert!(!objects.is_empty(), "block {ulid} has no objects");
    for o in objects {
        let path = dest.join(&o.key);
        std::fs::create_dir_all(path.parent().expect("object path has a parent")).expect("mkdir");
        store
            .get_to_file(&o.key, &path)
            .await
            .expect("download object");
    }
}

/// `promtool tsdb dump` of a data dir (given an empty `wal/`), parsed per series.
pub fn promtool_dump(data_dir: &Path) -> Expected {
    std::fs::create_dir_all(data_dir.join("wal")).expect("wal dir");
    let out = Command::new(require_binary("promtool"))
        .args(["tsdb", "dump"])
        .arg(data_dir)
        .output()
        .expect("run promtool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool tsdb dump failed: {stderr}");
    let mut got = Expected::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (rest, ts) = line.rsplit_once(' ').expect("dump line has a timestamp");
        let (labels, value) = rest.rsplit_once(' ').expect("dump line has a value");
        got.entry(labels.to_string()).or_default().push((
            ts.parse().expect("timestamp"),
            value.parse().expect("value"),
        ));
    }
    got
}

/// The slice of `expected` inside `[mint, maxt)`, without series that have no samples there.
pub fn window(expected: &Expected, mint: i64, maxt: i64) -> Expected {
    expected
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .copied()
                    .filter(|(t, _)| *t >= mint && *t < maxt)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Checks one shipped meta.json against Thanos's contract and the object sizes in the bucket.
pub fn assert_thanos_meta(ulid: &str, meta: &Value, bucket_dir: &Path) {
    assert_eq!(meta["ulid"], ulid);
    assert_eq!(meta["version"], 1);
    let t = &meta["thanos"];
    assert_eq!(t["version"], 1, "{ulid}: thanos.version");
    let mut want: BTreeMap<String, String> = EXTERNAL
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.insert("replica".into(), NODE_ID.into());
    let labels: BTreeMap<String, String> =
        serde_json::from_value(t["labels"].clone()).expect("thanos.labels is a string map");
    assert_eq!(
        labels, want,
        "{ulid}: thanos.labels = external labels + replica label"
    );
    assert_eq!(t["source"], "sidecar", "{ulid}: thanos.source");
    assert_eq!(t["downsample"]["resolution"], 0, "{ulid}: raw resolution");
    assert!(
        t["upload_time"]
            .as_str()
            .is_some_and(|s| humantime::parse_rfc3339(s).is_ok()),
        "{ulid}: upload_time {:?}",
        t["upload_time"]
    );
    let files = t["files"].as_array().expect("thanos.files");
    let paths: Vec<&str> = files
        .iter()
        .map(|f| f["rel_path"].as_str().expect("rel_path"))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "{ulid}: thanos.files sorted");
    assert!(
        paths.contains(&"index")
            && paths.contains(&"meta.json")
            && paths.iter().any(|p| p.starts_with("chunks/")),
        "{paths:?}"
    );
    for f in files {
        let rel = f["rel_path"].as_str().unwrap_or_default();
        if rel == "meta.json" {
            continue;
        }
        let size = std::fs::metadata(bucket_dir.join(ulid).join(rel))
            .map(|m| m.len())
            .expect("listed file is in the bucket");
        assert_eq!(
            f["size_bytes"].as_u64(),
            Some(size),
            "{ulid}/{rel} size_bytes"
        );
    }
    // Our own typed reader of the format must accept it too.
    let typed: strata::storage::block::meta::BlockMeta =
        serde_json::from_value(meta.clone()).expect("BlockMeta parses the shipped meta");
    assert_eq!(typed.ulid.to_string(), ulid);
}

#[actix_rt::test]
async fn a_node_ships_cut_blocks_to_s3_in_thanos_layout_and_promtool_reads_them_back() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start_ship_node(&dir.path().join("data"), &s3.bucket_yaml()).await;
    let (expected, cuts) = feed(&node.base, 3, 6 * BLOCK_MS).await;
    assert!(
        cuts.len() >= 3,
        "the workload spans several block ranges: {cuts:?}"
    );

    let bucket = s3.bucket_dir();
    // The server logs a PUT once it has answered it, a moment after the object is on disk:
    // wait for both.
    let logged_metas = || {
        s3.log()
            .iter()
            .filter(|l| l.method == "PUT" && l.key.ends_with("/meta.json"))
            .count()
    };
    let shipped = Wait::new("every cut block in the bucket", Duration::from_secs(30))
        .until(|| async {
            bucket_metas(&bucket).len() >= cuts.len() && logged_metas() >= cuts.len()
        })
        .await;
    let metas = bucket_metas(&bucket);
    if let Err(e) = shipped {
        panic!("{e}: expected {} blocks, found {}", cuts.len(), metas.len());
    }
    assert_eq!(metas.len(), cuts.len());
    let mut ranges: Vec<(i64, i64)> = metas
        .values()
        .map(|m| {
            (
                m["minTime"].as_i64().unwrap(),
                m["maxTime"].as_i64().unwrap(),
            )
        })
        .collect();
    ranges.sort_unstable();
    let aligned: Vec<(i64, i64)> = ranges
        .iter()
        .map(|(a, _)| {
            (
                a.div_euclid(BLOCK_MS) * BLOCK_MS,
                a.div_euclid(BLOCK_MS) * BLOCK_MS + BLOCK_MS,
            )
        })
        .collect();
    assert_eq!(aligned, cuts, "one block per cut range");
    for (ulid, meta) in &metas {
        assert_thanos_meta(ulid, meta, &bucket);
    }

    // meta.json was the last object of each block to arrive, once per block.
    let log = s3.log();
    for ulid in metas.keys() {
        let puts: Vec<&str> = log
            .iter()
            .filter(|l| l.method == "PUT" && l.key.starts_with(ulid.as_str()))
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(
            puts.last().copied(),
            Some(format!("{ulid}/meta.json").as_str()),
            "{ulid}: upload order {puts:?}"
        );
        assert_eq!(
            puts.iter().filter(|k| k.ends_with("meta.json")).count(),
            1,
            "{ulid}: {puts:?}"
        );
    }
    assert!(s3.violations().is_empty(), "{:?}", s3.violations());

    // Download every block with our S3 client and read it with Prometheus's own promtool.
    let store = s3.store();
    let dl = tempfile::tempdir().unwrap();
    for (ulid, meta) in &metas {
        let one = dl.path().join(ulid);
        download_block(&store, ulid, &one).await;
        let got = promtool_dump(&one);
        let (mint, maxt) = (
            meta["minTime"].as_i64().unwrap(),
            meta["maxTime"].as_i64().unwrap(),
        );
        assert_eq!(
            got,
            window(&expected, mint, maxt),
            "block {ulid} [{mint},{maxt}) holds exactly the written samples"
        );
        assert_eq!(
            meta["stats"]["numSamples"].as_u64().unwrap() as usize,
            got.values().map(Vec::len).sum::<usize>()
        );
    }

    // The node's own metrics agree: nothing pending, one upload per block.
    wait_until("no blocks pending", Duration::from_secs(10), || async {
        metric_at(&node.base, "strata_shipper_pending_blocks").await == 0.0
    })
    .await;
    assert_eq!(
        metric_at(&node.base, "strata_shipper_uploads_total").await as usize,
        metas.len()
    );
    node.handle.stop().await;
}
