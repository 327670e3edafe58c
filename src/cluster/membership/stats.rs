//! Gossip traffic counters, shared between the membership task (which bumps them) and handles
//! (which read snapshots for `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an incoming packet was thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Larger than the configured maximum packet size.
    Oversized,
    /// Too short or without the Strata gossip magic.
    Malformed,
    /// Missing or invalid MAC while a cluster key is set (or a MAC sent to a node without key).
    Unauthenticated,
    /// Authentic but with a timestamp outside the replay window.
    Stale,
    /// Authentic framing but refused by the SWIM layer (undecodable, from ourselves, ...).
    Rejected,
    /// Dropped by the test-only partition filter.
    Filtered,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    send_failed: AtomicU64,
    oversized: AtomicU64,
    malformed: AtomicU64,
    unauthenticated: AtomicU64,
    stale: AtomicU64,
    rejected: AtomicU64,
    filtered: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Every datagram received, valid or not.
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Datagrams that could not be handed to the OS.
    pub send_failed: u64,
    pub dropped: DroppedPackets,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DroppedPackets {
    pub oversized: u64,
    pub malformed: u64,
    pub unauthenticated: u64,
    pub stale: u64,
    pub rejected: u64,
    pub filtered: u64,
}

impl DroppedPackets {
    pub fn total(&self) -> u64 {
        self.oversized
            + self.malformed
            + self.unauthenticated
            + self.stale
            + self.rejected
            + self.filtered
    }
}

impl Counters {
    pub(crate) fn received(&self, bytes: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.packets_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn send_failed(&self) {
        self.send_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        let c = match reason {
            DropReason::Oversized => &self.oversized,
            DropReason::Malformed => &self.malformed,
            DropReason::Unauthenticated => &self.unauthenticated,
            DropReason::Stale => &self.stale,
            DropReason::Rejected => &self.rejected,
            DropReason::Filtered => &self.filtered,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> GossipStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GossipStats {
            packets_in: r(&self.packets_in),
            packets_out: r(&self.packets_out),
            bytes_in: r(&self.bytes_in),
            bytes_out: r(&self.bytes_out),
            send_failed: r(&self.send_failed),
            dropped: DroppedPackets {
                oversized: r(&self.oversized),
                malformed: r(&self.malformed),
                unauthenticated: r(&self.unauthenticated),
                stale: r(&self.stale),
                rejected: r(&self.rejected),
                filtered: r(&self.filtered),
            },
        }
    }
}
