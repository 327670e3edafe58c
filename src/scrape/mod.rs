//! Scraping Prometheus targets. The pure, I/O-free half: applying relabel rules to label sets
//! (`relabel`), parsing exposition bodies (`parser`), checking their metric names against
//! Prometheus's naming rules (`lint`), building targets from discovered groups (`target`),
//! turning a body into head samples with staleness (`append`) and choosing this node's share
//! of the targets (`shard`). The I/O half: file, DNS and HTTP discovery (`file_sd`, `dns_sd`,
//! `http_sd`), the dry run of a job before it is stored (`dry_run`), one task per target
//! (`scrape_loop`) and the pools of a config (`manager`), which the ScraperShipper role starts
//! and stops and the HTTP API reads and reloads.

pub mod append;
pub mod dns_sd;
pub mod dry_run;
pub mod file_sd;
pub mod http_sd;
pub mod lint;
pub mod manager;
pub mod parser;
pub mod relabel;
pub mod reload;
pub mod scrape_loop;
pub mod shard;
pub mod target;

pub use manager::{ReloadReport, ScrapeManager, TargetsSnapshot};
