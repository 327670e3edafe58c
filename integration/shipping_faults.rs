//! Shipping under faults: the S3 server goes away mid-shipping and comes back (every block
//! arrives, none twice); the `strata` binary is SIGKILLed while an upload is in flight (the
//! block is re-uploaded completely after restart and no meta.json ever points at a partial
//! block); a corrupt `thanos.shipper.json` is rebuilt from the bucket, not trusted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata::http::remote_write::encode;
use strata_testing::http::try_wait_http_ok;
use strata_testing::{free_port, now_ms, remote_write, ChildGuard, S3Server, TimedOut, Wait};

use crate::shipping::{
    bucket_metas, expected_cuts, local_blocks, metric_at, node_config, start_ship_node, synthetic,
    tsdb_dir, BLOCK_MS,
};

/// How long a cut block may take to reach the bucket (maintenance runs every 2 s).
const SHIP_LIMIT: Duration = Duration::from_secs(40);

/// Two consecutive batches in the recent past: `[now-10w, now-6w)` then `[now-6w, now)`.
fn two_batches() -> (Vec<u8>, Vec<u8>, usize, usize) {
    let now = now_ms() / 1000 * 1000;
    let (first, _) = synthetic(2, now - 10 * BLOCK_MS, now - 6 * BLOCK_MS, 1000);
    let (second, _) = synthetic(2, now - 6 * BLOCK_MS, now, 1000);
    let t1: Vec<i64> = first[0].1.iter().map(|s| s.0).collect();
    let mut all = t1.clone();
    all.extend(second[0].1.iter().map(|s| s.0));
    (
        encode(&first),
        encode(&second),
        expected_cuts(&t1, BLOCK_MS).len(),
        expected_cuts(&all, BLOCK_MS).len(),
    )
}

fn no_duplicates(puts: &[String]) -> bool {
    puts.iter().collect::<BTreeSet<_>>().len() == puts.len()
}

/// Waits until `n` blocks are in the bucket and the node at `base` has nothing pending.
async fn shipped_all(base: &str, s3: &S3Server, n: usize) -> Result<Duration, TimedOut> {
    let bucket = s3.bucket_dir();
    Wait::new(format!("{n} blocks shipped, none pending"), SHIP_LIMIT)
        .until(|| async {
            // The upload counter moves only once the client saw meta.json accepted, so nothing
            // is in flight when this holds.
            bucket_metas(&bucket).len() >= n
                && metric_at(base, "strata_shipper_uploads_total").await as usize >= n
                && metric_at(base, "strata_shipper_pending_blocks").await == 0.0
        })
        .await
}

/// Waits until the `strata` process at `base` is ready; panics with its log otherwise.
async fn wait_ready(base: &str, log: &Path) {
    if let Err(e) = try_wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(20)).await {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{e}; the node's log:\n{log}");
    }
}

#[actix_rt::test]
async fn blocks_cut_while_s3_is_down_arrive_once_it_is_back_none_twice() {
    let mut s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start_ship_node(&dir.path().join("data"), &s3.bucket_yaml()).await;
    let (first, second, n1, n_all) = two_batches();
    remote_write(&node.base, first).await;
    if let Err(e) = shipped_all(&node.base, &s3, n1).await {
        panic!("first batch not shipped: {e}");
    }
    assert_eq!(bucket_metas(&s3.bucket_dir()).len(), n1);

    // Take the bucket away with nothing in flight, then make the head cut more blocks.
    s3.stop().await;
    remote_write(&node.base, second).await;
    let tsdb = tsdb_dir(&node);
    let behind = Wait::new("blocks cut and reported pending", SHIP_LIMIT)
        .until(|| async {
            local_blocks(&tsdb).len() >= n_all
                && metric_at(&node.base, "strata_shipper_upload_failures_total").await >= 1.0
                && metric_at(&node.base, "strata_shipper_pending_blocks").await >= 1.0
        })
        .await;
    assert!(
        behind.is_ok(),
        "the node should cut blocks and report them pending while S3 is down"
    );
    assert_eq!(
        bucket_metas(&s3.bucket_dir()).len(),
        n1,
        "nothing can arrive while the server is down"
    );
    assert!(
        metric_at(&node.base, "strata_shipper_oldest_unshipped_age_seconds").await > 0.0,
        "lag metric says how far behind"
    );

    s3.restart().await;
    assert!(
        shipped_all(&node.base, &s3, n_all).await.is_ok(),
        "blocks did not arrive after the bucket came back"
    );
    let metas = bucket_metas(&s3.bucket_dir());
    let local: BTreeSet<String> = local_blocks(&tsdb).into_iter().collect();
    assert_eq!(
        metas.keys().cloned().collect::<BTreeSet<_>>(),
        local,
        "every local block is in the bucket"
    );
    let puts = s3.meta_puts();
    assert_eq!(puts.len(), n_all, "one meta.json PUT per block: {puts:?}");
    assert!(no_duplicates(&puts), "{puts:?}");
    assert!(s3.violations().is_empty(), "{:?}", s3.violations());
    assert_eq!(
        metric_at(&node.base, "strata_shipper_uploads_total").await as usize,
        n_all
    );
    node.handle.stop().await;
}

