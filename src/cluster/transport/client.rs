//! The RPC client: one pool per peer address, each with at most `max_connections_per_peer`
//! connections; a semaphore permit is held for every request in flight, so a slow peer cannot
//! soak up unbounded sockets or memory. A connection carries one request at a time and goes
//! back to the pool once its response has been read to the end; a response abandoned midway
//! closes its connection. A request on a pooled connection that turns out to be dead is retried
//! once on a fresh connection.

use super::frame::{self, Frame, FrameError};
use super::{handshake, Request, Result, TransportConfig, TransportError};
use crate::cluster::auth::ClusterKey;
use futures::Stream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The chunks of a response as they arrive; ends after the server's `End` frame.
pub type ResponseChunks = std::pin::Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// Counters of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub connections_opened: u64,
    pub connect_failures: u64,
    pub requests: u64,
    pub timeouts: u64,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    connect_failures: AtomicU64,
    requests: AtomicU64,
    timeouts: AtomicU64,
}

struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: BufWriter<OwnedWriteHalf>,
}

struct PeerPool {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
}

/// Client side of the transport; cheap to clone, share one per node.
#[derive(Clone)]
pub struct TransportClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: TransportConfig,
    key: Option<ClusterKey>,
    pools: Mutex<HashMap<SocketAddr, Arc<PeerPool>>>,
    next_id: AtomicU64,
    counters: Counters,
}

