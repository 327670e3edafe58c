//! Real-socket tests of SWIM membership: convergence, meta updates, failure detection,
//! restart, broadcasts, authentication, garbage and partitions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;
use strata::cluster::membership::{MemberState, MembershipEvent};
use strata::cluster::roles::{RoleAssignments, RoleUpdate};
use strata_testing::membership::{live_ids, node_meta, sees_all, start_member};
use strata_testing::wait_until;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_and_see_meta_updates() {
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    let c = start_member("c", &[a.local_addr()], None, None).await;
    let took = wait_until("3 nodes converge", LIMIT, || async {
        sees_all(&[&a, &b, &c], 3)
    })
    .await;
    println!("FIGURE convergence of 3 nodes: {took:?}");
    assert_eq!(live_ids(&b), vec!["a", "b", "c"]);
    let seen_c = a
        .members()
        .into_iter()
        .find(|m| m.meta.node_id == "c")
        .unwrap();
    assert_eq!(seen_c.meta.gossip_addr, c.local_addr());

    let mut events = a.subscribe();
    let mut m = c.local_meta();
    m.roles = vec!["compactor".into(), "store_shard".into()];
    m.role_epoch = 7;
    c.update_meta(m.clone()).await.unwrap();
    let took = wait_until("meta update seen", LIMIT, || async {
        [&a, &b].iter().all(|h| {
            h.members()
                .iter()
                .any(|x| x.meta.node_id == "c" && x.meta.role_epoch == 7 && x.state.is_live())
        })
    })
    .await;
    println!("FIGURE meta update convergence (3 nodes): {took:?}");
    assert_eq!(a.live_nodes_with_role("compactor"), vec!["c"]);
    // The event stream reported it as an update of a live node.
    let mut saw_update = false;
    while let Ok(e) = events.try_recv() {
        assert_ne!(
            e,
            MembershipEvent::Down("c".into()),
            "a meta update is not a death"
        );
        if let MembershipEvent::Updated(meta) = e {
            saw_update |= meta.node_id == "c" && meta.role_epoch == 7;
        }
    }
    assert!(saw_update, "Updated(c) event");
    // The node id cannot be changed.
    let mut bad = c.local_meta();
    bad.node_id = "z".into();
    assert!(c.update_meta(bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_marked_down_then_rejoins_after_restart() {
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    let c = start_member("c", &[a.local_addr()], None, None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b, &c], 3) }).await;
    let old_inc = a
        .members()
        .into_iter()
        .find(|m| m.meta.node_id == "c")
        .unwrap()
        .incarnation;
    let mut events = a.subscribe();
    let c_addr = c.local_addr();
    c.abort();
    let took = wait_until("c marked down", LIMIT, || async {
        [&a, &b].iter().all(|h| {
            h.members()
                .iter()
                .any(|m| m.meta.node_id == "c" && m.state == MemberState::Down)
        })
    })
    .await;
    println!("FIGURE dead-node detection (3 nodes, SIGKILL-like abort): {took:?}");
    assert_eq!(live_ids(&a), vec!["a", "b"]);
    let mut saw_down = false;
    while let Ok(e) = events.try_recv() {
        saw_down |= e == MembershipEvent::Down("c".into());
    }
    assert!(saw_down, "Down(c) event");

    // Restart with the same id; try the same port first (a real restart), else any port.
    let bind = std::net::UdpSocket::bind(c_addr)
        .ok()
        .and_then(|s| s.local_addr().ok());
    let c2 = start_member("c", &[a.local_addr()], None, bind).await;
    let took = wait_until("restarted c up again", LIMIT, || async {
        [&a, &b].iter().all(|h| {
            h.members().iter().any(|m| {
                m.meta.node_id == "c" && m.state == MemberState::Alive && m.incarnation > old_inc
            })
        })
    })
    .await;
    println!("FIGURE restarted node seen up: {took:?}");
    wait_until("c2 sees everyone", LIMIT, || async {
        c2.live_members().len() == 3
    })
    .await;
    let mut saw_up = false;
    while let Ok(e) = events.try_recv() {
        saw_up |= matches!(e, MembershipEvent::Up(ref m) if m.node_id == "c");
    }
    assert!(saw_up, "Up(c) after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_is_seen_as_down() {
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b], 2) }).await;
    b.leave().await.unwrap();
    wait_until("b down after leave", LIMIT, || async {
        live_ids(&a) == vec!["a"]
    })
    .await;
    wait_until("task stopped", LIMIT, || async { !b.is_running() }).await;
    assert!(b.broadcast(vec![1]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_assignment_broadcasts_converge_highest_version_wins() {
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    let c = start_member("c", &[a.local_addr()], None, None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b, &c], 3) }).await;

    // Each node keeps a map and folds in what it hears, as the NodeSupervisor will.
    let nodes = [a.clone(), b.clone(), c.clone()];
    let maps: Vec<std::sync::Arc<std::sync::Mutex<RoleAssignments>>> =
        (0..3).map(|_| Default::default()).collect();
    for (h, map) in nodes.iter().zip(&maps) {
        let mut rx = h.subscribe_broadcasts();
        let map = map.clone();
        tokio::spawn(async move {
            while let Ok(b) = rx.recv().await {
                if let Ok(u) = RoleUpdate::decode(&b.payload) {
                    map.lock().unwrap().apply(&u);
                }
            }
        });
    }
    // a assigns roles to c at version 1 and 2; b makes a concurrent edit at version 2 that
    // loses the tie-break ("admin-a" > "admin-b" is false, so b's wins... compute below).
    let edits = [
        (0usize, "c", 1u64, vec!["compactor"], "admin-a"),
        (0, "c", 2, vec!["compactor", "rule_evaluator"], "admin-a"),
        (1, "c", 2, vec!["query_planner"], "admin-b"),
        (2, "a", 5, vec!["store_shard"], "admin-c"),
    ];
    let mut expected = RoleAssignments::new();
    for (from, node, version, roles, by) in &edits {
        let u = RoleUpdate {
            node: node.to_string(),
            entry: strata::cluster::roles::RoleEntry {
                version: *version,
                roles: roles.iter().map(|r| r.to_string()).collect(),
                updated_by: by.to_string(),
            },
        };
        expected.apply(&u);
        maps[*from].lock().unwrap().apply(&u);
        nodes[*from].broadcast(u.encode().unwrap()).await.unwrap();
    }
    assert_eq!(expected.roles_of("c"), ["query_planner".to_string()]);
    let took = wait_until("role maps converge", LIMIT, || async {
        maps.iter().all(|m| *m.lock().unwrap() == expected)
    })
    .await;
    println!("FIGURE role-assignment broadcast convergence: {took:?}");
    assert!(
        a.broadcast(vec![0u8; 10_000]).await.is_err(),
        "oversized broadcast refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_key_is_not_admitted() {
    let a = start_member("a", &[], Some(b"right"), None).await;
    let b = start_member("b", &[a.local_addr()], Some(b"right"), None).await;
    wait_until("keyed pair converges", LIMIT, || async {
        sees_all(&[&a, &b], 2)
    })
    .await;
    let intruder = start_member("x", &[a.local_addr()], Some(b"wrong"), None).await;
    let plain = start_member("y", &[a.local_addr()], None, None).await;
    wait_until("intruder packets dropped", LIMIT, || async {
        a.stats().dropped.unauthenticated >= 4
    })
    .await;
    assert_eq!(live_ids(&a), vec!["a", "b"]);
    assert_eq!(live_ids(&b), vec!["a", "b"]);
    assert_eq!(live_ids(&intruder), vec!["x"]);
    assert_eq!(live_ids(&plain), vec!["y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted_and_harmless() {
    let a = start_member("a", &[], Some(b"k"), None).await;
    let b = start_member("b", &[a.local_addr()], Some(b"k"), None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b], 2) }).await;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let bad = |a: &strata::cluster::membership::MembershipHandle| {
        let d = a.stats().dropped;
        d.malformed + d.unauthenticated
    };
    // Sent in small batches so the kernel's socket buffer never overflows (a datagram lost
    // there would never be counted).
    for batch in 0..20u64 {
        for i in 0..10u64 {
            let len = 1 + ((batch * 10 + i) * 7) % 300;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            sock.send_to(&bytes, a.local_addr()).unwrap();
        }
        let want = (batch + 1) * 10;
        wait_until("garbage counted", LIMIT, || async { bad(&a) == want }).await;
    }
    sock.send_to(&vec![0x53u8; 5000], a.local_addr()).unwrap();
    wait_until("oversized counted", LIMIT, || async {
        a.stats().dropped.oversized == 1
    })
    .await;
    assert_eq!(bad(&a), 200);
    // Still working: a meta update goes through.
    let mut m = b.local_meta();
    m.role_epoch = 42;
    b.update_meta(m).await.unwrap();
    wait_until("update after garbage", LIMIT, || async {
        a.members()
            .iter()
            .any(|m| m.meta.node_id == "b" && m.meta.role_epoch == 42)
    })
    .await;
    assert!(a.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_via_drop_filter_and_heal() {
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    let c = start_member("c", &[a.local_addr()], None, None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b, &c], 3) }).await;
    // Isolate c completely.
    c.set_drop_filter(|_| true);
    wait_until("c partitioned away", LIMIT, || async {
        live_ids(&a) == vec!["a", "b"] && live_ids(&b) == vec!["a", "b"]
    })
    .await;
    assert!(c.stats().dropped.filtered > 0);
    c.clear_drop_filter();
    wait_until("healed", Duration::from_secs(40), || async {
        sees_all(&[&a, &b, &c], 3)
    })
    .await;
}

