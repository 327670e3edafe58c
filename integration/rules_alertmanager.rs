//! Alerts from RuleEvaluators to a real Alertmanager 0.25 cluster of two peers (Debian's
//! `prometheus-alertmanager`, gossiping on loopback) with a webhook receiver in the test.
//! Three `strata node` processes run the RuleEvaluator; two of them evaluate the group
//! (`rule_replication: 2`) and both notify both Alertmanagers; the Alertmanager cluster must
//! still notify once per alert group: one firing notification, one resolved. SIGKILL one of
//! the two evaluating nodes while the alert fires: the group moves to the third node, which
//! restores the alert as firing (not pending again) from ALERTS_FOR_STATE, and the
//! notifications stay one firing, one resolved.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use serde_json::Value;
use strata_testing::{
    free_port, free_ports, free_udp_port, http_client, require_binary, wait_http_ok, wait_until,
    ChildGuard,
};

use crate::cluster::spawn;

/// Webhook bodies received, in order.
pub(crate) type Hooks = Arc<Mutex<Vec<Value>>>;

pub(crate) async fn start_webhook() -> (Hooks, u16, actix_web::dev::ServerHandle) {
    let hooks: Hooks = Arc::default();
    let state = web::Data::new(hooks.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).route(
            "/hook",
            web::post().to(|body: web::Bytes, hooks: web::Data<Hooks>| async move {
                if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
                    v["receivedAtMs"] = Value::from(strata_testing::now_ms());
                    hooks.lock().unwrap().push(v);
                }
                "ok"
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (hooks, port, handle)
}

/// Writes the Alertmanager config: everything to the webhook at `hook_port`, grouped by
/// alert name, resolved notifications on.
pub(crate) fn write_am_config(dir: &std::path::Path, hook_port: u16) -> std::path::PathBuf {
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{hook_port}/hook\n    send_resolved: true\n"
        ),
    )
    .unwrap();
    cfg
}

/// Starts Alertmanager `name` on `web_port`, clustered with `peer` when given as
/// (own cluster port, peer's cluster port), alone otherwise.
pub(crate) fn spawn_alertmanager(
    dir: &std::path::Path,
    cfg: &std::path::Path,
    name: &str,
    web_port: u16,
    peer: Option<(u16, u16)>,
) -> ChildGuard {
    let mut cmd = Command::new(require_binary("prometheus-alertmanager"));
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join(name).display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match peer {
        Some((own, other)) => cmd
            .arg(format!("--cluster.listen-address=127.0.0.1:{own}"))
            .arg(format!("--cluster.peer=127.0.0.1:{other}"))
            .arg("--cluster.peer-timeout=500ms")
            .arg("--cluster.gossip-interval=100ms")
            .arg("--cluster.pushpull-interval=1s"),
        None => cmd.arg("--cluster.listen-address="),
    };
    ChildGuard::new(cmd.spawn().unwrap(), "alertmanager")
}

/// Two Alertmanagers peered with each other; returns their guards and web ports. The group
/// interval is longer than the peer timeout, as in every real set-up (5m and 15s by default):
/// the second peer checks the notification log `peer timeout` after its flush, and must do so
/// before the first peer's next flush. With the group interval below the peer timeout, the
/// second peer can take a flush from just before an alert resolved, see the first peer's
/// "resolved" in the log when its wait ends, and send a stale "firing" (observed here with
/// Alertmanager 0.25 at 1 s / 2 s: an Alertmanager HA race, not the sender's doing).
async fn start_am_cluster(dir: &std::path::Path, hook_port: u16) -> Vec<(ChildGuard, u16)> {
    let cfg = write_am_config(dir, hook_port);
    let cluster_ports = [free_port(), free_port()];
    let mut out = Vec::new();
    for i in 0..2 {
        let web_port = free_port();
        let peer = Some((cluster_ports[i], cluster_ports[1 - i]));
        let child = spawn_alertmanager(dir, &cfg, &format!("am{i}"), web_port, peer);
        out.push((child, web_port));
    }
    for (_, port) in &out {
        wait_http_ok(
            &format!("http://127.0.0.1:{port}/-/ready"),
            Duration::from_secs(30),
        )
        .await;
    }
    out
}

