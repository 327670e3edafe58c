//! The scrape-side APIs for the whole cluster (`/api/v1/targets`, `/api/v1/targets/metadata`,
//! `/api/v1/metadata`). Targets are spread over the live ScraperShippers, so one node's answer
//! covers only its share; behind a load balancer a user would see a different subset on every
//! request. The node asked collects the answers of every live ScraperShipper (marked so they
//! answer for themselves only) and merges them with its own, one entry per target: HA
//! replicas scrape the same target, and the user wants to see the target, like Thanos Query's
//! targets API shows a target once across replicas.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use super::targets::{ActiveTarget, DroppedTarget, TargetDiscovery};
use super::Router;
use crate::config::Role;
use crate::scrape::scrape_loop::Health;

/// Set on the requests to peers: answer for this node only (no further fan-out).
pub const LOCAL_ONLY: &str = "X-Strata-Targets-Local";
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this request wants only the answering node's own targets.
pub fn wants_local_only(req: &HttpRequest) -> bool {
    req.headers().contains_key(LOCAL_ONLY)
}

#[derive(serde::Deserialize)]
struct PeerAnswer<T> {
    data: T,
}

/// The `data` of the same request (path and query) answered by every live peer running the
/// ScraperShipper role for itself. Peers that do not answer are left out; the warnings name
/// them.
pub(super) async fn ask_scrapers<T: DeserializeOwned>(
    router: &Router,
    req: &HttpRequest,
) -> (Vec<T>, Vec<String>) {
    ask_peers(router, req, Role::ScraperShipper).await
}

