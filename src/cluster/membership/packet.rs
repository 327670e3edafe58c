//! The envelope around every gossip datagram: a magic byte, a mode byte and, when a cluster
//! key is set, a millisecond timestamp in front and an HMAC-SHA256 tag behind the SWIM payload.
//! The timestamp bounds replays to a window (SWIM messages are idempotent enough that a replay
//! inside the window does no harm). Pure functions; the task counts the drop reasons.

use super::stats::DropReason;
use crate::cluster::auth::{ClusterKey, MAC_LEN};

const MAGIC: u8 = 0x53;
const MODE_PLAIN: u8 = 0x01;
const MODE_AUTH: u8 = 0x81;
const TS_LEN: usize = 8;

/// Bytes the envelope adds to a SWIM payload.
pub fn overhead(key: Option<&ClusterKey>) -> usize {
    match key {
        Some(_) => 2 + TS_LEN + MAC_LEN,
        None => 2,
    }
}

/// Wraps `payload` for sending at time `now_ms`.
pub fn seal(payload: &[u8], key: Option<&ClusterKey>, now_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + overhead(key));
    out.push(MAGIC);
    match key {
        None => {
            out.push(MODE_PLAIN);
            out.extend_from_slice(payload);
        }
        Some(k) => {
            out.push(MODE_AUTH);
            out.extend_from_slice(&now_ms.to_be_bytes());
            out.extend_from_slice(payload);
            let tag = k.sign(&[&out]);
            out.extend_from_slice(&tag);
        }
    }
    out
}

/// Checks a received datagram and returns the SWIM payload inside it.
pub fn open<'a>(
    packet: &'a [u8],
    key: Option<&ClusterKey>,
    max_packet: usize,
    now_ms: u64,
    replay_window_ms: u64,
) -> Result<&'a [u8], DropReason> {
    if packet.len() > max_packet {
        return Err(DropReason::Oversized);
    }
    let (magic, mode) = match packet {
        [m, mode, ..] => (*m, *mode),
        _ => return Err(DropReason::Malformed),
    };
    if magic != MAGIC || (mode != MODE_PLAIN && mode != MODE_AUTH) {
        return Err(DropReason::Malformed);
    }
    match (key, mode) {
        (None, MODE_PLAIN) => Ok(&packet[2..]),
        (Some(k), MODE_AUTH) => {
            if packet.len() < 2 + TS_LEN + MAC_LEN + 1 {
                return Err(DropReason::Malformed);
            }
            let (signed, tag) = packet.split_at(packet.len() - MAC_LEN);
            if !k.verify(&[signed], tag) {
                return Err(DropReason::Unauthenticated);
            }
            let mut ts = [0u8; TS_LEN];
            ts.copy_from_slice(&signed[2..2 + TS_LEN]);
            let ts = u64::from_be_bytes(ts);
            if ts.abs_diff(now_ms) > replay_window_ms {
                return Err(DropReason::Stale);
            }
            Ok(&signed[2 + TS_LEN..])
        }
        _ => Err(DropReason::Unauthenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn roundtrip_plain_and_keyed() {
        let p = seal(b"hello", None, NOW);
        assert_eq!(open(&p, None, 1400, NOW, 1000), Ok(&b"hello"[..]));
        let k = ClusterKey::new(b"k".to_vec());
        let p = seal(b"hello", Some(&k), NOW);
        assert_eq!(p.len(), 5 + overhead(Some(&k)));
        assert_eq!(open(&p, Some(&k), 1400, NOW + 10, 1000), Ok(&b"hello"[..]));
    }

    #[test]
    fn rejections_have_reasons() {
        let k = ClusterKey::new(b"k".to_vec());
        let other = ClusterKey::new(b"other".to_vec());
        let keyed = seal(b"hello", Some(&k), NOW);
        let plain = seal(b"hello", None, NOW);
        assert_eq!(
            open(&keyed, Some(&other), 1400, NOW, 1000),
            Err(DropReason::Unauthenticated)
        );
        assert_eq!(
            open(&plain, Some(&k), 1400, NOW, 1000),
            Err(DropReason::Unauthenticated)
        );
        assert_eq!(
            open(&keyed, None, 1400, NOW, 1000),
            Err(DropReason::Unauthenticated)
        );
        assert_eq!(
            open(&keyed, Some(&k), 1400, NOW + 5000, 1000),
            Err(DropReason::Stale)
        );
        assert_eq!(
            open(&keyed, Some(&k), 10, NOW, 1000),
            Err(DropReason::Oversized)
        );
        assert_eq!(open(&[], None, 1400, NOW, 1000), Err(DropReason::Malformed));
        assert_eq!(
            open(&[0x53], None, 1400, NOW, 1000),
            Err(DropReason::Malformed)
        );
        let mut tampered = keyed.clone();
        tampered[12] ^= 1;
        assert_eq!(
            open(&tampered, Some(&k), 1400, NOW, 1000),
            Err(DropReason::Unauthenticated)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_nor_pass_auth(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = ClusterKey::new(b"k".to_vec());
            prop_assert!(open(&bytes, Some(&k), 1400, NOW, 1000).is_err());
            let _ = open(&bytes, None, 1400, NOW, 1000);
        }
    }
}
