//! Request/response RPC between nodes over TCP. A [`Request`] names the target role and method
//! and carries an opaque (bincode) body; the answer is a stream of chunks ended by `End` or an
//! `Error` frame, so large results flow with bounded memory. [`TransportServer`] accepts
//! connections and hands requests to an [`RpcHandler`]; [`TransportClient`] keeps one bounded
//! connection pool per peer. With a cluster key both ends authenticate each connection before
//! any frame is read (see `handshake`). Frame layout and size limits live in `frame`.

pub mod client;
pub mod frame;
pub mod handshake;
pub mod server;

pub use client::{ClientStats, ResponseChunks, TransportClient};
pub use server::{role_not_here, Listener, ServerStats, TransportServer};

use futures::Stream;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// Errors seen by transport callers.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("peer {addr} is unavailable: {reason}")]
    PeerUnavailable { addr: SocketAddr, reason: String },
    #[error("request to {addr} timed out after {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
    #[error("authentication with {addr} failed: {reason}")]
    Auth { addr: SocketAddr, reason: String },
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: u64, max: usize },
    #[error("protocol error with {addr}: {reason}")]
    Protocol { addr: SocketAddr, reason: String },
    #[error("{addr} answered with an error: {error}")]
    Remote {
        addr: SocketAddr,
        error: RemoteError,
    },
    #[error("cannot start the transport: {0}")]
    Setup(String),
}

pub type Result<T> = std::result::Result<T, TransportError>;

/// An RPC request. `id` is set by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub target_role: String,
    pub method: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(target_role: impl Into<String>, method: impl Into<String>, body: Vec<u8>) -> Self {
        Request {
            id: 0,
            target_role: target_role.into(),
            method: method.into(),
            body,
        }
    }
}

/// Broad class of a handler error, so callers can decide whether to retry elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteErrorKind {
    /// No such role on that node, or no such method.
    NotFound,
    BadRequest,
    /// The role is starting, stopping or overloaded: try another node.
    Unavailable,
    Internal,
}

/// An error produced by a handler and carried back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct RemoteError {
    pub kind: RemoteErrorKind,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// A handler's answer: chunks until the stream ends (then `End` is sent) or yields an error
/// (sent as an `Error` frame, ending the response).
pub type ResponseStream =
    Pin<Box<dyn Stream<Item = std::result::Result<Vec<u8>, RemoteError>> + Send>>;

/// A response made of one chunk.
pub fn single_response(bytes: Vec<u8>) -> ResponseStream {
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
}

/// Serves requests; one call per request, possibly many at once.
#[async_trait::async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    async fn handle(&self, req: Request) -> std::result::Result<ResponseStream, RemoteError>;
}

/// Settings shared by client and server.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest frame accepted or sent (length prefix included in the check of the body).
    pub max_frame_size: usize,
    pub cluster_key: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-call limit for `call`; for `call_stream`, the limit for the first frame and for
    /// each following frame.
    pub request_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Connections (and so in-flight requests) per peer.
    pub max_connections_per_peer: usize,
    /// A server connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent inbound connections; more wait in the accept queue.
    pub max_server_connections: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame_size: 16 * 1024 * 1024,
            cluster_key: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            max_connections_per_peer: 8,
            idle_timeout: Duration::from_secs(300),
            max_server_connections: 1024,
        }
    }
}

impl TransportConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_frame_size < 1024 || self.max_frame_size > u32::MAX as usize {
            return Err(TransportError::Setup(format!(
                "max_frame_size {} must be between 1 KiB and 4 GiB",
                self.max_frame_size
            )));
        }
        if self.max_connections_per_peer == 0 || self.max_server_connections == 0 {
            return Err(TransportError::Setup(
                "connection limits must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> Option<crate::cluster::auth::ClusterKey> {
        self.cluster_key
            .as_ref()
            .map(|k| crate::cluster::auth::ClusterKey::new(k.clone()))
    }
}
