//! The receive hashring: which live ScraperShippers store each remote-written series, and
//! whether a replicated write reached its quorum. Pure code, no I/O. Placement is rendezvous
//! hashing (`cluster::ownership`) of the series' label hash over the live holders, so when a
//! node joins or leaves only the series it owns (or comes to own) move — Thanos's `ketama`
//! property without a ring to build. The label hash includes the tenant label, which the
//! receiver adds before placing (Thanos hashes `tenant + labels`).
//!
//! Thanos rules implemented: replication factor `--receive.replication-factor`; the write
//! quorum is `RF/2 + 1`, except that RF = 2 needs 1 (Thanos's `writeQuorum`, so a pair of
//! receivers keeps the guarantee of a pair of Prometheus servers); a request succeeds only when
//! every series reached quorum; per series, when not enough replicas succeeded but enough
//! succeeded or answered a conflict (out of order, duplicate timestamp), the answer is the
//! conflict (409, the sender drops the batch) rather than a retryable 5xx (Thanos's
//! `determineWriteErrorCause`).

use std::collections::BTreeMap;

use xxhash_rust::xxh3::Xxh3;

use super::ownership::owners;
use super::NodeId;
use crate::storage::model::Labels;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashringError {
    #[error("no live scraper_shipper node to receive samples")]
    NoHolders,
    #[error(
        "{live} live scraper_shipper node(s) cannot reach the write quorum of {quorum} \
         (receive_replication {replication})"
    )]
    QuorumUnreachable {
        live: usize,
        quorum: usize,
        replication: usize,
    },
}

pub type Result<T> = std::result::Result<T, HashringError>;

/// How many replicas must take a series before the write is acknowledged.
pub fn write_quorum(replication: usize) -> usize {
    if replication == 2 {
        1
    } else {
        replication / 2 + 1
    }
}

/// The placement key of a series: XXH3 of its sorted label pairs, each name and value
/// terminated by 0xff (a byte no UTF-8 string holds), so the key is the same on every node.
pub fn series_key(labels: &Labels) -> u64 {
    let mut h = Xxh3::new();
    for l in labels.iter() {
        h.update(l.name.as_bytes());
        h.update(&[0xff]);
        h.update(l.value.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// The nodes that store the series with this key, best first.
pub fn replicas(key: u64, holders: &[NodeId], replication: usize) -> Vec<NodeId> {
    owners(&key.to_le_bytes(), holders, replication)
}

/// Where every series of one request goes: for each node, the indexes of its series (in
/// request order), and for each series its replica nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub by_node: BTreeMap<NodeId, Vec<usize>>,
    pub replicas: Vec<Vec<NodeId>>,
    pub quorum: usize,
}

/// Places series (by key) on `holders` with `replication` copies each. Fails when there is no
/// holder or fewer holders than the quorum needs.
pub fn place(keys: &[u64], holders: &[NodeId], replication: usize) -> Result<Placement> {
    let mut distinct = holders.to_vec();
    distinct.sort();
    distinct.dedup();
    if distinct.is_empty() {
        return Err(HashringError::NoHolders);
    }
    let quorum = write_quorum(replication);
    if distinct.len() < quorum {
        return Err(HashringError::QuorumUnreachable {
            live: distinct.len(),
            quorum,
            replication,
        });
    }
    let mut by_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let mut all = Vec::with_capacity(keys.len());
    for (i, &key) in keys.iter().enumerate() {
        let r = replicas(key, &distinct, replication);
        for node in &r {
            by_node.entry(node.clone()).or_default().push(i);
        }
        all.push(r);
    }
    Ok(Placement {
        by_node,
        replicas: all,
        quorum,
    })
}

/// What one node answered for its share of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaOutcome {
    /// Every sample stored (duplicates of stored samples included).
    Stored,
    /// Stored except samples refused as out of order, out of bounds or with a different value
    /// at a stored timestamp: retrying cannot help.
    Conflict,
    /// Not stored or unknown (unreachable, timeout, overloaded, storage failure).
    Failed,
}

/// The answer to the whole request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteVerdict {
    /// 2xx: every series is on at least `quorum` replicas.
    Acknowledged,
    /// 409: every series reached quorum counting conflicts, some only thanks to them.
    Conflict,
    /// 5xx: some series is on fewer than `quorum` replicas; the sender must retry.
    Retry,
}