/// The `data` of the same request answered for itself by every live peer running `role`;
/// peers that do not answer are left out and named in the warnings.
pub(super) async fn ask_peers<T: DeserializeOwned>(
    router: &Router,
    req: &HttpRequest,
    role: Role,
) -> (Vec<T>, Vec<String>) {
    let peers = router.cluster.live_peers_with_role(role);
    if peers.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let client = match reqwest::Client::builder().timeout(PEER_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return (Vec::new(), vec![format!("cannot ask peers: {e}")]),
    };
    let path_and_query = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    };
    let asks = peers.iter().map(|p| {
        let send = client
            .get(format!("http://{}{path_and_query}", p.http_addr))
            .header(LOCAL_ONLY, router.node_id.as_str())
            .send();
        async move {
            let answer: PeerAnswer<T> = send.await?.error_for_status()?.json().await?;
            Ok::<T, reqwest::Error>(answer.data)
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut warnings = Vec::new();
    let mut remote = Vec::new();
    for (peer, answer) in peers.iter().zip(answers) {
        match answer {
            Ok(d) => remote.push(d),
            Err(e) => warnings.push(format!(
                "the answer of node {} ({}) is missing: {e}",
                peer.node_id, peer.http_addr
            )),
        }
    }
    (remote, warnings)
}

/// Adds the targets of every live ScraperShipper peer to `local`; returns the warnings.
pub(super) async fn merge_peers(
    router: &Router,
    req: &HttpRequest,
    local: &mut TargetDiscovery,
) -> Vec<String> {
    let (remote, warnings) = ask_scrapers::<TargetDiscovery>(router, req).await;
    if !remote.is_empty() {
        merge(local, remote);
    }
    warnings
}

/// Merges the peers' lists into `local`: a list `local` leaves out (the `state` filter made
/// it `null`) stays out; one entry per target, the healthiest and most recently scraped
/// replica winning.
pub(super) fn merge(local: &mut TargetDiscovery, remote: Vec<TargetDiscovery>) {
    if let Some(active) = local.active_targets.as_mut() {
        for r in &remote {
            active.extend(r.active_targets.iter().flatten().cloned());
        }
        *active = dedup_active(std::mem::take(active));
    }
    if let Some(dropped) = local.dropped_targets.as_mut() {
        for r in &remote {
            dropped.extend(r.dropped_targets.iter().flatten().cloned());
        }
        let mut seen: BTreeMap<BTreeMap<String, String>, DroppedTarget> = BTreeMap::new();
        for t in std::mem::take(dropped) {
            seen.entry(t.discovered_labels.clone()).or_insert(t);
        }
        dropped.extend(seen.into_values());
    }
}

type TargetKey = (String, String, BTreeMap<String, String>);

/// Prometheus lists active targets by pool, then URL; that order is kept.
fn dedup_active(all: Vec<ActiveTarget>) -> Vec<ActiveTarget> {
    let mut best: BTreeMap<TargetKey, ActiveTarget> = BTreeMap::new();
    for t in all {
        let key = (
            t.scrape_pool.clone(),
            t.scrape_url.clone(),
            t.labels.clone(),
        );
        match best.get(&key) {
            Some(old) if rank(old) >= rank(&t) => {}
            _ => {
                best.insert(key, t);
            }
        }
    }
    best.into_values().collect()
}

/// Up beats unknown beats down; then the later scrape (RFC 3339 in UTC sorts as text).
fn rank(t: &ActiveTarget) -> (u8, &str) {
    let health = match t.health {
        Health::Up => 2,
        Health::Unknown => 1,
        Health::Down => 0,
    };
    (health, t.last_scrape.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pool: &str, url: &str, health: Health, last: &str) -> ActiveTarget {
        ActiveTarget {
            discovered_labels: BTreeMap::from([("__address__".into(), url.into())]),
            labels: BTreeMap::from([("job".into(), pool.into())]),
            scrape_pool: pool.into(),
            scrape_url: url.into(),
            global_url: url.into(),
            last_error: String::new(),
            last_scrape: last.into(),
            last_scrape_duration: 0.0,
            health,
            scrape_interval: "1s".into(),
            scrape_timeout: "1s".into(),
            lint_problems: Vec::new(),
        }
    }

    fn dropped(addr: &str) -> DroppedTarget {
        DroppedTarget {
            discovered_labels: BTreeMap::from([("__address__".into(), addr.into())]),
        }
    }

    fn disc(active: Vec<ActiveTarget>, drop: Vec<DroppedTarget>) -> TargetDiscovery {
        TargetDiscovery {
            active_targets: Some(active),
            dropped_targets: Some(drop),
        }
    }

    #[test]
    fn replicas_of_one_target_show_once_preferring_the_healthy_recent_one() {
        let mut local = disc(
            vec![target(
                "a",
                "http://x/m",
                Health::Down,
                "2026-01-01T00:00:02Z",
            )],
            vec![dropped("d")],
        );
        let peer1 = disc(
            vec![
                target("a", "http://x/m", Health::Up, "2026-01-01T00:00:01Z"),
                target("a", "http://b/m", Health::Up, "2026-01-01T00:00:01Z"),
            ],
            vec![dropped("d")],
        );
        let peer2 = disc(
            vec![target(
                "a",
                "http://x/m",
                Health::Up,
                "2026-01-01T00:00:03Z",
            )],
            vec![],
        );
        merge(&mut local, vec![peer1, peer2]);
        let active = local.active_targets.unwrap();
        assert_eq!(active.len(), 2);
        assert_eq!(active[0].scrape_url, "http://b/m");
        assert_eq!(active[1].scrape_url, "http://x/m");
        assert_eq!(active[1].health, Health::Up);
        assert_eq!(active[1].last_scrape, "2026-01-01T00:00:03Z");
        assert_eq!(local.dropped_targets.unwrap().len(), 1);
    }

    #[test]
    fn a_list_filtered_out_locally_stays_out() {
        let mut local = TargetDiscovery {
            active_targets: None,
            dropped_targets: Some(vec![]),
        };
        merge(
            &mut local,
            vec![disc(vec![target("a", "u", Health::Up, "")], vec![])],
        );
        assert!(local.active_targets.is_none());
    }

    #[test]
    fn different_pools_with_one_url_are_different_targets() {
        let mut local = disc(vec![target("a", "u", Health::Up, "")], vec![]);
        merge(
            &mut local,
            vec![disc(vec![target("b", "u", Health::Up, "")], vec![])],
        );
        assert_eq!(local.active_targets.map(|a| a.len()), Some(2));
    }
}
