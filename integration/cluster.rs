//! The cluster end to end: three real `strata node` processes on 127.0.0.1 sharing a bucket,
//! behind a real haproxy (Debian's package) that probes `/-/ready`. Membership converges, a
//! role moved through haproxy stops on one node and starts on another, queries through haproxy
//! keep working, a SIGKILLed node is seen down and its singleton role re-owned, and a gossip
//! partition never yields two active compactors.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_testing::http::try_wait_http_ok;
use strata_testing::{
    free_port, free_ports, free_udp_port, http_client, require_binary, wait_until, ChildGuard,
    TestNode, Wait, ADMIN_TOKEN,
};

struct ClusterNode {
    id: String,
    web: u16,
    guard: Option<ChildGuard>,
}

/// Three `strata node` processes sharing a filesystem bucket; n1 starts with the compactor.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<ClusterNode>,
    /// What every node's scrape config lists: the three nodes' /metrics and one dead target.
    scrape_targets: Vec<String>,
}

fn write_config(
    dir: &Path,
    id: &str,
    (web, gossip, rpc): (u16, u16, u16),
    seeds: &[u16],
    roles: &[&str],
    scrape_targets: &[String],
) -> std::path::PathBuf {
    let token = dir.join("admin-token");
    std::fs::write(&token, ADMIN_TOKEN).expect("token");
    let join: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let yaml = format!(
        "global:\n  external_labels: {{cluster: test}}\nnode:\n  id: {id}\n  web_listen: 127.0.0.1:{web}\n  gossip_listen: 127.0.0.1:{gossip}\n  rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {data}\n  roles: [{roles}]\ncluster:\n  join: [{join}]\n  role_policy: {{compactor: 1}}\nbucket:\n  type: filesystem\n  filesystem: {{dir: {bucket}}}\nadmin:\n  token_file: {token}\n",
        data = dir.join(id).display(),
        roles = roles.join(", "),
        join = join.join(", "),
        bucket = dir.join("bucket").display(),
        token = token.display(),
    );
    let targets: Vec<String> = scrape_targets.iter().map(|t| format!("'{t}'")).collect();
    let yaml = format!(
        "{yaml}scrape_configs:\n  - job_name: strata\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let path = dir.join(format!("{id}.yml"));
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Starts a node; its log goes to `<config>.log` so a failure can show it.
pub(crate) fn spawn(config: &Path) -> ChildGuard {
    let log = std::fs::File::create(config.with_extension("log")).expect("node log file");
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["node", "--config"])
        .arg(config)
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start strata node");
    ChildGuard::new(child, "strata")
}

pub(crate) async fn admin_get(port: u16, path: &str) -> Option<Value> {
    let resp = http_client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

fn live_members(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["data"]["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["state"] != "down")
                .filter_map(|m| m["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn role_running(v: &Value, role: &str) -> bool {
    v["data"]["roles"].as_array().is_some_and(|a| {
        a.iter()
            .any(|r| r["role"] == role && r["state"] == "running")
    })
}

/// Whether the node on `port` reports `role` running.
async fn runs(port: u16, role: &str) -> bool {
    admin_get(port, "/api/v1/admin/roles")
        .await
        .is_some_and(|v| role_running(&v, role))
}

fn start_haproxy(dir: &Path, ports: &[u16]) -> (ChildGuard, u16) {
    let bin = require_binary("haproxy");
    let front = free_port();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server n{} 127.0.0.1:{p} check\n", i + 1))
        .collect();
    let cfg = format!(
        "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 2\n    option redispatch\nfrontend f\n    bind 127.0.0.1:{front}\n    default_backend b\nbackend b\n    balance roundrobin\n    option httpchk GET /-/ready\n    http-check expect status 200\n    default-server inter 300ms fall 2 rise 1\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("haproxy.cfg");
    let child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy");
    (ChildGuard::new(child, "haproxy"), front)
}

async fn query_ok(base: &str) -> bool {
    let resp = http_client()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", "1+1")])
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .is_ok_and(|v| v["data"]["result"][1] == "2"),
        _ => false,
    }
}

/// The sorted scrape URLs of the active targets a node lists (`local`: only its own share).
async fn listed_target_urls(port: u16, local: bool) -> Option<Vec<String>> {
    let mut req = http_client().get(format!("http://127.0.0.1:{port}/api/v1/targets"));
    if local {
        req = req.header(strata::http::targets_cluster::LOCAL_ONLY, "test");
    }
    let v = req.send().await.ok()?.json::<Value>().await.ok()?;
    let mut urls: Vec<String> = v["data"]["activeTargets"]
        .as_array()?
        .iter()
        .filter_map(|t| t["scrapeUrl"].as_str().map(String::from))
        .collect();
    urls.sort();
    Some(urls)
}

/// Puts `roles` on node `id` through the admin API at `base`; panics unless it answers 200.
async fn set_roles(base: &str, id: &str, roles: &[&str]) {
    let resp = http_client()
        .put(format!("{base}/api/v1/admin/nodes/{id}/roles"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "roles": roles }))
        .send()
        .await
        .expect("PUT roles");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
}

impl Cluster {
    /// Writes the three configs, starts the processes and waits until each is ready.
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
        let ports = free_ports(7);
        let webs: Vec<u16> = ports[..3].to_vec();
        // Every node has the same scrape config: the three nodes' /metrics and one dead
        // target, spread over the ScraperShippers two replicas each.
        let mut scrape_targets: Vec<String> =
            webs.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        scrape_targets.push(format!("127.0.0.1:{}", ports[6]));
        let mut nodes: Vec<ClusterNode> = Vec::new();
        for i in 0..3 {
            let id = format!("n{}", i + 1);
            let (web, rpc) = (webs[i], ports[3 + i]);
            let seeds: Vec<u16> = gossip.iter().copied().filter(|p| *p != gossip[i]).collect();
            let roles: &[&str] = if i == 0 {
                &["query_planner", "scraper_shipper", "compactor"]
            } else {
                &["query_planner", "scraper_shipper"]
            };
            let config = write_config(
                dir.path(),
                &id,
                (web, gossip[i], rpc),
                &seeds,
                roles,
                &scrape_targets,
            );
            nodes.push(ClusterNode {
                id,
                web,
                guard: Some(spawn(&config)),
            });
        }
        for n in &nodes {
            let ready = try_wait_http_ok(
                &format!("http://127.0.0.1:{}/-/ready", n.web),
                Duration::from_secs(30),
            )
            .await;
            if let Err(e) = ready {
                let log = std::fs::read_to_string(dir.path().join(format!("{}.log", n.id)));
                panic!("{} never became ready ({e}); its log:\n{log:?}", n.id);
            }
        }
        Cluster {
            dir,
            nodes,
            scrape_targets,
        }
    }

    /// The HTTP port of node `id`.
    fn web(&self, id: &str) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.web)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Every node sees all three alive.
    async fn membership_converges(&self) {
        let started = Instant::now();
        for n in &self.nodes {
            let ok = Wait::new(
                format!("{} to see all members", n.id),
                Duration::from_secs(20),
            )
            .until(|| async {
                admin_get(n.web, "/api/v1/admin/cluster")
                    .await
                    .is_some_and(|v| live_members(&v) == vec!["n1", "n2", "n3"])
            })
            .await;
            if let Err(e) = ok {
                panic!(
                    "{e}; it sees {:?}",
                    admin_get(n.web, "/api/v1/admin/cluster").await
                );
            }
        }
        println!("membership converged in {:?}", started.elapsed());
    }

    /// haproxy in front of the three nodes, once queries through it work; returns the guard
    /// and its base URL.
    async fn haproxy_answers_queries(&self) -> (ChildGuard, String) {
        let webs: Vec<u16> = self.nodes.iter().map(|n| n.web).collect();
        let (guard, front) = start_haproxy(self.dir.path(), &webs);
        let lb = format!("http://127.0.0.1:{front}");
        wait_until(
            "queries through haproxy to work",
            Duration::from_secs(15),
            || query_ok(&lb),
        )
        .await;
        (guard, lb)
    }

    /// Each node scrapes only its share of the targets, yet every node (and so haproxy) lists
    /// all of them, each once although two replicas scrape it.
    async fn targets_are_sharded_and_listed_once(&self) {
        let mut want: Vec<String> = self
            .scrape_targets
            .iter()
            .map(|t| format!("http://{t}/metrics"))
            .collect();
        want.sort();
        wait_until(
            "the targets spread two replicas each",
            Duration::from_secs(20),
            || async {
                let mut scraped = 0;
                for n in &self.nodes {
                    scraped += listed_target_urls(n.web, true).await.map_or(0, |u| u.len());
                }
                scraped == 2 * want.len()
            },
        )
        .await;
        for n in &self.nodes {
            let listed = Wait::new(
                format!("{} to list every target once", n.id),
                Duration::from_secs(20),
            )
            .until(|| async { listed_target_urls(n.web, false).await.as_ref() == Some(&want) })
            .await;
            if let Err(e) = listed {
                panic!("{e}; it lists {:?}", listed_target_urls(n.web, false).await);
            }
        }
    }

    /// Moves the compactor from n1 to n2 through haproxy (whichever node answers): it stops on
    /// n1, starts on n2, the admin API refuses a request without the token, and queries
    /// through haproxy keep working.
    async fn compactor_moves_through(&self, lb: &str) {
        let moved = Instant::now();
        set_roles(lb, "n1", &["query_planner", "scraper_shipper"]).await;
        set_roles(lb, "n2", &["query_planner", "scraper_shipper", "compactor"]).await;
        let (n1, n2) = (self.web("n1"), self.web("n2"));
        wait_until(
            "the compactor to stop on n1",
            Duration::from_secs(15),
            || async {
                admin_get(n1, "/api/v1/admin/roles")
                    .await
                    .is_some_and(|v| !role_running(&v, "compactor"))
            },
        )
        .await;
        wait_until(
            "the compactor to start on n2",
            Duration::from_secs(15),
            || runs(n2, "compactor"),
        )
        .await;
        println!("role move converged in {:?}", moved.elapsed());
        let unauth = http_client()
            .put(format!("{lb}/api/v1/admin/nodes/n1/roles"))
            .json(&serde_json::json!({"roles": []}))
            .send()
            .await
            .expect("PUT roles without a token");
        assert_eq!(unauth.status().as_u16(), 401);
        for _ in 0..10 {
            assert!(
                query_ok(lb).await,
                "a query through haproxy failed while roles moved"
            );
        }
    }

    /// A node without the query_planner role (n3 after this) forwards queries and says who
    /// served them.
    async fn a_node_without_the_planner_forwards_queries(&self) {
        let n3 = format!("http://127.0.0.1:{}", self.web("n3"));
        set_roles(&n3, "n3", &["scraper_shipper"]).await;
        wait_until(
            "n3 to forward its query to a query_planner",
            Duration::from_secs(15),
            || async {
                let Ok(r) = http_client()
                    .post(format!("{n3}/api/v1/query"))
                    .form(&[("query", "1+1")])
                    .send()
                    .await
                else {
                    return false;
                };
                let by = r
                    .headers()
                    .get("X-Strata-Served-By")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                r.status().is_success() && (by == "n1" || by == "n2")
            },
        )
        .await;
    }

    /// SIGKILLs n2, the compactor: the others see it down, haproxy keeps answering queries,
    /// the policy re-owns the compactor on a live node and no stream lease stays with n2.
    async fn killing_the_compactor_node_reowns_it(&mut self, lb: &str) {
        let killed = Instant::now();
        let n2 = self.nodes.iter_mut().find(|n| n.id == "n2").expect("n2");
        if let Some(mut g) = n2.guard.take() {
            g.kill();
        }
        let (n1, n3) = (self.web("n1"), self.web("n3"));
        wait_until("n1 to see n2 down", Duration::from_secs(15), || async {
            admin_get(n1, "/api/v1/admin/cluster")
                .await
                .is_some_and(|v| !live_members(&v).contains(&"n2".to_string()))
        })
        .await;
        println!("dead node detected after {:?}", killed.elapsed());
        wait_until(
            "queries through haproxy to recover",
            Duration::from_secs(10),
            || query_ok(lb),
        )
        .await;
        println!(
            "queries through haproxy ok {:?} after the kill",
            killed.elapsed()
        );
        wait_until(
            "a live node to take the compactor role over",
            Duration::from_secs(30),
            || async { runs(n1, "compactor").await || runs(n3, "compactor").await },
        )
        .await;
        println!("compactor re-owned {:?} after the kill", killed.elapsed());
        wait_until(
            "no compactor stream lease held by the dead node",
            Duration::from_secs(40),
            || async {
                admin_get(n1, "/api/v1/admin/cluster")
                    .await
                    .and_then(|v| {
                        v["data"]["singletons"]["compactor"]["leases"]
                            .as_array()
                            .cloned()
                    })
                    .is_some_and(|leases| leases.iter().all(|l| l["holder"] != "n2"))
            },
        )
        .await;
        println!(
            "compactor lease taken over {:?} after the kill",
            killed.elapsed()
        );
    }
}

#[actix_rt::test]
async fn three_nodes_behind_haproxy_move_roles_survive_a_kill_and_reown_singletons() {
    let mut cluster = Cluster::start().await;
    cluster.membership_converges().await;
    let (_haproxy, lb) = cluster.haproxy_answers_queries().await;
    cluster.targets_are_sharded_and_listed_once().await;
    cluster.compactor_moves_through(&lb).await;
    cluster.a_node_without_the_planner_forwards_queries().await;
    cluster.killing_the_compactor_node_reowns_it(&lb).await;
}

/// One block of a stream `{cluster=<cluster>, replica=<replica>}` written straight into a
/// filesystem bucket (meta.json last, as an upload would). Its files are not a readable block:
/// a stream of one block is never planned, so only its lease is ever taken.
pub(crate) fn block_in_bucket(bucket: &Path, cluster: &str, replica: &str) -> ulid::Ulid {
    use strata::storage::block::{BlockMeta, ThanosMeta};
    let ulid = ulid::Ulid::new();
    let dir = bucket.join(ulid.to_string());
    std::fs::create_dir_all(dir.join("chunks")).unwrap();
    std::fs::write(dir.join("index"), vec![0u8; 64]).unwrap();
    std::fs::write(dir.join("chunks/000001"), vec![0u8; 64]).unwrap();
    let mut meta = BlockMeta::new(ulid, 0, 7_200_000);
    let labels = [("cluster", cluster), ("replica", replica)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    meta.thanos = Some(ThanosMeta::new(labels, 0, "sidecar"));
    meta.write(&dir).unwrap();
    ulid
}

#[actix_rt::test]
async fn a_gossip_partition_never_gives_two_compactors_one_stream() {
    let bucket = tempfile::tempdir().unwrap();
    block_in_bucket(bucket.path(), "eu1", "r1");
    // Both nodes run every role; the stream's blocks are old enough to be looked at at once.
    let yaml = "compactor: {interval: 1s, consistency_delay: 0s}\n";
    let a = TestNode::builder()
        .filesystem_bucket(bucket.path())
        .yaml(yaml)
        .start()
        .await;
    let b = TestNode::builder()
        .filesystem_bucket(bucket.path())
        .yaml(yaml)
        .join(a.gossip_addr())
        .start()
        .await;
    // Cut gossip both ways: each side soon believes the other dead, so each believes it owns
    // every stream; only the stream's lease in the bucket keeps them apart.
    let (a_addr, b_addr) = (a.gossip_addr(), b.gossip_addr());
    a.handle
        .cluster
        .handle()
        .set_drop_filter(move |peer| peer == b_addr);
    b.handle
        .cluster
        .handle()
        .set_drop_filter(move |peer| peer == a_addr);
    let held = |v: &Value| -> Vec<String> {
        v["data"]["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["role"] == "compactor"))
            .and_then(|c| c["detail"]["held_streams"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(12);
    let (mut seen_a, mut seen_b) = (false, false);
    while Instant::now() < deadline {
        let (va, vb) = (
            a.get_json("/api/v1/admin/roles").await,
            b.get_json("/api/v1/admin/roles").await,
        );
        let (x, y) = (held(&va), held(&vb));
        assert!(
            x.iter().all(|s| !y.contains(s)),
            "both nodes hold one stream's lease at once:\n{va}\n{vb}"
        );
        seen_a |= !x.is_empty();
        seen_b |= !y.is_empty();
        // Sampling an invariant over a fixed window is the test itself, not a wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_a || seen_b, "no compactor ever took the stream");
    a.handle.stop().await;
    b.handle.stop().await;
}

#[test]
fn random_bytes_to_gossip_and_rpc_ports_are_dropped_and_the_node_stays_up() {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let node = TestNode::builder().admin_token().start().await;
        let gossip = node.gossip_addr();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..200u32 {
            let junk: Vec<u8> = (0..(i % 1500))
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            let _ = sock.send_to(&junk, gossip);
        }
        let rpc = node.handle.cluster.handle().local_meta().rpc_addr;
        for _ in 0..20 {
            if let Ok(mut s) = std::net::TcpStream::connect(rpc) {
                use std::io::Write;
                let _ = s.write_all(&[0xff; 4096]);
            }
        }
        wait_until(
            "garbage datagrams counted as dropped",
            Duration::from_secs(10),
            || async {
                let st = node.handle.cluster.handle().stats();
                st.dropped.malformed + st.dropped.oversized + st.dropped.rejected > 0
            },
        )
        .await;
        assert_eq!(node.status("/-/healthy").await, 200);
        let v = node.get_json("/api/v1/admin/cluster").await;
        assert_eq!(v["status"], "success");
        let no_token = http_client()
            .get(format!("{}/api/v1/admin/cluster", node.base))
            .send()
            .await
            .unwrap();
        assert_eq!(no_token.status().as_u16(), 401);
        node.handle.stop().await;
    });
}
