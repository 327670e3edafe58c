//! Strata's integration tests: nodes booted in-process on port 0 and the real binary as a
//! process, talking to real peers. One test binary; each area in its own module.

mod node_boot;
mod support;