#[actix_rt::test]
async fn a_corrupt_shipper_state_file_is_rebuilt_from_the_bucket_not_trusted() {
    let mut s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("strata.yml");
    std::fs::write(
        &cfg,
        node_config(
            &dir.path().join("data"),
            &format!("127.0.0.1:{port}"),
            &s3.bucket_yaml(),
        ),
    )
    .unwrap();
    let log = dir.path().join("node.log");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}");
    let tsdb = dir.path().join("data/tsdb");
    let bucket = s3.bucket_dir();

    let mut node = spawn_node(&cfg, &log);
    wait_ready(&base, &log).await;
    let (first, second, n1, n_all) = two_batches();
    remote_write(&base, first).await;
    if let Err(e) = shipped_all(&base, &s3, n1).await {
        panic!("first batch not shipped: {e}; the node's log:\n{}", logs());
    }
    let shipped_before: BTreeSet<String> = bucket_metas(&bucket).keys().cloned().collect();

    // Cut more blocks while the bucket is down, so some local blocks are not shipped; crash.
    s3.stop().await;
    remote_write(&base, second).await;
    if let Err(e) = Wait::new("the second batch cut into blocks", SHIP_LIMIT)
        .until(|| async { local_blocks(&tsdb).len() >= n_all })
        .await
    {
        panic!("{e}; the node's log:\n{}", logs());
    }
    node.child.kill().expect("SIGKILL");
    node.child.wait().expect("reap");
    // What the bucket holds now, not what it held before the stop: the shipper may have
    // completed one more upload between that listing and the stop.
    let shipped_at_kill: BTreeSet<String> = bucket_metas(&bucket).keys().cloned().collect();
    assert!(shipped_at_kill.is_superset(&shipped_before));
    let unshipped: Vec<String> = local_blocks(&tsdb)
        .into_iter()
        .filter(|u| !shipped_at_kill.contains(u))
        .collect();
    assert!(!unshipped.is_empty());

    // Truncated JSON that claims an unshipped block was uploaded: must not be believed.
    let state = tsdb.join("thanos.shipper.json");
    std::fs::write(
        &state,
        format!("{{\"version\":1,\"uploaded\":[\"{}\",", unshipped[0]),
    )
    .unwrap();

    s3.restart().await;
    let node = spawn_node(&cfg, &log);
    wait_ready(&base, &log).await;
    let done = Wait::new("every local block shipped after the restart", SHIP_LIMIT)
        .until(|| async {
            let local = local_blocks(&tsdb);
            local
                .iter()
                .all(|u| bucket.join(u).join("meta.json").exists())
                && metric_at(&base, "strata_shipper_pending_blocks").await == 0.0
                // The S3 server logs a PUT after writing its file: let the log catch up
                // with the files before comparing the two.
                && s3.meta_puts().len() >= bucket_metas(&bucket).len()
        })
        .await;
    if let Err(e) = done {
        panic!("{e}; the node's log:\n{}", logs());
    }
    let metas = bucket_metas(&bucket);
    assert_eq!(
        metas.keys().cloned().collect::<BTreeSet<_>>(),
        local_blocks(&tsdb).into_iter().collect::<BTreeSet<_>>()
    );
    let puts = s3.meta_puts();
    assert!(
        no_duplicates(&puts),
        "a shipped block was uploaded again: {puts:?}"
    );
    assert_eq!(puts.len(), metas.len());
    assert_eq!(
        metric_at(&base, "strata_shipper_uploads_total").await as usize,
        unshipped.len(),
        "only the unshipped blocks are uploaded"
    );
    let rebuilt: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap())
        .expect("state file rewritten as JSON");
    assert_eq!(rebuilt["version"], 1);
    let listed: BTreeSet<String> = serde_json::from_value(rebuilt["uploaded"].clone()).unwrap();
    assert_eq!(listed, metas.keys().cloned().collect::<BTreeSet<_>>());
    assert!(
        logs().contains("corrupt"),
        "the node says it rebuilt the state"
    );
    drop(node);
}

