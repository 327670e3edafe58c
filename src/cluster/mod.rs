//! Cluster layer of a Strata node: who is in the cluster (SWIM membership over UDP), who owns
//! which piece of work (rendezvous hashing), which node runs which roles (a gossiped, versioned
//! map, the role policy and the service that keeps both), which roles run here now, singleton
//! leases in the bucket, and how nodes call each other (length-prefixed bincode RPC over TCP).
//! Everything here is plain tokio code with no actor framework; the node wires these handles to
//! its actors.

pub mod auth;
pub mod hashring;
pub mod lease;
pub mod membership;
pub mod ownership;
pub mod policy;
pub mod roles;
pub mod running;
pub mod service;
pub mod transport;

/// A node's cluster-wide name (`node.id` in the config). Kept as a plain string so it can be
/// used directly as a map key, a label value and a hashing input.
pub type NodeId = String;
