//! In-process simulation of N memberships on loopback to measure gossip cost per node, the time
//! to converge, to spread a meta update and to detect a killed node. Ignored by default (it
//! runs for about half a minute); run with
//! `cargo test --test cluster_gossip_bandwidth -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::future::ready;
use std::time::{Duration, Instant};
use strata::cluster::membership::{
    GossipBind, MemberState, Membership, MembershipConfig, MembershipHandle,
};
use strata_testing::membership::{node_meta, sees_all};
use strata_testing::Wait;

const POLL: Duration = Duration::from_millis(50);

async fn cluster(n: usize, key: Option<&[u8]>) -> Vec<MembershipHandle> {
    let mut nodes: Vec<MembershipHandle> = Vec::new();
    for i in 0..n {
        let mut cfg = MembershipConfig::new(GossipBind::Addr("127.0.0.1:0".parse().unwrap()));
        cfg.expected_cluster_size = n as u32;
        cfg.cluster_key = key.map(|k| k.to_vec());
        if let Some(first) = nodes.first() {
            cfg.seeds = vec![first.local_addr().to_string()];
        }
        let m = node_meta(
            &format!("node-{i:02}"),
            &["scraper_shipper", "store_shard", "query_planner"],
        );
        nodes.push(Membership::start(cfg, m).await.unwrap());
    }
    nodes
}

async fn measure(n: usize) {
    let started = Instant::now();
    let nodes = cluster(n, Some(b"bench-key")).await;
    let refs: Vec<&MembershipHandle> = nodes.iter().collect();
    Wait::new("converged", Duration::from_secs(120))
        .poll(POLL)
        .until(|| ready(sees_all(&refs, n)))
        .await
        .unwrap();
    println!("FIGURE n={n}: converged in {:?}", started.elapsed());

    // Not synchronisation but a measurement warm-up: the post-join catch-up rounds (at least
    // 6 s) must be over so the window sees steady state, and no stat says when they are.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let window = Duration::from_secs(10);
    let before: Vec<_> = nodes.iter().map(|h| h.stats()).collect();
    let t0 = Instant::now();
    // The measurement window itself.
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let after: Vec<_> = nodes.iter().map(|h| h.stats()).collect();
    let (mut out_b, mut in_b, mut out_p) = (0u64, 0u64, 0u64);
    for (a, b) in after.iter().zip(&before) {
        out_b += a.bytes_out - b.bytes_out;
        in_b += a.bytes_in - b.bytes_in;
        out_p += a.packets_out - b.packets_out;
    }
    let per = |x: u64| x as f64 / n as f64 / secs;
    println!(
        "FIGURE n={n}: steady state per node: {:.0} B/s out, {:.0} B/s in, {:.1} packets/s out",
        per(out_b),
        per(in_b),
        per(out_p)
    );
    assert!(sees_all(&refs, n), "still converged after the window");

    // One more node joining the converged cluster.
    let t = Instant::now();
    let mut cfg = MembershipConfig::new(GossipBind::Addr("127.0.0.1:0".parse().unwrap()));
    cfg.expected_cluster_size = n as u32;
    cfg.cluster_key = Some(b"bench-key".to_vec());
    cfg.seeds = vec![nodes[0].local_addr().to_string()];
    let late = Membership::start(cfg, node_meta("late-joiner", &["store_shard"]))
        .await
        .unwrap();
    Wait::new("late joiner seen by all", Duration::from_secs(60))
        .poll(POLL)
        .until(|| {
            ready(
                nodes
                    .iter()
                    .all(|h| h.member("late-joiner").is_some_and(|m| m.state.is_live())),
            )
        })
        .await
        .unwrap();
    let seen_by_all = t.elapsed();
    Wait::new("late joiner sees all", Duration::from_secs(60))
        .poll(POLL)
        .until(|| ready(late.live_count() == n + 1))
        .await
        .unwrap();
    println!(
        "FIGURE n={n}: a node joining later is seen by all after {seen_by_all:?} and sees all after {:?}",
        t.elapsed()
    );
    late.leave().await.unwrap();
    Wait::new("late joiner gone", Duration::from_secs(60))
        .poll(POLL)
        .until(|| ready(nodes.iter().all(|h| h.live_count() == n)))
        .await
        .unwrap();

    // Meta update spread.
    let mut m = nodes[n - 1].local_meta();
    m.role_epoch = 99;
    let t = Instant::now();
    nodes[n - 1].update_meta(m).await.unwrap();
    let id = nodes[n - 1].local_id();
    let mut progress: Vec<(usize, usize, Duration)> = Vec::new();
    Wait::new("meta spread", Duration::from_secs(60))
        .poll(POLL)
        .until(|| {
            let seen = nodes
                .iter()
                .filter(|h| h.member(&id).is_some_and(|x| x.meta.role_epoch == 99))
                .count();
            let not_live = nodes
                .iter()
                .filter(|h| h.member(&id).is_some_and(|x| !x.state.is_live()))
                .count();
            if progress.last().map(|p| (p.0, p.1)) != Some((seen, not_live)) {
                progress.push((seen, not_live, t.elapsed()));
            }
            ready(seen == n)
        })
        .await
        .unwrap();
    println!("FIGURE n={n}: meta update seen by all in {:?}", t.elapsed());
    println!("  progress (seeing new meta, seeing it down, elapsed): {progress:?}");
    assert!(
        progress.iter().all(|p| p.1 == 0),
        "a meta update must not look like a death"
    );

    // Failure detection.
    let victim = nodes[1].clone();
    let vid = victim.local_id();
    let t = Instant::now();
    victim.abort();
    let others: Vec<&MembershipHandle> = nodes.iter().filter(|h| h.local_id() != vid).collect();
    let mut progress: Vec<(usize, Duration)> = Vec::new();
    Wait::new("victim down everywhere", Duration::from_secs(60))
        .poll(POLL)
        .until(|| {
            let down = others
                .iter()
                .filter(|h| h.member(&vid).is_some_and(|x| x.state == MemberState::Down))
                .count();
            if progress.last().map(|p| p.0) != Some(down) {
                progress.push((down, t.elapsed()));
            }
            ready(down == others.len())
        })
        .await
        .unwrap();
    let first = progress
        .iter()
        .find(|p| p.0 > 0)
        .map(|p| p.1)
        .unwrap_or_default();
    println!(
        "FIGURE n={n}: killed node first seen down after {first:?}, by all after {:?}",
        t.elapsed()
    );
    println!("  progress (nodes seeing it down, elapsed): {progress:?}");
    for h in &nodes {
        h.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, ~40 s; run with --ignored --nocapture"]
async fn gossip_cost_3_and_50_nodes() {
    measure(3).await;
    measure(50).await;
}
