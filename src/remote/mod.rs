//! Prometheus's remote-storage protocol as Strata speaks it: the protobuf messages
//! (`prompb`) shared by the remote-write receiver, remote write out (`write`, with its
//! `metrics`), the remote-read endpoint and the sidecar's reads from a Prometheus.

pub mod metrics;
pub mod prompb;
pub mod write;
