//! Strata's integration tests: nodes booted in-process on port 0 and the real binary as a
//! process, talking to real peers. One test binary; each area in its own module.

mod configs;
mod node_boot;
mod query_api;
mod shipping;
mod shipping_s3;
mod support;
