//! The distributed query path of the QueryPlanner: the StoreAPI between nodes, the sources a
//! query reads, fan-out over them, merging of series from several sources, and HA replica
//! deduplication.

pub mod dedup;
pub mod fanout;
pub mod sources;
pub mod storeapi;
