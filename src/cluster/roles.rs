//! The cluster-wide role assignment: a map node → roles where every entry carries its own
//! version, spread by gossip and merged with "highest version wins". Pure data: the admin API
//! edits it through [`RoleAssignments::set`], gossip carries [`RoleUpdate`]s or whole maps
//! encoded in broadcast-sized pieces, and every node folds what it hears in with
//! [`RoleAssignments::merge`]. The merge is a join (commutative, associative, idempotent), so
//! all nodes converge to the same map whatever order the updates arrive in.

use super::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    #[error("cannot decode role assignments: {0}")]
    Decode(String),
    #[error("cannot encode role assignments: {0}")]
    Encode(String),
    #[error("role entry of node {node} needs {size} bytes, more than the {max}-byte limit")]
    EntryTooLarge {
        node: NodeId,
        size: usize,
        max: usize,
    },
}

pub type Result<T> = std::result::Result<T, RolesError>;

/// Largest encoded map or update accepted by the decoders.
const DECODE_LIMIT: usize = 4 * 1024 * 1024;

fn codec_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// One node's roles at one version. `updated_by` names the node whose admin API made the
/// change; it breaks ties between two different edits that picked the same version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEntry {
    pub version: u64,
    /// Sorted and free of duplicates, so equal sets compare equal.
    pub roles: Vec<String>,
    pub updated_by: NodeId,
}

impl RoleEntry {
    /// Whether `self` should replace `other`: higher version wins, then a deterministic
    /// tie-break on (updated_by, roles) so that concurrent edits converge everywhere.
    pub fn supersedes(&self, other: &RoleEntry) -> bool {
        (self.version, &self.updated_by, &self.roles)
            > (other.version, &other.updated_by, &other.roles)
    }
}

/// A single entry change, small enough to ride in one gossip broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleUpdate {
    pub node: NodeId,
    pub entry: RoleEntry,
}

impl RoleUpdate {
    pub fn encode(&self) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(self, codec_config())
            .map_err(|e| RolesError::Encode(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (u, used): (RoleUpdate, usize) =
            bincode::serde::decode_from_slice(bytes, codec_config())
                .map_err(|e| RolesError::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(RolesError::Decode(format!(
                "{} trailing bytes after a role update",
                bytes.len() - used
            )));
        }
        Ok(u)
    }
}

/// The versioned node → roles map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignments {
    entries: BTreeMap<NodeId, RoleEntry>,
}

fn normalise(roles: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut v: Vec<String> = roles.into_iter().map(Into::into).collect();
    v.sort();
    v.dedup();
    v
}