impl TransportClient {
    pub fn new(cfg: TransportConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(TransportClient {
            inner: Arc::new(Inner {
                key: cfg.key(),
                cfg,
                pools: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                counters: Counters::default(),
            }),
        })
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            connections_opened: r(&c.opened),
            connect_failures: r(&c.connect_failures),
            requests: r(&c.requests),
            timeouts: r(&c.timeouts),
        }
    }

    /// Drops the pooled idle connections to `peer` (e.g. when membership says it is down).
    pub fn forget_peer(&self, peer: SocketAddr) {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.remove(&peer);
    }

    /// Sends `req` and collects the whole response, within `request_timeout`.
    pub async fn call(&self, peer: SocketAddr, req: Request) -> Result<Vec<u8>> {
        let after = self.inner.cfg.request_timeout;
        let work = async {
            let mut stream = self.call_stream(peer, req).await?;
            let mut out = Vec::new();
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                out.extend_from_slice(&chunk?);
            }
            Ok(out)
        };
        match tokio::time::timeout(after, work).await {
            Ok(r) => r,
            Err(_) => {
                self.inner.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(TransportError::Timeout { addr: peer, after })
            }
        }
    }

    /// Sends `req` and returns its response chunks as they arrive. The first frame is awaited
    /// here, so a handler error or an unreachable peer is reported by this call.
    pub async fn call_stream(&self, peer: SocketAddr, mut req: Request) -> Result<ResponseChunks> {
        req.id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let pool = self.pool(peer);
        let timeout = self.inner.cfg.request_timeout;
        let permit = match tokio::time::timeout(timeout, pool.permits.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(TransportError::PeerUnavailable {
                    addr: peer,
                    reason: "connection pool closed".into(),
                })
            }
            Err(_) => {
                self.inner.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(TransportError::Timeout {
                    addr: peer,
                    after: timeout,
                });
            }
        };
        let pooled = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (conn, first) = match pooled {
            Some(conn) => match self.send_and_read_first(peer, conn, &req).await {
                Ok(x) => x,
                // A pooled connection may have been closed by the server's idle timeout.
                Err(Attempt::Stale) => {
                    let conn = self.connect(peer).await?;
                    self.first_on_fresh(peer, conn, &req).await?
                }
                Err(Attempt::Fatal(e)) => return Err(e),
            },
            None => {
                let conn = self.connect(peer).await?;
                self.first_on_fresh(peer, conn, &req).await?
            }
        };
        let state = Reading {
            conn: Some(conn),
            pending: Some(first),
            pool,
            permit: Some(permit),
            peer,
            id: req.id,
            max: self.inner.cfg.max_frame_size,
            timeout,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut s| async move {
                let item = s.next_item().await?;
                Some((item, s))
            },
        )))
    }

    async fn first_on_fresh(
        &self,
        peer: SocketAddr,
        conn: Conn,
        req: &Request,
    ) -> Result<(Conn, Frame)> {
        match self.send_and_read_first(peer, conn, req).await {
            Ok(x) => Ok(x),
            Err(Attempt::Stale) => Err(TransportError::PeerUnavailable {
                addr: peer,
                reason: "connection closed before a response".into(),
            }),
            Err(Attempt::Fatal(e)) => Err(e),
        }
    }

    fn pool(&self, peer: SocketAddr) -> Arc<PeerPool> {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry(peer)
            .or_insert_with(|| {
                Arc::new(PeerPool {
                    permits: Arc::new(Semaphore::new(self.inner.cfg.max_connections_per_peer)),
                    idle: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    async fn connect(&self, peer: SocketAddr) -> Result<Conn> {
        let cfg = &self.inner.cfg;
        let fail = |reason: String| {
            self.inner
                .counters
                .connect_failures
                .fetch_add(1, Ordering::Relaxed);
            TransportError::PeerUnavailable { addr: peer, reason }
        };
        let mut stream =
            match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(peer)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(fail(format!("connect: {e}"))),
                Err(_) => {
                    return Err(fail(format!(
                        "connect timed out after {:?}",
                        cfg.connect_timeout
                    )))
                }
            };
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(
            cfg.handshake_timeout,
            handshake::client(&mut stream, self.inner.key.as_ref()),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(
                e
                @ (handshake::HandshakeError::Auth(_) | handshake::HandshakeError::KeyMismatch(_)),
            )) => {
                self.inner
                    .counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(TransportError::Auth {
                    addr: peer,
                    reason: e.to_string(),
                });
            }
            Ok(Err(e)) => return Err(fail(format!("handshake: {e}"))),
            Err(_) => return Err(fail("handshake timed out".into())),
        }
        self.inner.counters.opened.fetch_add(1, Ordering::Relaxed);
        let (rd, wr) = stream.into_split();
        Ok(Conn {
            rd: BufReader::new(rd),
            wr: BufWriter::new(wr),
        })
    }

    async fn send_and_read_first(
        &self,
        peer: SocketAddr,
        mut conn: Conn,
        req: &Request,
    ) -> std::result::Result<(Conn, Frame), Attempt> {
        let max = self.inner.cfg.max_frame_size;
        let timeout = self.inner.cfg.request_timeout;
        let frame = Frame::Request(req.clone());
        match frame::write_frame(&mut conn.wr, &frame, max).await {
            Ok(()) => {}
            Err(FrameError::TooLarge { len, max }) => {
                return Err(Attempt::Fatal(TransportError::FrameTooLarge { len, max }))
            }
            Err(_) => return Err(Attempt::Stale),
        }
        if conn.wr.flush().await.is_err() {
            return Err(Attempt::Stale);
        }
        match tokio::time::timeout(timeout, frame::read_frame(&mut conn.rd, max)).await {
            Err(_) => {
                self.inner.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Attempt::Fatal(TransportError::Timeout {
                    addr: peer,
                    after: timeout,
                }))
            }
            Ok(Ok(f)) => Ok((conn, f)),
            Ok(Err(FrameError::Closed)) => Err(Attempt::Stale),
            Ok(Err(FrameError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Err(Attempt::Stale)
            }
            Ok(Err(e)) => Err(Attempt::Fatal(map_frame_error(peer, e))),
        }
    }
}

enum Attempt {
    /// The connection died before any response byte: safe to retry on a new one.
    Stale,
    Fatal(TransportError),
}

fn map_frame_error(peer: SocketAddr, e: FrameError) -> TransportError {
    match e {
        FrameError::TooLarge { len, max } => TransportError::FrameTooLarge { len, max },
        FrameError::Malformed(reason) => TransportError::Protocol { addr: peer, reason },
        FrameError::Closed => TransportError::PeerUnavailable {
            addr: peer,
            reason: "connection closed in the middle of a response".into(),
        },
        FrameError::Io(e) => TransportError::PeerUnavailable {
            addr: peer,
            reason: e.to_string(),
        },
    }
}

/// State of a response being read; returns the connection to its pool after `End`.
struct Reading {
    conn: Option<Conn>,
    pending: Option<Frame>,
    pool: Arc<PeerPool>,
    permit: Option<OwnedSemaphorePermit>,
    peer: SocketAddr,
    id: u64,
    max: usize,
    timeout: Duration,
}

impl Reading {
    async fn next_item(&mut self) -> Option<Result<Vec<u8>>> {
        let frame = match self.pending.take() {
            Some(f) => f,
            None => {
                let conn = self.conn.as_mut()?;
                match tokio::time::timeout(self.timeout, frame::read_frame(&mut conn.rd, self.max))
                    .await
                {
                    Ok(Ok(f)) => f,
                    Ok(Err(e)) => return Some(Err(self.fail(map_frame_error(self.peer, e)))),
                    Err(_) => {
                        let e = TransportError::Timeout {
                            addr: self.peer,
                            after: self.timeout,
                        };
                        return Some(Err(self.fail(e)));
                    }
                }
            }
        };
        if frame.id() != self.id {
            let e = TransportError::Protocol {
                addr: self.peer,
                reason: format!(
                    "response for request {} while waiting for {}",
                    frame.id(),
                    self.id
                ),
            };
            return Some(Err(self.fail(e)));
        }
        match frame {
            Frame::Chunk { data, .. } => Some(Ok(data)),
            Frame::End { .. } => {
                self.finish();
                None
            }
            Frame::Error { error, .. } => {
                self.finish();
                Some(Err(TransportError::Remote {
                    addr: self.peer,
                    error,
                }))
            }
            Frame::Request(_) => {
                let e = TransportError::Protocol {
                    addr: self.peer,
                    reason: "server sent a request frame".into(),
                };
                Some(Err(self.fail(e)))
            }
        }
    }

    /// The response is complete: the connection can serve the next request.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(conn);
        }
        self.permit.take();
    }

    /// The connection is in an unknown state: close it.
    fn fail(&mut self, e: TransportError) -> TransportError {
        self.conn.take();
        self.permit.take();
        e
    }
}