/// The real binary with `cfg`, logging to `log`.
fn spawn_node(cfg: &Path, log: &Path) -> ChildGuard {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child: Child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["node", "--config"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(out))
        .spawn()
        .expect("start strata");
    ChildGuard::new(child, "strata")
}

/// `strata tools bucket verify --config cfg`: (success, stdout).
pub fn cli_verify(cfg: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tools", "bucket", "verify", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn count_puts(s3: &S3Server, key: &str) -> usize {
    s3.log()
        .iter()
        .filter(|l| l.method == "PUT" && l.status == 200 && l.key == key)
        .count()
}

#[actix_rt::test]
async fn a_node_killed_mid_upload_reuploads_the_block_completely_after_restart() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("strata.yml");
    std::fs::write(
        &cfg,
        node_config(
            &dir.path().join("data"),
            &format!("127.0.0.1:{port}"),
            &s3.bucket_yaml(),
        ),
    )
    .unwrap();
    let log = dir.path().join("node.log");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}");

    // A deterministic slow network: the first block's index upload hangs at the server.
    s3.hold_puts("/index");
    let mut node = spawn_node(&cfg, &log);
    wait_ready(&base, &log).await;
    let now = now_ms() / 1000 * 1000;
    let (body, _) = synthetic(3, now - 6 * BLOCK_MS, now, 500);
    remote_write(&base, encode(&body)).await;
    let held = Wait::new(
        "an index upload held at the server",
        Duration::from_secs(30),
    )
    .until_some(|| async { s3.held().first().cloned() })
    .await
    .unwrap_or_else(|e| panic!("{e}; the node's log:\n{}", logs()));
    let ulid = held.trim_end_matches("/index").to_string();

    node.child.kill().expect("SIGKILL");
    node.child.wait().expect("reap");
    let chunk_key = format!("{ulid}/chunks/000001");
    assert_eq!(
        count_puts(&s3, &chunk_key),
        1,
        "chunks went up before the kill"
    );
    assert!(
        !s3.bucket_dir().join(&ulid).join("meta.json").exists(),
        "partial block must have no meta.json"
    );
    let (ok, out) = cli_verify(&cfg);
    assert!(
        ok && out.contains("0 problems") && out.contains("1 partial uploads"),
        "verify after the kill:\n{out}"
    );
    s3.release();

    let node = spawn_node(&cfg, &log);
    wait_ready(&base, &log).await;
    let tsdb = dir.path().join("data/tsdb");
    let bucket = s3.bucket_dir();
    // Nothing was complete before the kill, so the restarted node uploads every block.
    let done = Wait::new("every block shipped after the restart", SHIP_LIMIT)
        .until(|| async {
            let local = local_blocks(&tsdb);
            !local.is_empty()
                && local
                    .iter()
                    .all(|u| bucket.join(u).join("meta.json").exists())
                && metric_at(&base, "strata_shipper_uploads_total").await as usize >= local.len()
        })
        .await;
    if let Err(e) = done {
        panic!("{e}; the node's log:\n{}", logs());
    }
    let staging = tsdb.join("thanos/upload");
    let staged = || {
        std::fs::read_dir(&staging)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        staged().is_empty(),
        "staging dir left behind: {:?}",
        staged()
    );
    drop(node);

    assert_eq!(count_puts(&s3, &format!("{ulid}/meta.json")), 1);
    assert_eq!(
        count_puts(&s3, &chunk_key),
        2,
        "the block was uploaded again from its first file"
    );
    assert!(
        count_puts(&s3, &format!("{ulid}/index")) >= 1,
        "the index arrived after the restart"
    );
    let puts = s3.meta_puts();
    assert!(no_duplicates(&puts), "{puts:?}");
    assert!(
        s3.violations().is_empty(),
        "a meta.json arrived before its files: {:?}",
        s3.violations()
    );
    let (ok, out) = cli_verify(&cfg);
    let n = bucket_metas(&bucket).len();
    assert!(
        ok && out.contains(&format!(
            "verified {n} blocks: 0 problems, 0 partial uploads"
        )),
        "verify after restart:\n{out}"
    );
}
