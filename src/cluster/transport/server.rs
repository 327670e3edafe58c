//! The RPC server: accepts TCP connections, runs the handshake, then serves requests one after
//! another per connection, streaming each handler's chunks back as frames (TCP backpressure
//! paces the handler). Bad input on a connection (garbage, oversized or malformed frames) is
//! counted and closes that connection only.

use super::frame::{self, Frame, FrameError};
use super::TransportError;
use super::{handshake, RemoteError, RemoteErrorKind, Result, RpcHandler, TransportConfig};
use crate::cluster::auth::ClusterKey;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Counters of a running server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub connections_accepted: u64,
    pub connections_active: u64,
    pub handshake_failures: u64,
    pub frames_too_large: u64,
    pub malformed_frames: u64,
    pub requests: u64,
    pub request_errors: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    handshake_failures: AtomicU64,
    too_large: AtomicU64,
    malformed: AtomicU64,
    requests: AtomicU64,
    request_errors: AtomicU64,
}

/// The listening side of the transport. Dropping it does not stop it; call `shutdown`.
pub struct TransportServer {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

/// Where the listening socket comes from.
pub enum Listener {
    Tokio(TcpListener),
    /// An already bound std listener (converted to non-blocking here).
    Std(std::net::TcpListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tokio(l)
    }
}

impl From<std::net::TcpListener> for Listener {
    fn from(l: std::net::TcpListener) -> Self {
        Listener::Std(l)
    }
}

impl TransportServer {
    /// Starts serving on `listener`. Must be called inside a tokio runtime.
    pub fn start(
        listener: impl Into<Listener>,
        handler: Arc<dyn RpcHandler>,
        cfg: TransportConfig,
    ) -> Result<TransportServer> {
        cfg.validate()?;
        let listener = match listener.into() {
            Listener::Tokio(l) => l,
            Listener::Std(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| TransportError::Setup(e.to_string()))?;
                TcpListener::from_std(l).map_err(|e| TransportError::Setup(e.to_string()))?
            }
        };
        let local_addr = listener
            .local_addr()
            .map_err(|e| TransportError::Setup(e.to_string()))?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, handler, cfg, counters.clone()));
        Ok(TransportServer {
            local_addr,
            counters,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> ServerStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: r(&c.accepted),
            connections_active: r(&c.active),
            handshake_failures: r(&c.handshake_failures),
            frames_too_large: r(&c.too_large),
            malformed_frames: r(&c.malformed),
            requests: r(&c.requests),
            request_errors: r(&c.request_errors),
        }
    }

    /// Stops accepting. Connections already open finish their current request and close when
    /// their client goes away or idles out.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn RpcHandler>,
    cfg: TransportConfig,
    counters: Arc<Counters>,
) {
    let limit = Arc::new(Semaphore::new(cfg.max_server_connections));
    let key = cfg.key();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE or a connection reset before accept; back off briefly.
                tracing::warn!(error = %e, "rpc accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        let handler = handler.clone();
        let cfg = cfg.clone();
        let key = key.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            // Decrements `active` even if the handler panics and unwinds this task.
            let _active = ActiveGuard(counters.clone());
            serve_connection(stream, peer, handler, &cfg, key.as_ref(), &counters).await;
            drop(permit);
        });
    }
}

struct ActiveGuard(Arc<Counters>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<dyn RpcHandler>,
    cfg: &TransportConfig,
    key: Option<&ClusterKey>,
    counters: &Counters,
) {
    let mut stream = stream;
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(cfg.handshake_timeout, handshake::server(&mut stream, key)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "rpc handshake failed");
            counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "rpc handshake timed out");
            counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let max = cfg.max_frame_size;
    loop {
        let frame =
            match tokio::time::timeout(cfg.idle_timeout, frame::read_frame(&mut rd, max)).await {
                Err(_) => return,
                Ok(Ok(f)) => f,
                Ok(Err(FrameError::Closed)) => return,
                Ok(Err(FrameError::TooLarge { len, max })) => {
                    tracing::debug!(%peer, len, max, "rpc frame too large; closing");
                    counters.too_large.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Err(FrameError::Malformed(reason))) => {
                    tracing::debug!(%peer, %reason, "malformed rpc frame; closing");
                    counters.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Err(FrameError::Io(_))) => return,
            };
        let req = match frame {
            Frame::Request(r) => r,
            other => {
                tracing::debug!(%peer, id = other.id(), "unexpected frame from client; closing");
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if respond(&mut wr, req, &handler, max, counters)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Runs one request and writes its response frames. Err means the connection is unusable.
async fn respond<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    req: super::Request,
    handler: &Arc<dyn RpcHandler>,
    max: usize,
    counters: &Counters,
) -> std::result::Result<(), FrameError> {
    let id = req.id;
    let mut stream = match handler.handle(req).await {
        Ok(s) => s,
        Err(error) => {
            counters.request_errors.fetch_add(1, Ordering::Relaxed);
            frame::write_frame(wr, &Frame::Error { id, error }, max).await?;
            wr.flush().await?;
            return Ok(());
        }
    };
    let piece = frame::max_chunk_payload(max);
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => {
                for part in bytes.chunks(piece) {
                    frame::write_chunk(wr, id, part, max).await?;
                }
                // Flush per chunk so the client sees data as it is produced.
                wr.flush().await?;
            }
            Err(error) => {
                counters.request_errors.fetch_add(1, Ordering::Relaxed);
                frame::write_frame(wr, &Frame::Error { id, error }, max).await?;
                wr.flush().await?;
                return Ok(());
            }
        }
    }
    frame::write_frame(wr, &Frame::End { id }, max).await?;
    wr.flush().await?;
    Ok(())
}

/// A handler error for requests to a role this node does not run; for integrators' routers.
pub fn role_not_here(role: &str) -> RemoteError {
    RemoteError::new(
        RemoteErrorKind::NotFound,
        format!("role {role} is not running on this node"),
    )
}
