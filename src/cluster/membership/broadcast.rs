//! Custom cluster broadcasts riding on SWIM messages: small opaque payloads (e.g. role
//! assignment updates) that every node receives about once. Each payload is wrapped in an
//! envelope naming its origin, the origin's incarnation and a sequence number; the handler
//! remembers recently seen envelopes so foca stops re-spreading what a node already has.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::sync::broadcast;

use super::identity::NodeIdentity;

/// Largest payload accepted by `MembershipHandle::broadcast`: it must fit in one datagram
/// beside two identities and the SWIM header.
pub const MAX_BROADCAST_BYTES: usize = 700;

/// How many envelope ids are remembered per origin.
const SEEN_PER_ORIGIN: usize = 2048;
/// How many origins are remembered at most; beyond that the oldest one is forgotten.
const MAX_ORIGINS: usize = 4096;

/// A broadcast as delivered to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroadcast {
    /// Node id of the node that called `broadcast`.
    pub origin: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub origin: String,
    pub incarnation: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<4096>()
}

impl Envelope {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, bincode::error::EncodeError> {
        bincode::serde::encode_to_vec(self, config())
    }

    fn decode(bytes: &[u8]) -> Result<Self, BroadcastDecodeError> {
        let (e, used): (Envelope, usize) = bincode::serde::decode_from_slice(bytes, config())
            .map_err(|e| BroadcastDecodeError(e.to_string()))?;
        if used != bytes.len() {
            return Err(BroadcastDecodeError(format!(
                "{} trailing bytes after a broadcast envelope",
                bytes.len() - used
            )));
        }
        Ok(e)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bad cluster broadcast: {0}")]
pub struct BroadcastDecodeError(String);

/// Identifies one broadcast; foca replaces queued items only by an identical key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BroadcastKey {
    origin: String,
    incarnation: u64,
    seq: u64,
}

impl foca::Invalidates for BroadcastKey {
    fn invalidates(&self, other: &Self) -> bool {
        self == other
    }
}

#[derive(Default)]
struct Seen {
    order: VecDeque<(u64, u64)>,
    set: HashSet<(u64, u64)>,
}

/// The foca broadcast handler: dedups envelopes and hands new ones to subscribers.
pub(crate) struct Handler {
    seen: HashMap<String, Seen>,
    origins: VecDeque<String>,
    sink: broadcast::Sender<ClusterBroadcast>,
}

impl Handler {
    pub(crate) fn new(sink: broadcast::Sender<ClusterBroadcast>) -> Self {
        Handler {
            seen: HashMap::new(),
            origins: VecDeque::new(),
            sink,
        }
    }

    /// Records an envelope id; returns false when it was already known.
    fn remember(&mut self, origin: &str, id: (u64, u64)) -> bool {
        if !self.seen.contains_key(origin) {
            if self.origins.len() >= MAX_ORIGINS {
                if let Some(old) = self.origins.pop_front() {
                    self.seen.remove(&old);
                }
            }
            self.origins.push_back(origin.to_string());
            self.seen.insert(origin.to_string(), Seen::default());
        }
        let Some(s) = self.seen.get_mut(origin) else {
            return false;
        };
        if !s.set.insert(id) {
            return false;
        }
        s.order.push_back(id);
        if s.order.len() > SEEN_PER_ORIGIN {
            if let Some(old) = s.order.pop_front() {
                s.set.remove(&old);
            }
        }
        true
    }
}

impl foca::BroadcastHandler<NodeIdentity> for Handler {
    type Key = BroadcastKey;
    type Error = BroadcastDecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeIdentity>,
    ) -> Result<Option<BroadcastKey>, BroadcastDecodeError> {
        let env = Envelope::decode(data)?;
        if env.payload.len() > MAX_BROADCAST_BYTES {
            return Err(BroadcastDecodeError(format!(
                "payload of {} bytes exceeds {MAX_BROADCAST_BYTES}",
                env.payload.len()
            )));
        }
        if !self.remember(&env.origin, (env.incarnation, env.seq)) {
            return Ok(None);
        }
        // Our own broadcasts (sender None) are not echoed to our own subscribers.
        if sender.is_some() {
            // No subscriber is not an error: the state is still spread onwards.
            let _ = self.sink.send(ClusterBroadcast {
                origin: env.origin.clone(),
                payload: env.payload,
            });
        }
        Ok(Some(BroadcastKey {
            origin: env.origin,
            incarnation: env.incarnation,
            seq: env.seq,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::BroadcastHandler;

    #[test]
    fn dedups_and_delivers_once() {
        let (tx, mut rx) = broadcast::channel(8);
        let mut h = Handler::new(tx);
        let env = Envelope {
            origin: "n1".into(),
            incarnation: 1,
            seq: 1,
            payload: b"x".to_vec(),
        }
        .encode()
        .unwrap();
        let peer = NodeIdentity::placeholder("127.0.0.1:1".parse().unwrap());
        assert!(h.receive_item(&env, Some(&peer)).unwrap().is_some());
        assert!(h.receive_item(&env, Some(&peer)).unwrap().is_none());
        assert_eq!(rx.try_recv().unwrap().payload, b"x".to_vec());
        assert!(rx.try_recv().is_err());
        assert!(h.receive_item(b"\xff\xff\xff", Some(&peer)).is_err());
    }
}
