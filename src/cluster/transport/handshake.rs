//! The connection handshake of the RPC transport. The client opens with a magic string, a
//! version, whether it uses a key, and a random nonce. Without a key the server answers with an
//! accept byte. With a key both sides prove knowledge of it by HMAC over both nonces (fresh on
//! each side, so a recorded handshake cannot be replayed), and only then are frames exchanged.
//! Anything else on the port (garbage, a plain HTTP request) fails the magic check.

use crate::cluster::auth::{ClusterKey, MAC_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MAGIC: &[u8; 8] = b"STRATARP";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const HELLO_LEN: usize = 8 + 1 + 1 + NONCE_LEN;
const ACCEPT: u8 = 1;
const REJECT: u8 = 0;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a Strata RPC client (bad magic)")]
    BadMagic,
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("cluster key mismatch: {0}")]
    KeyMismatch(&'static str),
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    #[error("i/o error during handshake: {0}")]
    Io(#[from] std::io::Error),
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::fill(&mut n[..]);
    n
}

/// Client side; returns once the server accepted us.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    key: Option<&ClusterKey>,
) -> Result<(), HandshakeError> {
    let cn = nonce();
    let mut hello = Vec::with_capacity(HELLO_LEN);
    hello.extend_from_slice(MAGIC);
    hello.push(VERSION);
    hello.push(u8::from(key.is_some()));
    hello.extend_from_slice(&cn);
    s.write_all(&hello).await?;
    s.flush().await?;
    if let Some(k) = key {
        let mut reply = [0u8; NONCE_LEN + MAC_LEN];
        s.read_exact(&mut reply).await.map_err(|_| {
            HandshakeError::KeyMismatch("server refused a keyed handshake (no or other key?)")
        })?;
        let (sn, server_tag) = reply.split_at(NONCE_LEN);
        if !k.verify(&[b"strata-rpc-server", &cn, sn], server_tag) {
            return Err(HandshakeError::Auth("server does not know the cluster key"));
        }
        let tag = k.sign(&[b"strata-rpc-client", sn, &cn]);
        s.write_all(&tag).await?;
        s.flush().await?;
    }
    let mut status = [0u8; 1];
    s.read_exact(&mut status)
        .await
        .map_err(|_| HandshakeError::Auth("server closed the connection during the handshake"))?;
    if status[0] != ACCEPT {
        return Err(if key.is_some() {
            HandshakeError::Auth("server rejected our key")
        } else {
            HandshakeError::KeyMismatch("server requires a cluster key")
        });
    }
    Ok(())
}

/// Server side; on error the caller closes the connection.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    key: Option<&ClusterKey>,
) -> Result<(), HandshakeError> {
    let mut hello = [0u8; HELLO_LEN];
    s.read_exact(&mut hello[..8]).await?;
    if &hello[..8] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    s.read_exact(&mut hello[8..]).await?;
    if hello[8] != VERSION {
        return Err(HandshakeError::Version(hello[8]));
    }
    let client_keyed = hello[9] == 1;
    let cn = &hello[10..];
    match key {
        None if client_keyed => {
            let _ = s.write_all(&[REJECT]).await;
            Err(HandshakeError::KeyMismatch(
                "client uses a key, this node has none",
            ))
        }
        Some(_) if !client_keyed => {
            let _ = s.write_all(&[REJECT]).await;
            Err(HandshakeError::KeyMismatch("client sent no key"))
        }
        None => {
            s.write_all(&[ACCEPT]).await?;
            s.flush().await?;
            Ok(())
        }
        Some(k) => {
            let sn = nonce();
            let tag = k.sign(&[b"strata-rpc-server", cn, &sn]);
            s.write_all(&sn).await?;
            s.write_all(&tag).await?;
            s.flush().await?;
            let mut client_tag = [0u8; MAC_LEN];
            s.read_exact(&mut client_tag).await?;
            if !k.verify(&[b"strata-rpc-client", &sn, cn], &client_tag) {
                let _ = s.write_all(&[REJECT]).await;
                return Err(HandshakeError::Auth("client does not know the cluster key"));
            }
            s.write_all(&[ACCEPT]).await?;
            s.flush().await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(
        ck: Option<&[u8]>,
        sk: Option<&[u8]>,
    ) -> (Result<(), HandshakeError>, Result<(), HandshakeError>) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let ck = ck.map(|k| ClusterKey::new(k.to_vec()));
        let sk = sk.map(|k| ClusterKey::new(k.to_vec()));
        let srv = tokio::spawn(async move {
            let r = server(&mut b, sk.as_ref()).await;
            drop(b);
            r
        });
        let c = client(&mut a, ck.as_ref()).await;
        drop(a);
        (c, srv.await.unwrap())
    }

    #[tokio::test]
    async fn matching_keys_and_no_keys_accept() {
        let (c, s) = pair(Some(b"k"), Some(b"k")).await;
        assert!(c.is_ok() && s.is_ok(), "{c:?} {s:?}");
        let (c, s) = pair(None, None).await;
        assert!(c.is_ok() && s.is_ok());
    }

    #[tokio::test]
    async fn mismatches_are_rejected_on_both_sides() {
        let (c, s) = pair(Some(b"k"), Some(b"other")).await;
        assert!(c.is_err() && s.is_err(), "{c:?} {s:?}");
        let (c, s) = pair(None, Some(b"k")).await;
        assert!(c.is_err() && s.is_err());
        let (c, s) = pair(Some(b"k"), None).await;
        assert!(c.is_err() && s.is_err());
    }

    #[tokio::test]
    async fn garbage_fails_the_magic_check() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(matches!(
            server(&mut b, None).await,
            Err(HandshakeError::BadMagic)
        ));
    }
}
