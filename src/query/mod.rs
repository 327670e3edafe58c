//! Query execution for every caller (`service`: the HTTP API, the rule evaluator, the UI all run
//! queries through it), and the distributed query path of the QueryPlanner under it: the sources
//! a query reads, fan-out over them, merging of series from several sources and HA replica
//! deduplication (with the pure core in `storage::dedup`), and the StoreAPI between nodes (wire
//! types, the server half, and the RPC dispatcher of the node's transport).

pub mod fanout;
pub mod service;
pub mod sources;
pub mod storeapi;
pub mod usage;
