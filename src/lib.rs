//! Strata: Prometheus at scale in one binary. Every node runs the same program and hosts any of
//! five roles (scraper_shipper, store_shard, query_planner, compactor, rule_evaluator) as
//! supervised actors. See `DESIGN.md` in the shared folder for the map.

pub mod actors;
pub mod apiconfig;
pub mod cli;
pub mod cluster;

pub mod config;
pub mod gocompat;
pub mod http;
pub mod httpclient;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod promql;
pub mod query;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod sidecar;
pub mod storage;
pub mod time;
