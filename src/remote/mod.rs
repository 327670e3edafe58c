//! Prometheus's remote-storage protocol as Strata speaks it: the protobuf messages
//! (`prompb`) shared by the remote-write receiver, remote write out (`write`, with its
//! `metrics`), the remote-read endpoint and the sidecar's reads from a Prometheus; `read`
//! converts between them and Strata's series for remote read (both answer types, and the
//! incremental decoder of streamed answers).

pub mod metrics;
pub mod prompb;
pub mod read;
pub mod write;