/// The (status, alertnames) of each webhook call for `alertname`.
pub(crate) fn notifications(hooks: &Hooks, alertname: &str) -> Vec<(String, Vec<Value>)> {
    hooks
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h["groupLabels"]["alertname"] == alertname)
        .map(|h| {
            (
                h["status"].as_str().unwrap_or("").to_string(),
                h["alerts"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

const RULES: &str = "groups:\n- name: ha\n  interval: 1s\n  rules:\n  - alert: TwoThirdsOfTheTime\n    expr: vector(time() % 60 < bool 40) == 1\n    for: 10s\n    labels: {severity: page}\n    annotations: {summary: 'value {{ $value }}'}\n";

/// The config of node `n{i+1}`: a RuleEvaluator and QueryPlanner in a three-node cluster.
fn node_config(
    dir: &Path,
    i: usize,
    ports: &[u16],
    gossip: &[u16],
    alertmanagers: &str,
) -> PathBuf {
    let id = format!("n{}", i + 1);
    let join: Vec<String> = gossip
        .iter()
        .filter(|p| **p != gossip[i])
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let yaml = format!(
        "global:\n  external_labels: {{cluster: ha}}\nnode:\n  id: {id}\n  web_listen: 127.0.0.1:{web}\n  \
         gossip_listen: 127.0.0.1:{g}\n  rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {data}\n  \
         roles: [rule_evaluator, query_planner]\ncluster:\n  join: [{join}]\n\
         rule_files: [{rules}]\nalerting:\n  alertmanagers:\n  - static_configs:\n    - targets: [{alertmanagers}]\n",
        web = ports[2 * i],
        rpc = ports[2 * i + 1],
        g = gossip[i],
        data = dir.join(&id).display(),
        join = join.join(", "),
        rules = dir.join("rules.yml").display(),
    );
    let path = dir.join(format!("{id}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn get_json(port: u16, path: &str, local_only: bool) -> Option<Value> {
    let mut req = http_client().get(format!("http://127.0.0.1:{port}{path}"));
    if local_only {
        req = req.header(strata::http::targets_cluster::LOCAL_ONLY, "test");
    }
    req.send().await.ok()?.json().await.ok()
}

/// The nodes `/api/v1/rules` on `port` says evaluate group `ha`.
async fn evaluated_by(port: u16) -> BTreeSet<String> {
    let Some(v) = get_json(port, "/api/v1/rules", false).await else {
        return BTreeSet::new();
    };
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    groups
        .iter()
        .filter(|g| g["name"] == "ha")
        .flat_map(|g| g["evaluatedBy"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(String::from))
        .collect()
}

#[actix_rt::test]
async fn evaluators_and_an_alertmanager_pair_notify_once_across_a_killed_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hook_port, hook_server) = start_webhook().await;
    let ams = start_am_cluster(dir.path(), hook_port).await;
    // Fires (after its 10 s `for`) from second 10 to 40 of every minute of wall time.
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let alertmanagers: Vec<String> = ams
        .iter()
        .map(|(_, p)| format!("'127.0.0.1:{p}'"))
        .collect();
    let ports = free_ports(6);
    let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let ids = ["n1", "n2", "n3"];
    // Start in the resolved third, so the test sees a whole firing period.
    wait_until(
        "the resolved third of the minute",
        Duration::from_secs(65),
        || async { strata_testing::now_ms() / 1000 % 60 >= 42 },
    )
    .await;
    let mut nodes: Vec<ChildGuard> = (0..3)
        .map(|i| {
            spawn(&node_config(
                dir.path(),
                i,
                &ports,
                &gossip,
                &alertmanagers.join(", "),
            ))
        })
        .collect();
    for i in 0..3 {
        wait_http_ok(
            &format!("http://127.0.0.1:{}/-/ready", ports[2 * i]),
            Duration::from_secs(60),
        )
        .await;
    }
    let web = |id: &str| ports[2 * ids.iter().position(|x| *x == id).unwrap()];

    wait_until("a firing notification", Duration::from_secs(90), || async {
        notifications(&hooks, "TwoThirdsOfTheTime")
            .iter()
            .any(|(s, _)| s == "firing")
    })
    .await;
    let firing = notifications(&hooks, "TwoThirdsOfTheTime");
    let alert = &firing[0].1[0];
    assert_eq!(alert["labels"]["alertname"], "TwoThirdsOfTheTime");
    assert_eq!(alert["labels"]["cluster"], "ha", "external labels added");
    assert!(alert["labels"].get("replica").is_none(), "{alert}");
    assert_eq!(alert["annotations"]["summary"], "value 1");
    assert!(alert["generatorURL"]
        .as_str()
        .is_some_and(|u| u.contains("/graph?g0.expr=")));

    // Two nodes evaluate the group; every node lists it, and the alert, once, naming both.
    let owners = evaluated_by(web("n1")).await;
    assert_eq!(owners.len(), 2, "{owners:?}");
    for id in ids {
        assert_eq!(evaluated_by(web(id)).await, owners);
        let v = get_json(web(id), "/api/v1/alerts", false).await.unwrap();
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        assert_eq!(alerts.len(), 1, "{v}");
        assert_eq!(alerts[0]["state"], "firing", "{v}");
    }
    let victim = owners.iter().next().unwrap().clone();
    let survivor = owners.iter().nth(1).unwrap().clone();
    let spare = ids
        .iter()
        .find(|id| !owners.contains(**id))
        .unwrap()
        .to_string();

    // SIGKILL one evaluator while the alert fires: the group moves to the spare, which lists
    // the alert as firing from its first evaluation (restored, not pending for 10 s again).
    nodes[ids.iter().position(|x| *x == victim).unwrap()].kill();
    let moved: BTreeSet<String> = [survivor.clone(), spare.clone()].into_iter().collect();
    wait_until(
        "the group to move to the spare",
        Duration::from_secs(30),
        || async { evaluated_by(web(&survivor)).await == moved },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let first_state = loop {
        let v = get_json(web(&spare), "/api/v1/alerts", true).await;
        if let Some(state) =
            v.and_then(|v| v["data"]["alerts"][0]["state"].as_str().map(String::from))
        {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the spare never listed the alert"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        strata_testing::now_ms() / 1000 % 60 < 40,
        "the alert resolved before the spare took over; the move was not tested"
    );
    assert_eq!(
        first_state, "firing",
        "restored as firing, not pending again"
    );

    wait_until(
        "the resolved notification",
        Duration::from_secs(60),
        || async {
            notifications(&hooks, "TwoThirdsOfTheTime")
                .iter()
                .any(|(s, _)| s == "resolved")
        },
    )
    .await;
    // Watch a few more seconds (past the second Alertmanager's peer timeout) for duplicates.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let n = notifications(&hooks, "TwoThirdsOfTheTime");
        let firing = n.iter().filter(|(s, _)| s == "firing").count();
        let resolved = n.iter().filter(|(s, _)| s == "resolved").count();
        assert_eq!(
            (firing, resolved),
            (1, 1),
            "notifications {:?}",
            n.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>()
        );
        // Sampling the invariant over a fixed window is the test, not a wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = get_json(web(&spare), "/api/v1/alertmanagers", false)
        .await
        .unwrap();
    assert_eq!(
        v["data"]["activeAlertmanagers"].as_array().map(|a| a.len()),
        Some(2),
        "{v}"
    );
    drop(nodes);
    hook_server.stop(true).await;
    drop(ams);
}
