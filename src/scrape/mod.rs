//! The pure, I/O-free half of scraping: applying relabel rules to label sets and parsing
//! exposition bodies (Prometheus text 0.0.4 and OpenMetrics 1.0) into samples and metadata.
//! The ScraperShipper actor does the HTTP and storage around these.

pub mod parser;
pub mod relabel;