/// A node restarted on another address (new pod IP) before anyone noticed its death: peers
/// switch to the newer incarnation, and the old address being declared dead later does not
/// turn into a Down event for the node id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_a_new_address_replaces_the_old_identity() {
    use strata::cluster::membership::{GossipBind, Membership, MembershipConfig};
    let a = start_member("a", &[], None, None).await;
    let b = start_member("b", &[a.local_addr()], None, None).await;
    let c = start_member("c", &[a.local_addr()], None, None).await;
    wait_until("converge", LIMIT, || async { sees_all(&[&a, &b, &c], 3) }).await;
    let old = a.member("c").unwrap();
    let mut events = a.subscribe();
    c.abort();

    // Pre-bound socket, as a node started with an inherited listener would do.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let new_addr = sock.local_addr().unwrap();
    assert_ne!(new_addr, old.meta.gossip_addr);
    let mut cfg = MembershipConfig::new(GossipBind::Socket(sock));
    cfg.seeds = vec![a.local_addr().to_string()];
    let c2 = Membership::start(cfg, node_meta("c", &["store_shard"]))
        .await
        .unwrap();
    assert_eq!(c2.local_addr(), new_addr);
    wait_until("new incarnation seen", LIMIT, || async {
        [&a, &b].iter().all(|h| {
            h.member("c").is_some_and(|m| {
                m.incarnation > old.incarnation
                    && m.meta.gossip_addr == new_addr
                    && m.state.is_live()
            })
        })
    })
    .await;
    // Let enough gossip flow for the old address to be probed, suspected and declared down
    // (about 3 s of probes at 2 per second per node).
    let start_in = a.stats().packets_in;
    wait_until("traffic", LIMIT, || async {
        a.stats().packets_in > start_in + 60
    })
    .await;
    assert!(a.member("c").unwrap().state.is_live());
    while let Ok(e) = events.try_recv() {
        assert_ne!(e, MembershipEvent::Down("c".into()));
    }
}
