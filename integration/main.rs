//! Strata's integration tests: nodes booted in-process on port 0 and the real binary as a
//! process, talking to real peers. One test binary; each area in its own module. The helpers
//! (test nodes, the S3 server, waiting, real peers) are in the `strata-testing` crate
//! (`testing/`), shared with `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod browser;
mod cardinality;
mod cluster;
mod compactor;
mod compactor_cluster;
mod compactor_downsample;
mod compactor_faults;
mod compactor_replicas;
mod configs;
mod discovery;
mod distributed;
mod downsampled_e2e;
mod downsampled_query;
mod ha_query;
mod hygiene_cluster;
mod lint_vs_promtool;
mod metric_hygiene;
mod metric_usage;
mod node_boot;
mod query_api;
mod query_bench;
mod receive;
mod remote_read;
mod remote_write_out;
mod rules;
mod rules_alertmanager;
mod rules_api;
mod rules_notifier_faults;
mod rules_vs_prometheus;
mod scrape;
mod scrape_bad;
mod scrape_bench;
mod scrape_config_api;
mod scrape_lint;
mod scrape_report;
mod shipping;
mod shipping_bench;
mod shipping_cli;
mod shipping_faults;
mod sidecar;
mod sidecar_rss;
mod store_shards;
mod tools_tsdb;
mod ui_apis;
mod web_ui;
mod web_ui_admin;
mod web_ui_hygiene;
