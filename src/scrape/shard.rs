//! Which targets this node scrapes: a pure function of the targets, the live
//! ScraperShippers, the replication factor and this node's id, by rendezvous hashing
//! (`cluster::ownership`). With no membership known (one node) every target is ours.

use crate::cluster::ownership::owners;
use crate::cluster::NodeId;

/// The cluster view the sharding uses; `live` empty means "alone".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardView {
    pub live: Vec<NodeId>,
    pub replication: usize,
    pub me: NodeId,
}

impl ShardView {
    pub fn alone(me: impl Into<NodeId>) -> Self {
        ShardView {
            live: Vec::new(),
            replication: 2,
            me: me.into(),
        }
    }

    /// Whether this node is among the owners of the target with this key.
    pub fn owns(&self, key: &[u8]) -> bool {
        if self.live.is_empty() || !self.live.contains(&self.me) {
            return true;
        }
        owners(key, &self.live, self.replication.max(1)).contains(&self.me)
    }
}

/// The targets `view.me` scrapes, by their stable keys (job + target hash, see
/// [`target_key`]).
pub fn my_targets<'a, T>(targets: &'a [(Vec<u8>, T)], view: &ShardView) -> Vec<&'a T> {
    targets
        .iter()
        .filter(|(k, _)| view.owns(k))
        .map(|(_, t)| t)
        .collect()
}

/// The sharding key of a target: its job and its hash (labels + URL).
pub fn target_key(job: &str, target_hash: u64) -> Vec<u8> {
    let mut k = job.as_bytes().to_vec();
    k.push(0xff);
    k.extend_from_slice(&target_hash.to_le_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: u64) -> Vec<(Vec<u8>, u64)> {
        (0..n).map(|i| (target_key("job", i * 7919), i)).collect()
    }

    #[test]
    fn alone_scrapes_everything() {
        let t = targets(50);
        assert_eq!(my_targets(&t, &ShardView::alone("n1")).len(), 50);
    }

    #[test]
    fn every_target_has_exactly_replication_owners() {
        let t = targets(200);
        let live: Vec<NodeId> = (0..4).map(|i| format!("n{i}")).collect();
        let mut count = vec![0usize; 200];
        for me in &live {
            let view = ShardView {
                live: live.clone(),
                replication: 2,
                me: me.clone(),
            };
            for &i in my_targets(&t, &view) {
                count[i as usize] += 1;
            }
        }
        assert!(count.iter().all(|&c| c == 2), "{count:?}");
    }

    #[test]
    fn replication_above_nodes_means_everyone_scrapes_all() {
        let t = targets(20);
        let live: Vec<NodeId> = vec!["a".into(), "b".into()];
        let view = ShardView {
            live: live.clone(),
            replication: 3,
            me: "b".into(),
        };
        assert_eq!(my_targets(&t, &view).len(), 20);
    }
}
