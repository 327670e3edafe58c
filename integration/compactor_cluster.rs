//! Compaction spread over the cluster: three real `strata node` processes share a filesystem
//! bucket with eight streams and the policy `compactor: 2`. The two compactors split the
//! streams by rendezvous hashing, each stream under its own lease in the bucket; SIGKILL one
//! and, once its leases expire, its streams are held by live compactors. Throughout, sampled
//! every 100 ms, no stream is ever held by two nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_testing::{free_ports, free_udp_port, ChildGuard, ADMIN_TOKEN};

use crate::cluster::{admin_get, block_in_bucket, spawn};

const STREAMS: usize = 8;

fn config(dir: &Path, i: usize, webs: &[u16], rpcs: &[u16], gossip: &[u16]) -> PathBuf {
    let id = format!("n{}", i + 1);
    let token = dir.join("admin-token");
    std::fs::write(&token, ADMIN_TOKEN).unwrap();
    let join: Vec<String> = gossip
        .iter()
        .filter(|p| **p != gossip[i])
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    // n1 and n2 start as the compactors; n3 is the spare the policy may pick.
    let roles = if i < 2 {
        "query_planner, compactor"
    } else {
        "query_planner"
    };
    let yaml = format!(
        "global:\n  external_labels: {{cluster: test}}\nnode:\n  id: {id}\n  web_listen: 127.0.0.1:{web}\n  \
         gossip_listen: 127.0.0.1:{g}\n  rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {data}\n  roles: [{roles}]\n\
         cluster:\n  join: [{join}]\n  role_policy: {{compactor: 2}}\n\
         compactor: {{interval: 1s, consistency_delay: 0s}}\n\
         bucket:\n  type: filesystem\n  filesystem: {{dir: {bucket}}}\nadmin:\n  token_file: {token}\n",
        web = webs[i],
        g = gossip[i],
        rpc = rpcs[i],
        data = dir.join(&id).display(),
        join = join.join(", "),
        bucket = dir.join("bucket").display(),
        token = token.display(),
    );
    let path = dir.join(format!("{id}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The streams each reachable node says it holds now.
async fn held(webs: &[(String, u16)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (id, port) in webs {
        let Some(v) = admin_get(*port, "/api/v1/admin/roles").await else {
            continue;
        };
        let streams: BTreeSet<String> = v["data"]["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["role"] == "compactor"))
            .and_then(|c| c["detail"]["held_streams"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        out.insert(id.clone(), streams);
    }
    out
}

/// Fails if one stream is held by two nodes.
fn assert_disjoint(h: &BTreeMap<String, BTreeSet<String>>) {
    let mut seen: BTreeMap<&String, &String> = BTreeMap::new();
    for (node, streams) in h {
        for s in streams {
            if let Some(other) = seen.insert(s, node) {
                panic!("stream {s} held by {other} and {node} at once: {h:?}");
            }
        }
    }
}

/// Samples the holders until `done` says so (or the timeout passes), checking every sample.
async fn watch_until(
    what: &str,
    webs: &[(String, u16)],
    timeout: Duration,
    done: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let h = held(webs).await;
        assert_disjoint(&h);
        if done(&h) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {h:?}"
        );
        // Sampling the invariant at a fixed rate is the test, not a wait for a state.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn two_compactors_split_the_streams_and_a_killed_ones_streams_move_after_its_leases_expire() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    for s in 0..STREAMS {
        block_in_bucket(&bucket, &format!("c{s}"), "r1");
    }
    let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let ports = free_ports(6);
    let (webs, rpcs) = (&ports[..3], &ports[3..]);
    let mut guards: Vec<Option<ChildGuard>> = (0..3)
        .map(|i| Some(spawn(&config(dir.path(), i, webs, rpcs, &gossip))))
        .collect();
    let nodes: Vec<(String, u16)> = (0..3).map(|i| (format!("n{}", i + 1), webs[i])).collect();
    for (_, port) in &nodes {
        strata_testing::wait_http_ok(
            &format!("http://127.0.0.1:{port}/-/healthy"),
            Duration::from_secs(30),
        )
        .await;
    }

    // Both compactors hold a share; together they hold every stream.
    let split = watch_until(
        "the two compactors to hold every stream between them",
        &nodes,
        Duration::from_secs(60),
        |h| {
            let n1 = h.get("n1").map_or(0, |s| s.len());
            let n2 = h.get("n2").map_or(0, |s| s.len());
            n1 > 0 && n2 > 0 && n1 + n2 == STREAMS
        },
    )
    .await;
    println!("split: {split:?}");
    assert!(split.get("n3").is_none_or(|s| s.is_empty()));
    let n2_streams = split["n2"].clone();

    // SIGKILL n2: its leases are not released, so its streams stay untaken until they expire;
    // then live compactors hold all of them, and never one stream twice.
    let killed = Instant::now();
    if let Some(mut g) = guards[1].take() {
        g.kill();
    }
    let live: Vec<(String, u16)> = nodes.iter().filter(|(id, _)| id != "n2").cloned().collect();
    let after = watch_until(
        "live compactors to hold every stream",
        &live,
        Duration::from_secs(90),
        |h| h.values().map(|s| s.len()).sum::<usize>() == STREAMS,
    )
    .await;
    println!(
        "after the kill ({:?}): {after:?}, n2 had {n2_streams:?}",
        killed.elapsed()
    );
    for s in &n2_streams {
        assert!(
            after.values().any(|held| held.contains(s)),
            "{s} not taken over"
        );
    }
    // The bucket's lease objects agree: none is held by the dead node.
    let v: Value = admin_get(webs[0], "/api/v1/admin/cluster").await.unwrap();
    let leases = v["data"]["singletons"]["compactor"]["leases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(leases.len(), STREAMS, "{v}");
    assert!(leases.iter().all(|l| l["holder"] != "n2"), "{leases:?}");
    drop(guards);
}
