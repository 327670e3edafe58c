//! Ownership of work items by rendezvous (highest-random-weight) hashing. Given an item (block
//! ULID, rule group, scrape target...) and the live nodes holding a role, every node computes the
//! same ordered list of owners without talking to anyone. The hash is XXH3-64 (a published,
//! frozen algorithm), so the answer is stable across processes, machines and releases; a
//! known-answer test pins it.

use super::NodeId;
use xxhash_rust::xxh3::Xxh3;

/// The weight of `holder` for `item`. The holder is length-prefixed so that the pair
/// ("ab", "c") never hashes like ("a", "bc").
pub fn weight(item: &[u8], holder: &str) -> u64 {
    let mut hasher = Xxh3::new();
    let len = u32::try_from(holder.len()).unwrap_or(u32::MAX);
    hasher.update(&len.to_le_bytes());
    hasher.update(holder.as_bytes());
    hasher.update(item);
    hasher.digest()
}

/// The `replication` owners of `item` among `holders`, best first. Returns
/// `min(replication, distinct holders)` distinct node ids; duplicates in `holders` are ignored.
/// Ties on weight (astronomically rare) are broken by node id so the order is total.
pub fn owners<I: AsRef<[u8]> + ?Sized>(
    item: &I,
    holders: &[NodeId],
    replication: usize,
) -> Vec<NodeId> {
    let item = item.as_ref();
    let mut scored: Vec<(u64, &str)> = holders
        .iter()
        .map(|h| (weight(item, h), h.as_str()))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(replication)
        .map(|(_, h)| h.to_string())
        .collect()
}

/// The single best owner of `item`, if there is any holder.
pub fn owner<I: AsRef<[u8]> + ?Sized>(item: &I, holders: &[NodeId]) -> Option<NodeId> {
    owners(item, holders, 1).into_iter().next()
}

/// Whether `node` is among the `replication` owners of `item`.
pub fn is_owner<I: AsRef<[u8]> + ?Sized>(
    item: &I,
    node: &str,
    holders: &[NodeId],
    replication: usize,
) -> bool {
    owners(item, holders, replication).iter().any(|o| o == node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn nodes(n: usize) -> Vec<NodeId> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    fn items(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("01HXYZ-block-{i:06}")).collect()
    }

    #[test]
    fn known_answer_is_frozen() {
        // If this changes, every cluster would reshuffle all its work after an upgrade.
        let golden = weight(b"01ARZ3NDEKTSV4RRFFQ69G5FAV", "node-1");
        assert_eq!(golden, GOLDEN, "rendezvous hash changed: {golden:#x}");
        let holders = nodes(5);
        assert_eq!(owners("rule-group-a", &holders, 2), GOLDEN_OWNERS);
    }

    const GOLDEN: u64 = 0x0f09_8890_00af_b1ff;
    const GOLDEN_OWNERS: [&str; 2] = ["node-0", "node-3"];

    #[test]
    fn empty_and_small_inputs() {
        assert!(owners("x", &[], 2).is_empty());
        assert_eq!(owners("x", &nodes(1), 3), vec!["node-0".to_string()]);
        assert!(owners("x", &nodes(3), 0).is_empty());
        let dup = vec!["a".to_string(), "a".to_string(), "b".to_string()];
        let got = owners("x", &dup, 3);
        assert_eq!(got.len(), 2);
        assert_ne!(got[0], got[1]);
    }

    #[test]
    fn order_of_holders_does_not_matter() {
        let mut n = nodes(7);
        let a = owners("target-1", &n, 3);
        n.reverse();
        assert_eq!(owners("target-1", &n, 3), a);
    }

    /// Adding one node to N moves about 1/(N+1) of the primary owners, all of them to the new
    /// node; removing one moves exactly the items it owned.
    #[test]
    fn minimal_movement_on_membership_change() {
        let items = items(10_000);
        for n in [3usize, 5, 10, 20] {
            let before = nodes(n);
            let mut after = before.clone();
            after.push("node-new".to_string());
            let mut moved = 0usize;
            for it in &items {
                let a = owner(it, &before);
                let b = owner(it, &after);
                if a != b {
                    moved += 1;
                    assert_eq!(b.as_deref(), Some("node-new"), "moved to an old node");
                }
            }
            let expected = items.len() as f64 / (n + 1) as f64;
            let ratio = moved as f64 / expected;
            assert!(
                (0.8..1.2).contains(&ratio),
                "adding to {n}: moved {moved}, expected about {expected}"
            );

            let removed = before[0].clone();
            let rest: Vec<NodeId> = before[1..].to_vec();
            let mut moved = 0usize;
            for it in &items {
                let a = owner(it, &before);
                let b = owner(it, &rest);
                if a != b {
                    moved += 1;
                    assert_eq!(a.as_deref(), Some(removed.as_str()));
                }
            }
            let expected = items.len() as f64 / n as f64;
            let ratio = moved as f64 / expected;
            assert!(
                (0.8..1.2).contains(&ratio),
                "removing from {n}: moved {moved}, expected about {expected}"
            );
        }
    }

    #[test]
    fn load_is_balanced() {
        let n = nodes(10);
        let mut counts = std::collections::HashMap::new();
        for it in items(10_000) {
            for o in owners(&it, &n, 2) {
                *counts.entry(o).or_insert(0usize) += 1;
            }
        }
        for (node, c) in counts {
            assert!((1600..2400).contains(&c), "{node} owns {c} of 20000 slots");
        }
    }

    proptest! {
        #[test]
        fn deterministic_distinct_and_bounded(
            item in proptest::collection::vec(any::<u8>(), 0..40),
            n in 0usize..12,
            rf in 0usize..5,
        ) {
            let holders = nodes(n);
            let a = owners(&item, &holders, rf);
            let b = owners(&item, &holders, rf);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.len(), rf.min(n));
            let distinct: HashSet<&NodeId> = a.iter().collect();
            prop_assert_eq!(distinct.len(), a.len());
            for o in &a {
                prop_assert!(holders.contains(o));
            }
            // A prefix property: the top-k is the prefix of the top-(k+1).
            let more = owners(&item, &holders, rf + 1);
            prop_assert_eq!(&more[..a.len()], &a[..]);
        }

        #[test]
        fn removing_a_non_owner_never_moves(
            item in "[a-z0-9]{1,20}",
            n in 2usize..12,
            rf in 1usize..4,
            victim in 0usize..12,
        ) {
            let holders = nodes(n);
            let victim = victim % n;
            let before = owners(&item, &holders, rf);
            prop_assume!(!before.contains(&holders[victim]));
            let mut rest = holders.clone();
            rest.remove(victim);
            prop_assert_eq!(owners(&item, &rest, rf), before);
        }

        #[test]
        fn removing_an_owner_keeps_the_other_owners(
            item in "[a-z0-9]{1,20}",
            n in 3usize..12,
            rf in 2usize..4,
        ) {
            let holders = nodes(n);
            let before = owners(&item, &holders, rf);
            let gone = before[0].clone();
            let rest: Vec<NodeId> = holders.into_iter().filter(|h| *h != gone).collect();
            let after = owners(&item, &rest, rf);
            for o in &before[1..] {
                prop_assert!(after.contains(o));
            }
        }
    }
}
