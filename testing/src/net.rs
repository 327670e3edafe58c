//! Free loopback ports, for child processes that cannot bind port 0 and report the port back.
//! (In-process nodes and servers bind port 0 themselves and need none of this.)
//!
//! A port is free when asked; another process may take it before the child binds it, which
//! on loopback in a test run is rare enough to accept.

use std::net::{TcpListener, UdpSocket};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// `n` distinct free TCP ports. Asking `free_port` n times is not enough: a port handed back by
/// one call can come out of the next one.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for gossip).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}
