//! Strata's integration tests: nodes booted in-process on port 0 and the real binary as a
//! process, talking to real peers. One test binary; each area in its own module.

mod cluster;
mod configs;
mod distributed;
mod ha_query;
mod node_boot;
mod query_api;
mod query_bench;
mod scrape;
mod scrape_bad;
mod scrape_bench;
mod scrape_support;
mod shipping;
mod shipping_bench;
mod shipping_cli;
mod shipping_faults;
mod shipping_s3;
mod store_shards;
mod support;
mod tools_tsdb;