impl RoleAssignments {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, node: &str) -> Option<&RoleEntry> {
        self.entries.get(node)
    }

    /// The roles assigned to `node` (empty when it has no entry).
    pub fn roles_of(&self, node: &str) -> &[String] {
        self.entries
            .get(node)
            .map(|e| e.roles.as_slice())
            .unwrap_or(&[])
    }

    /// Nodes assigned `role`, sorted by id.
    pub fn nodes_with_role(&self, role: &str) -> Vec<NodeId> {
        self.entries
            .iter()
            .filter(|(_, e)| e.roles.iter().any(|r| r == role))
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &RoleEntry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A local edit: gives `node` exactly `roles` at a version above any seen for it, and
    /// returns the update to gossip. Unassigning everything keeps an entry with no roles (a
    /// tombstone) so the removal wins over older copies still travelling.
    pub fn set(
        &mut self,
        node: &str,
        roles: impl IntoIterator<Item = impl Into<String>>,
        updated_by: &str,
    ) -> RoleUpdate {
        let version = self.entries.get(node).map(|e| e.version + 1).unwrap_or(1);
        let entry = RoleEntry {
            version,
            roles: normalise(roles),
            updated_by: updated_by.to_string(),
        };
        self.entries.insert(node.to_string(), entry.clone());
        RoleUpdate {
            node: node.to_string(),
            entry,
        }
    }

    /// Folds in one entry; returns whether it changed the map.
    pub fn apply(&mut self, update: &RoleUpdate) -> bool {
        let mut entry = update.entry.clone();
        entry.roles = normalise(entry.roles);
        match self.entries.get(&update.node) {
            Some(current) if !entry.supersedes(current) => false,
            _ => {
                self.entries.insert(update.node.clone(), entry);
                true
            }
        }
    }

    /// Folds in another map; returns the nodes whose entry changed, sorted.
    pub fn merge(&mut self, other: &RoleAssignments) -> Vec<NodeId> {
        let mut changed = Vec::new();
        for (node, entry) in &other.entries {
            let update = RoleUpdate {
                node: node.clone(),
                entry: entry.clone(),
            };
            if self.apply(&update) {
                changed.push(node.clone());
            }
        }
        changed
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(self, codec_config())
            .map_err(|e| RolesError::Encode(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (m, used): (RoleAssignments, usize) =
            bincode::serde::decode_from_slice(bytes, codec_config())
                .map_err(|e| RolesError::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(RolesError::Decode(format!(
                "{} trailing bytes after role assignments",
                bytes.len() - used
            )));
        }
        let mut out = RoleAssignments::new();
        // Re-apply so that a peer's unsorted role lists are normalised.
        out.merge(&m);
        Ok(out)
    }

    /// Splits the map into encoded partial maps of at most `max_bytes` each, for anti-entropy
    /// over gossip broadcasts (each piece is merged independently on arrival).
    pub fn encode_chunks(&self, max_bytes: usize) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut current = RoleAssignments::new();
        let mut current_bytes = self_overhead();
        for (node, entry) in &self.entries {
            let mut single = RoleAssignments::new();
            single.entries.insert(node.clone(), entry.clone());
            let size = single.encode()?.len();
            if size > max_bytes {
                return Err(RolesError::EntryTooLarge {
                    node: node.clone(),
                    size,
                    max: max_bytes,
                });
            }
            // Entry cost inside a map is its single-map size minus the empty-map overhead,
            // plus slack for the map length varint growing.
            let cost = size - self_overhead() + 1;
            if !current.is_empty() && current_bytes + cost > max_bytes {
                out.push(current.encode()?);
                current = RoleAssignments::new();
                current_bytes = self_overhead();
            }
            current.entries.insert(node.clone(), entry.clone());
            current_bytes += cost;
        }
        if !current.is_empty() {
            out.push(current.encode()?);
        }
        Ok(out)
    }
}

fn self_overhead() -> usize {
    // An empty map encodes as one varint byte.
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn upd(node: &str, version: u64, roles: &[&str], by: &str) -> RoleUpdate {
        RoleUpdate {
            node: node.to_string(),
            entry: RoleEntry {
                version,
                roles: roles.iter().map(|r| r.to_string()).collect(),
                updated_by: by.to_string(),
            },
        }
    }

    #[test]
    fn highest_version_wins() {
        let mut m = RoleAssignments::new();
        assert!(m.apply(&upd("n1", 2, &["compactor"], "a")));
        assert!(!m.apply(&upd("n1", 1, &["store_shard"], "a")));
        assert_eq!(m.roles_of("n1"), ["compactor".to_string()]);
        assert!(m.apply(&upd("n1", 3, &["store_shard"], "b")));
        assert_eq!(m.roles_of("n1"), ["store_shard".to_string()]);
        // Same update again changes nothing.
        assert!(!m.apply(&upd("n1", 3, &["store_shard"], "b")));
    }

    #[test]
    fn set_bumps_version_and_normalises() {
        let mut m = RoleAssignments::new();
        let u1 = m.set("n1", ["b", "a", "b"], "admin");
        assert_eq!(u1.entry.version, 1);
        assert_eq!(u1.entry.roles, vec!["a".to_string(), "b".to_string()]);
        let u2 = m.set("n1", Vec::<String>::new(), "admin");
        assert_eq!(u2.entry.version, 2);
        assert!(m.roles_of("n1").is_empty());
        assert_eq!(m.len(), 1, "tombstone kept");
        let mut other = RoleAssignments::new();
        other.apply(&u1);
        other.apply(&u2);
        assert!(other.roles_of("n1").is_empty());
    }

    #[test]
    fn nodes_with_role_lists_holders() {
        let mut m = RoleAssignments::new();
        m.set("n2", ["compactor", "store_shard"], "x");
        m.set("n1", ["store_shard"], "x");
        m.set("n3", ["query_planner"], "x");
        assert_eq!(m.nodes_with_role("store_shard"), vec!["n1", "n2"]);
        assert!(m.nodes_with_role("rule_evaluator").is_empty());
    }

    #[test]
    fn encode_decode_roundtrip_and_garbage() {
        let mut m = RoleAssignments::new();
        m.set("n1", ["compactor"], "x");
        m.set("n2", ["store_shard", "query_planner"], "y");
        let bytes = m.encode().unwrap();
        assert_eq!(RoleAssignments::decode(&bytes).unwrap(), m);
        assert!(RoleAssignments::decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(RoleAssignments::decode(&trailing).is_err());
        let u = upd("n9", 7, &["a"], "z");
        assert_eq!(RoleUpdate::decode(&u.encode().unwrap()).unwrap(), u);
        assert!(RoleUpdate::decode(b"").is_err());
    }

    #[test]
    fn chunks_fit_and_cover_everything() {
        let mut m = RoleAssignments::new();
        for i in 0..200 {
            m.set(
                &format!("node-{i:03}"),
                ["scraper_shipper", "store_shard", "query_planner"],
                "admin-node",
            );
        }
        let chunks = m.encode_chunks(500).unwrap();
        assert!(chunks.len() > 1);
        let mut back = RoleAssignments::new();
        for c in &chunks {
            assert!(c.len() <= 500, "chunk of {} bytes", c.len());
            back.merge(&RoleAssignments::decode(c).unwrap());
        }
        assert_eq!(back, m);
        assert!(matches!(
            m.encode_chunks(10),
            Err(RolesError::EntryTooLarge { .. })
        ));
    }

    fn arb_update() -> impl Strategy<Value = RoleUpdate> {
        (
            0usize..4,
            0u64..5,
            proptest::collection::vec(0usize..4, 0..3),
            0usize..3,
        )
            .prop_map(|(n, v, roles, by)| {
                let names = [
                    "compactor",
                    "store_shard",
                    "query_planner",
                    "rule_evaluator",
                ];
                RoleUpdate {
                    node: format!("n{n}"),
                    entry: RoleEntry {
                        version: v,
                        roles: normalise(roles.into_iter().map(|r| names[r])),
                        updated_by: format!("admin{by}"),
                    },
                }
            })
    }

    proptest! {
        /// Whatever order (and duplication) updates arrive in, every replica ends equal.
        #[test]
        fn merge_converges_in_any_order(
            updates in proptest::collection::vec(arb_update(), 0..30),
            seed in any::<u64>(),
        ) {
            let mut a = RoleAssignments::new();
            for u in &updates { a.apply(u); }
            let mut shuffled = updates.clone();
            // Deterministic Fisher-Yates driven by the seed.
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (s >> 33) as usize % (i + 1);
                shuffled.swap(i, j);
            }
            let mut b = RoleAssignments::new();
            for u in shuffled.iter().chain(updates.iter()) { b.apply(u); }
            prop_assert_eq!(&a, &b);

            // Merging whole maps: commutative and idempotent.
            let half = updates.len() / 2;
            let mut x = RoleAssignments::new();
            for u in &updates[..half] { x.apply(u); }
            let mut y = RoleAssignments::new();
            for u in &updates[half..] { y.apply(u); }
            let mut xy = x.clone(); xy.merge(&y);
            let mut yx = y.clone(); yx.merge(&x);
            prop_assert_eq!(&xy, &yx);
            prop_assert_eq!(&xy, &a);
            let again = xy.merge(&yx);
            prop_assert!(again.is_empty());
        }
    }
}
