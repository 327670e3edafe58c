//! The role policy as a pure function: "keep at least N live nodes with role R". When holders
//! of a role have been dead for longer than the grace period and too few live nodes hold it, the
//! role moves from the dead nodes to live ones chosen by rendezvous hashing, so every node that
//! computes the policy picks the same ones. Only dead holders trigger a move: a role an operator
//! removed on purpose is never put back.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::ownership::owners;
use crate::config::Role;

/// The desired role lists of the nodes whose assignment must change.
pub type PolicyChanges = BTreeMap<String, Vec<Role>>;

/// `assigned`: node → roles; `live`: live node ids; `dead`: ids dead for longer than the grace.
pub fn apply_policy(
    assigned: &BTreeMap<String, Vec<Role>>,
    live: &BTreeSet<String>,
    dead: &BTreeSet<String>,
    policy: &BTreeMap<Role, usize>,
) -> PolicyChanges {
    let mut next: BTreeMap<String, BTreeSet<Role>> = assigned
        .iter()
        .map(|(n, r)| (n.clone(), r.iter().copied().collect()))
        .collect();
    for (&role, &min) in policy {
        let dead_holders: Vec<String> = next
            .iter()
            .filter(|(n, r)| dead.contains(*n) && r.contains(&role))
            .map(|(n, _)| n.clone())
            .collect();
        if dead_holders.is_empty() {
            continue;
        }
        let live_holders = next
            .iter()
            .filter(|(n, r)| live.contains(*n) && r.contains(&role))
            .count();
        let candidates: Vec<String> = live
            .iter()
            .filter(|n| !next.get(*n).is_some_and(|r| r.contains(&role)))
            .cloned()
            .collect();
        let want = min.saturating_sub(live_holders).min(candidates.len());
        for node in owners(role.as_str(), &candidates, want) {
            next.entry(node).or_default().insert(role);
        }
        // The dead nodes give the role up, so a node coming back does not run it twice; but
        // only once some live node holds it, so the role is never assigned nowhere.
        if live_holders + want > 0 {
            for n in dead_holders {
                if let Some(r) = next.get_mut(&n) {
                    r.remove(&role);
                }
            }
        }
    }
    let mut changes = PolicyChanges::new();
    for (node, roles) in next {
        let before: BTreeSet<Role> = assigned
            .get(&node)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        if roles != before {
            changes.insert(node, roles.into_iter().collect());
        }
    }
    changes
}

/// The node that applies the policy: the smallest live id, so that one node decides.
pub fn policy_leader(live: &BTreeSet<String>) -> Option<&String> {
    live.iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn assigned(items: &[(&str, &[Role])]) -> BTreeMap<String, Vec<Role>> {
        items
            .iter()
            .map(|(n, r)| (n.to_string(), r.to_vec()))
            .collect()
    }

    fn policy() -> BTreeMap<Role, usize> {
        [(Role::Compactor, 1), (Role::RuleEvaluator, 2)]
            .into_iter()
            .collect()
    }

    #[test]
    fn moves_a_dead_singleton_to_exactly_one_live_node() {
        let a = assigned(&[
            ("n1", &[Role::Compactor, Role::QueryPlanner]),
            ("n2", &[Role::QueryPlanner]),
            ("n3", &[Role::QueryPlanner]),
        ]);
        let changes = apply_policy(&a, &set(&["n2", "n3"]), &set(&["n1"]), &policy());
        let gained: Vec<&String> = changes
            .iter()
            .filter(|(_, r)| r.contains(&Role::Compactor))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(gained.len(), 1);
        assert_eq!(changes.get("n1"), Some(&vec![Role::QueryPlanner]));
        // Deterministic: the same inputs give the same owner.
        assert_eq!(
            changes,
            apply_policy(&a, &set(&["n3", "n2"]), &set(&["n1"]), &policy())
        );
    }

    #[test]
    fn nothing_moves_while_holders_live_or_when_an_operator_removed_the_role() {
        let a = assigned(&[("n1", &[Role::Compactor]), ("n2", &[])]);
        assert!(apply_policy(&a, &set(&["n1", "n2"]), &set(&[]), &policy()).is_empty());
        let none = assigned(&[("n1", &[Role::QueryPlanner]), ("n2", &[Role::QueryPlanner])]);
        assert!(apply_policy(&none, &set(&["n1", "n2"]), &set(&[]), &policy()).is_empty());
    }

    #[test]
    fn tops_up_to_the_minimum_from_dead_holders() {
        let a = assigned(&[
            ("n1", &[Role::RuleEvaluator]),
            ("n2", &[Role::RuleEvaluator]),
            ("n3", &[]),
            ("n4", &[]),
        ]);
        let changes = apply_policy(&a, &set(&["n1", "n3", "n4"]), &set(&["n2"]), &policy());
        let holders: usize = ["n1", "n3", "n4"]
            .iter()
            .filter(|n| {
                changes
                    .get(**n)
                    .map(|r| r.contains(&Role::RuleEvaluator))
                    .unwrap_or_else(|| a[**n].contains(&Role::RuleEvaluator))
            })
            .count();
        assert_eq!(holders, 2);
        assert_eq!(changes.get("n2"), Some(&vec![]));
    }

    #[test]
    fn a_dead_holder_gives_up_a_role_live_nodes_already_cover() {
        let a = assigned(&[("n1", &[Role::Compactor]), ("n2", &[Role::Compactor])]);
        let changes = apply_policy(&a, &set(&["n2"]), &set(&["n1"]), &policy());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes.get("n1"), Some(&vec![]));
    }

    #[test]
    fn with_no_live_node_at_all_the_role_stays_where_it_was() {
        let a = assigned(&[("n1", &[Role::Compactor])]);
        assert!(apply_policy(&a, &set(&[]), &set(&["n1"]), &policy()).is_empty());
    }

    #[test]
    fn leader_is_the_smallest_live_id() {
        assert_eq!(
            policy_leader(&set(&["n3", "n1", "n2"])).map(String::as_str),
            Some("n1")
        );
        assert_eq!(policy_leader(&set(&[])), None);
    }
}
