//! Real-socket tests of the RPC transport: calls, streaming, errors, authentication, garbage,
//! oversized frames, pool bounds and reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata::cluster::transport::{
    handshake, single_response, RemoteError, RemoteErrorKind, Request, ResponseStream, RpcHandler,
    TransportClient, TransportConfig, TransportError, TransportServer,
};
use strata_testing::{free_port, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct TestHandler {
    current: AtomicUsize,
    max_seen: AtomicUsize,
}

#[async_trait::async_trait]
impl RpcHandler for TestHandler {
    async fn handle(&self, req: Request) -> Result<ResponseStream, RemoteError> {
        match (req.target_role.as_str(), req.method.as_str()) {
            ("echo", "echo") => Ok(single_response(req.body)),
            ("echo", "chunks") => {
                let n = req.body.first().copied().unwrap_or(0);
                Ok(Box::pin(futures::stream::iter(
                    (0..n).map(|i| Ok(vec![i; 10])),
                )))
            }
            ("echo", "fail_midway") => Ok(Box::pin(futures::stream::iter(vec![
                Ok(b"part".to_vec()),
                Err(RemoteError::new(RemoteErrorKind::Internal, "disk on fire")),
            ]))),
            ("echo", "panic") => panic!("handler bug (expected in this test)"),
            ("echo", "hang") => {
                std::future::pending::<()>().await;
                Ok(single_response(Vec::new()))
            }
            ("echo", "busy") => {
                let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_seen.fetch_max(now, Ordering::SeqCst);
                // Simulated work so that requests overlap (part of the test, not a wait).
                tokio::time::sleep(Duration::from_millis(30)).await;
                self.current.fetch_sub(1, Ordering::SeqCst);
                Ok(single_response(b"done".to_vec()))
            }
            (role, _) => Err(strata::cluster::transport::role_not_here(role)),
        }
    }
}

fn handler() -> Arc<TestHandler> {
    Arc::new(TestHandler {
        current: AtomicUsize::new(0),
        max_seen: AtomicUsize::new(0),
    })
}

async fn server_with(cfg: TransportConfig, h: Arc<TestHandler>) -> TransportServer {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    TransportServer::start(l, h, cfg).unwrap()
}

/// How long a server gets to count what a test just did to it.
const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn call_stream_and_remote_errors() {
    let srv = server_with(TransportConfig::default(), handler()).await;
    let client = TransportClient::new(TransportConfig::default()).unwrap();
    let addr = srv.local_addr();
    let out = client
        .call(addr, Request::new("echo", "echo", b"hello".to_vec()))
        .await
        .unwrap();
    assert_eq!(out, b"hello");
    let mut s = client
        .call_stream(addr, Request::new("echo", "chunks", vec![5]))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(c) = s.next().await {
        got.push(c.unwrap());
    }
    assert_eq!(got, (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
    // Empty response.
    let out = client
        .call(addr, Request::new("echo", "chunks", vec![0]))
        .await
        .unwrap();
    assert!(out.is_empty());
    match client
        .call(addr, Request::new("compactor", "x", vec![]))
        .await
    {
        Err(TransportError::Remote { error, .. }) => {
            assert_eq!(error.kind, RemoteErrorKind::NotFound)
        }
        other => panic!("expected remote NotFound, got {other:?}"),
    }
    match client
        .call(addr, Request::new("echo", "fail_midway", vec![]))
        .await
    {
        Err(TransportError::Remote { error, .. }) => assert_eq!(error.message, "disk on fire"),
        other => panic!("expected remote error, got {other:?}"),
    }
    // All of that went over one reused connection.
    assert_eq!(client.stats().connections_opened, 1);
    assert_eq!(srv.stats().requests, 5);
}

#[tokio::test]
async fn unreachable_peer_and_timeout_are_clear_errors() {
    let gone = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let client = TransportClient::new(TransportConfig {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    match client
        .call(gone, Request::new("echo", "echo", vec![]))
        .await
    {
        Err(TransportError::PeerUnavailable { addr, .. }) => assert_eq!(addr, gone),
        other => panic!("expected PeerUnavailable, got {other:?}"),
    }
    let srv = server_with(TransportConfig::default(), handler()).await;
    match client
        .call(srv.local_addr(), Request::new("echo", "hang", vec![]))
        .await
    {
        Err(TransportError::Timeout { addr, .. }) => assert_eq!(addr, srv.local_addr()),
        other => panic!("expected Timeout, got {other:?}"),
    }
    // The abandoned connection was dropped; a new call still works.
    let out = client
        .call(
            srv.local_addr(),
            Request::new("echo", "echo", b"x".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(out, b"x");
}

#[tokio::test]
async fn cluster_key_is_required_and_checked() {
    let keyed = |k: &[u8]| TransportConfig {
        cluster_key: Some(k.to_vec()),
        ..Default::default()
    };
    let srv = server_with(keyed(b"secret"), handler()).await;
    let addr = srv.local_addr();
    let good = TransportClient::new(keyed(b"secret")).unwrap();
    assert_eq!(
        good.call(addr, Request::new("echo", "echo", b"ok".to_vec()))
            .await
            .unwrap(),
        b"ok"
    );
    for client in [
        TransportClient::new(keyed(b"wrong")).unwrap(),
        TransportClient::new(TransportConfig::default()).unwrap(),
    ] {
        match client
            .call(addr, Request::new("echo", "echo", vec![]))
            .await
        {
            Err(TransportError::Auth { .. }) => {}
            other => panic!("expected Auth error, got {other:?}"),
        }
    }
    wait_until("handshake failures counted", LIMIT, || async {
        srv.stats().handshake_failures == 2
    })
    .await;
    assert_eq!(srv.stats().requests, 1);
}

#[tokio::test]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let cfg = TransportConfig {
        max_frame_size: 64 * 1024,
        ..Default::default()
    };
    let srv = server_with(cfg.clone(), handler()).await;
    let addr = srv.local_addr();
    // Garbage before the handshake.
    let mut g = tokio::net::TcpStream::connect(addr).await.unwrap();
    g.write_all(&[0xde; 64]).await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(g.read(&mut buf).await.unwrap_or(0), 0, "server closes");
    wait_until("garbage counted", LIMIT, || async {
        srv.stats().handshake_failures == 1
    })
    .await;

    // A valid handshake, then a frame declaring 4 GiB.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    handshake::client(&mut s, None).await.unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0, "server closes");
    wait_until("oversized frame counted", LIMIT, || async {
        srv.stats().frames_too_large == 1
    })
    .await;

    // A valid handshake, then a malformed frame.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    handshake::client(&mut s, None).await.unwrap();
    s.write_all(&[0, 0, 0, 9, 77, 0, 0, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0, "server closes");
    wait_until("malformed frame counted", LIMIT, || async {
        srv.stats().malformed_frames == 1
    })
    .await;

    // The client refuses to send an oversized request.
    let client = TransportClient::new(cfg).unwrap();
    match client
        .call(addr, Request::new("echo", "echo", vec![0; 100 * 1024]))
        .await
    {
        Err(TransportError::FrameTooLarge { .. }) => {}
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // Server still serves.
    assert_eq!(
        client
            .call(addr, Request::new("echo", "echo", b"alive".to_vec()))
            .await
            .unwrap(),
        b"alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_per_peer_are_bounded() {
    let h = handler();
    let srv = server_with(TransportConfig::default(), h.clone()).await;
    let client = TransportClient::new(TransportConfig {
        max_connections_per_peer: 2,
        ..Default::default()
    })
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = client.clone();
        let addr = srv.local_addr();
        tasks.push(tokio::spawn(async move {
            c.call(addr, Request::new("echo", "busy", vec![])).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), b"done");
    }
    assert!(h.max_seen.load(Ordering::SeqCst) <= 2);
    assert!(client.stats().connections_opened <= 2);
}

#[tokio::test]
async fn reconnects_after_the_server_closed_an_idle_connection() {
    let srv = server_with(
        TransportConfig {
            idle_timeout: Duration::from_millis(50),
            ..Default::default()
        },
        handler(),
    )
    .await;
    let client = TransportClient::new(TransportConfig::default()).unwrap();
    let addr = srv.local_addr();
    client
        .call(addr, Request::new("echo", "echo", b"1".to_vec()))
        .await
        .unwrap();
    wait_until("idle connection closed", LIMIT, || async {
        srv.stats().connections_active == 0
    })
    .await;
    let out = client
        .call(addr, Request::new("echo", "echo", b"2".to_vec()))
        .await
        .unwrap();
    assert_eq!(out, b"2");
    assert_eq!(client.stats().connections_opened, 2);
}

#[tokio::test]
async fn a_panicking_handler_only_loses_its_connection() {
    let srv = server_with(TransportConfig::default(), handler()).await;
    let client = TransportClient::new(TransportConfig::default()).unwrap();
    let addr = srv.local_addr();
    match client
        .call(addr, Request::new("echo", "panic", vec![]))
        .await
    {
        Err(TransportError::PeerUnavailable { .. }) => {}
        other => panic!("expected PeerUnavailable, got {other:?}"),
    }
    wait_until("connection released", LIMIT, || async {
        srv.stats().connections_active == 0
    })
    .await;
    assert_eq!(
        client
            .call(addr, Request::new("echo", "echo", b"fine".to_vec()))
            .await
            .unwrap(),
        b"fine"
    );
}