/// Folds the nodes' outcomes (a node missing from `outcomes` failed) into the verdict.
pub fn verdict(placement: &Placement, outcomes: &BTreeMap<NodeId, ReplicaOutcome>) -> WriteVerdict {
    let mut result = WriteVerdict::Acknowledged;
    for nodes in &placement.replicas {
        let (mut stored, mut conflict) = (0usize, 0usize);
        for n in nodes {
            match outcomes.get(n) {
                Some(ReplicaOutcome::Stored) => stored += 1,
                Some(ReplicaOutcome::Conflict) => conflict += 1,
                Some(ReplicaOutcome::Failed) | None => {}
            }
        }
        if stored >= placement.quorum {
            continue;
        }
        if stored + conflict >= placement.quorum {
            result = WriteVerdict::Conflict;
        } else {
            return WriteVerdict::Retry;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn nodes(n: usize) -> Vec<NodeId> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    fn labels(i: usize) -> Labels {
        Labels::from_pairs([
            ("__name__", "x"),
            ("i", i.to_string().as_str()),
            ("tenant_id", "default-tenant"),
        ])
    }

    #[test]
    fn quorum_is_thanos_write_quorum() {
        let got: Vec<usize> = (1..=6).map(write_quorum).collect();
        assert_eq!(got, vec![1, 1, 2, 3, 3, 4]);
    }

    #[test]
    fn key_is_frozen_and_label_sensitive() {
        let a = series_key(&Labels::from_pairs([("__name__", "up"), ("job", "a")]));
        assert_eq!(
            a,
            series_key(&Labels::from_pairs([("job", "a"), ("__name__", "up")]))
        );
        assert_ne!(
            a,
            series_key(&Labels::from_pairs([("__name__", "upjob"), ("", "a")]))
        );
        assert_ne!(
            a,
            series_key(&Labels::from_pairs([
                ("__name__", "up"),
                ("job", "a"),
                ("tenant_id", "t1")
            ]))
        );
    }

    #[test]
    fn empty_and_short_memberships() {
        assert_eq!(place(&[1], &[], 2), Err(HashringError::NoHolders));
        assert!(matches!(
            place(&[1], &nodes(1), 3),
            Err(HashringError::QuorumUnreachable { quorum: 2, .. })
        ));
        let p = place(&[1, 2], &nodes(1), 2).unwrap();
        assert_eq!(p.quorum, 1);
        assert_eq!(p.by_node["node-0"], vec![0, 1]);
    }

    #[test]
    fn verdicts() {
        let p = place(&[1, 2, 3], &nodes(3), 3).unwrap();
        let all = |o: ReplicaOutcome| -> BTreeMap<NodeId, ReplicaOutcome> {
            nodes(3).into_iter().map(|n| (n, o.clone())).collect()
        };
        assert_eq!(
            verdict(&p, &all(ReplicaOutcome::Stored)),
            WriteVerdict::Acknowledged
        );
        assert_eq!(
            verdict(&p, &all(ReplicaOutcome::Conflict)),
            WriteVerdict::Conflict
        );
        assert_eq!(
            verdict(&p, &all(ReplicaOutcome::Failed)),
            WriteVerdict::Retry
        );
        let mut one_down = all(ReplicaOutcome::Stored);
        one_down.remove("node-1");
        assert_eq!(verdict(&p, &one_down), WriteVerdict::Acknowledged);
        one_down.insert("node-2".into(), ReplicaOutcome::Failed);
        assert_eq!(verdict(&p, &one_down), WriteVerdict::Retry);
    }

    proptest! {
        /// Every series gets min(RF, holders) distinct replicas, and `by_node` is exactly the
        /// inverse of `replicas`.
        #[test]
        fn placement_is_consistent(n in 1usize..8, rf in 1usize..4, count in 0usize..200) {
            let holders = nodes(n);
            let keys: Vec<u64> = (0..count).map(|i| series_key(&labels(i))).collect();
            match place(&keys, &holders, rf) {
                Ok(p) => {
                    for (i, r) in p.replicas.iter().enumerate() {
                        let set: BTreeSet<_> = r.iter().collect();
                        prop_assert_eq!(set.len(), rf.min(n));
                        for node in r {
                            prop_assert!(p.by_node[node].contains(&i));
                        }
                    }
                    let total: usize = p.by_node.values().map(Vec::len).sum();
                    prop_assert_eq!(total, count * rf.min(n));
                }
                Err(e) => prop_assert!(n < write_quorum(rf), "{}", e),
            }
        }

        /// A node leaving moves only the copies it held; every other copy stays where it was.
        #[test]
        fn leaving_moves_only_the_leavers_copies(n in 2usize..8, rf in 1usize..4, gone in 0usize..8) {
            let before = nodes(n);
            let gone = format!("node-{}", gone % n);
            let after: Vec<NodeId> = before.iter().filter(|x| **x != gone).cloned().collect();
            for i in 0..100 {
                let k = series_key(&labels(i));
                let a: BTreeSet<_> = replicas(k, &before, rf).into_iter().collect();
                let b: BTreeSet<_> = replicas(k, &after, rf).into_iter().collect();
                for node in &a {
                    if *node != gone {
                        prop_assert!(b.contains(node), "{} lost a copy it kept", node);
                    }
                }
                prop_assert!(!b.contains(&gone));
            }
        }

        /// The verdict is monotone: turning a failure into a success never makes it worse.
        #[test]
        fn verdict_is_monotone(states in proptest::collection::vec(0u8..3, 5), flip in 0usize..5) {
            let holders = nodes(5);
            let keys: Vec<u64> = (0..50).map(|i| series_key(&labels(i))).collect();
            let p = place(&keys, &holders, 3).unwrap();
            let to = |s: u8| match s {
                0 => ReplicaOutcome::Stored,
                1 => ReplicaOutcome::Conflict,
                _ => ReplicaOutcome::Failed,
            };
            let mut o: BTreeMap<NodeId, ReplicaOutcome> =
                holders.iter().cloned().zip(states.iter().map(|&s| to(s))).collect();
            let rank = |v: WriteVerdict| match v {
                WriteVerdict::Acknowledged => 0,
                WriteVerdict::Conflict => 1,
                WriteVerdict::Retry => 2,
            };
            let before = rank(verdict(&p, &o));
            o.insert(holders[flip].clone(), ReplicaOutcome::Stored);
            prop_assert!(rank(verdict(&p, &o)) <= before);
        }
    }
}
