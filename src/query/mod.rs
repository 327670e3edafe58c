//! The distributed query path of the QueryPlanner: the StoreAPI between nodes, the sources a
//! query reads, and fan-out over them, merging series from several sources and deduplicating
//! HA replicas with the pure core in `storage::dedup`.

pub mod fanout;
pub mod sources;
pub mod storeapi;
