//! The cluster key and the HMAC-SHA256 helpers shared by gossip (per-packet MACs) and the RPC
//! transport (challenge-response handshake). Pure functions over byte slices; MAC checks are
//! constant-time through `hmac`'s `verify_slice`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;

/// A shared secret that authenticates gossip packets and RPC connections. Cheap to clone.
#[derive(Clone)]
pub struct ClusterKey(std::sync::Arc<Vec<u8>>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

impl ClusterKey {
    /// Wraps raw key bytes (e.g. the content of `cluster.key_file`, trimmed by the caller).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ClusterKey(std::sync::Arc::new(bytes.into()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this constructor cannot fail; fall back to the
        // empty key rather than panic if a future `hmac` changed that.
        HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
    }

    /// The tag over the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut mac = self.mac();
        for p in parts {
            mac.update(p);
        }
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Whether `tag` is the tag over the concatenation of `parts` (constant-time).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        for p in parts {
            mac.update(p);
        }
        mac.verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_rejects() {
        let k = ClusterKey::new(b"secret".to_vec());
        let tag = k.sign(&[b"ab", b"c"]);
        assert!(k.verify(&[b"abc"], &tag));
        assert!(!k.verify(&[b"abd"], &tag));
        assert!(!ClusterKey::new(b"other".to_vec()).verify(&[b"abc"], &tag));
        assert!(!k.verify(&[b"abc"], &tag[..31]));
        assert_eq!(format!("{k:?}"), "ClusterKey(6 bytes)");
    }
}
