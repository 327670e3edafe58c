//! Memory behaviour of the transport, measured with a counting global allocator (alone in this
//! test binary so other tests do not disturb the figures): a 50 MB streamed response keeps
//! memory flat, and an oversized declared frame length allocates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use futures::StreamExt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::cluster::transport::{
    handshake, RemoteError, Request, ResponseStream, RpcHandler, TransportClient, TransportConfig,
    TransportServer,
};
use strata_testing::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Ordering::SeqCst) + l.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static A: Counting = Counting;

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 50;

struct Big;

#[async_trait::async_trait]
impl RpcHandler for Big {
    async fn handle(&self, _req: Request) -> Result<ResponseStream, RemoteError> {
        // Chunks are produced lazily, one at a time, as the writer asks for them.
        Ok(Box::pin(
            futures::stream::iter(0..CHUNKS).map(|i| Ok(vec![i as u8; CHUNK])),
        ))
    }
}

fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::SeqCst);
    PEAK.store(now, Ordering::SeqCst);
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_50mb_keeps_memory_flat_and_oversized_frames_allocate_nothing() {
    let cfg = TransportConfig {
        max_frame_size: 4 * CHUNK,
        ..Default::default()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = TransportServer::start(l, Arc::new(Big), cfg.clone()).unwrap();
    let client = TransportClient::new(cfg).unwrap();

    let base = reset_peak();
    let started = Instant::now();
    let mut s = client
        .call_stream(srv.local_addr(), Request::new("big", "all", vec![]))
        .await
        .unwrap();
    let mut total = 0usize;
    let mut chunks = 0usize;
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        assert!(c.iter().all(|b| *b == chunks as u8));
        total += c.len();
        chunks += 1;
    }
    let took = started.elapsed();
    let growth = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    println!(
        "FIGURE streamed {} MB in {took:?}; peak heap growth {:.1} MB",
        total >> 20,
        growth as f64 / (1 << 20) as f64
    );
    assert_eq!(total, CHUNK * CHUNKS);
    assert!(
        growth < 12 * CHUNK,
        "peak heap grew by {growth} bytes while streaming {total}"
    );

    // A frame declaring 4 GiB after a valid handshake: refused and counted, nothing allocated
    // for it.
    let base = reset_peak();
    let mut raw = tokio::net::TcpStream::connect(srv.local_addr())
        .await
        .unwrap();
    handshake::client(&mut raw, None).await.unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(raw.read(&mut buf).await.unwrap_or(0), 0);
    wait_until(
        "the oversized frame counted",
        Duration::from_secs(10),
        || async { srv.stats().frames_too_large == 1 },
    )
    .await;
    let growth = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    println!("FIGURE oversized frame: peak heap growth {growth} bytes");
    assert!(growth < 256 * 1024, "grew by {growth} bytes");
}
