//! Storage: the Prometheus-compatible TSDB (chunks, head + WAL, blocks) and shared data model.
pub mod block;
pub mod bucket;
pub mod chunkenc;
pub mod compact;
pub mod compactor;
pub mod db;
pub mod dedup;
pub mod downsample;
pub mod head;
pub mod model;
pub mod store;
pub mod tools;
pub mod wal;
