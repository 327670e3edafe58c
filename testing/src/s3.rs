//! A real S3 server for tests: s3s-fs (SigV4-checking, S3's part-size rules) over a temp dir,
//! on 127.0.0.1:0, served by a tokio runtime of its own so that in-process nodes (actix), the
//! `strata` binary, plain `#[test]`s and `#[tokio::test]`s can all talk to it.
//!
//! In front of s3s sits a recorder that
//! - logs every request ([`S3Server::log`], [`S3Server::meta_puts`]);
//! - can hold PUTs whose key contains a pattern until released, a deterministic "slow
//!   network" to kill a node mid-upload ([`S3Server::hold_puts`]);
//! - checks, at the moment each `meta.json` arrives, that every file it lists is already in
//!   the bucket with its size ([`S3Server::violations`]).
//!
//! The server can be stopped (port released, open connections dropped) and restarted on the
//! same port with the same data, so fault tests can take the bucket away mid-run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use strata::storage::bucket::s3::S3Store;
use strata::storage::bucket::S3Config;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::wait::Wait;

pub const ACCESS_KEY: &str = "strata-test-ak";
pub const SECRET_KEY: &str = "strata-test-secret-key";
pub const BUCKET: &str = "strata-test";

/// One request as the server saw it; `key` is the object key (bucket stripped).
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub key: String,
    pub query: String,
    pub status: u16,
}

/// What the request handlers share with the test.
#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Logged>>,
    violations: Mutex<Vec<String>>,
    held: Mutex<Vec<String>>,
    /// Requests between admission and their log entry: `stop` lets them finish, so a request
    /// the server took is always completed and logged (never cut between the write and the log).
    in_flight: AtomicUsize,
    /// Set by `stop`: new requests are refused with 503 and touch nothing.
    stopping: AtomicBool,
}

/// Decrements the in-flight count when a request is done (or dropped).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct S3Server {
    rt: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    root: PathBuf,
    _tmp: tempfile::TempDir,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    hold: watch::Sender<Option<String>>,
}

fn build_service(root: &Path) -> S3Service {
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let mut b = S3ServiceBuilder::new(fs);
    b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    b.build()
}

/// `meta.json` just arrived for `key`: every file it lists must already be there, complete.
fn check_meta(bucket_dir: &Path, key: &str, body: &[u8]) -> Option<String> {
    let block = key.strip_suffix("/meta.json")?;
    let meta: serde_json::Value = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(e) => return Some(format!("{key}: not JSON: {e}")),
    };
    let Some(files) = meta.pointer("/thanos/files").and_then(|f| f.as_array()) else {
        return Some(format!("{key}: no thanos.files"));
    };
    for f in files {
        let rel = f["rel_path"].as_str().unwrap_or_default();
        let Some(want) = f["size_bytes"].as_u64() else {
            continue;
        };
        match std::fs::metadata(bucket_dir.join(block).join(rel)) {
            Ok(m) if m.len() == want => {}
            Ok(m) => {
                return Some(format!(
                    "{key}: {rel} is {} bytes in the bucket, meta says {want}",
                    m.len()
                ))
            }
            Err(e) => return Some(format!("{key}: {rel} is not in the bucket: {e}")),
        }
    }
    None
}

/// Everything one connection's requests need.
#[derive(Clone)]
struct Ctx {
    svc: S3Service,
    shared: Arc<Shared>,
    hold: watch::Receiver<Option<String>>,
    bucket_dir: PathBuf,
}

type Resp = Result<s3s::HttpResponse, s3s::HttpError>;

async fn handle(req: hyper::Request<hyper::body::Incoming>, mut ctx: Ctx) -> Resp {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let key = path
        .trim_start_matches('/')
        .strip_prefix(BUCKET)
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    if method == "PUT" {
        let matches = |p: &Option<String>| p.as_deref().is_some_and(|p| key.contains(p));
        if matches(&ctx.hold.borrow()) {
            ctx.shared.held.lock().expect("held").push(key.clone());
            let _ = ctx.hold.wait_for(|p| !matches(p)).await;
        }
    }
    // Admission: counted first, then checked, so `stop` either waits for this request or the
    // request sees `stopping` (both orders use SeqCst).
    let shared = ctx.shared.clone();
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let _admitted = InFlight(&shared.in_flight);
    if shared.stopping.load(Ordering::SeqCst) {
        shared.log.lock().expect("log").push(Logged {
            method,
            key,
            query,
            status: 503,
        });
        let mut resp = hyper::Response::new(s3s::Body::empty());
        *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        return Ok(resp);
    }
    let (parts, body) = req.into_parts();
    let mut body = s3s::Body::from(body);
    if method == "PUT" && key.ends_with("/meta.json") {
        let bytes = body
            .store_all_limited(1 << 20)
            .await
            .map_err(s3s::HttpError::new)?;
        if let Some(v) = check_meta(&ctx.bucket_dir, &key, &bytes) {
            ctx.shared.violations.lock().expect("violations").push(v);
        }
        body = s3s::Body::from(bytes);
    }
    let resp = ctx.svc.call(hyper::Request::from_parts(parts, body)).await;
    let status = resp.as_ref().map(|r| r.status().as_u16()).unwrap_or(500);
    ctx.shared.log.lock().expect("log").push(Logged {
        method,
        key,
        query,
        status,
    });
    resp
}

/// Accepts until aborted; the connection tasks live in a JoinSet owned by this future, so
/// aborting it also drops every open (keep-alive) connection.
async fn serve(listener: TcpListener, ctx: Ctx) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        conns.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(socket);
            let f = service_fn(move |req| handle(req, ctx.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, f)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

impl S3Server {
    /// Starts a server over a fresh temp dir holding an empty bucket [`BUCKET`].
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("s3s-fs")
            .build()
            .expect("s3 runtime");
        let tmp = crate::temp_dir();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket dir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (hold, _) = watch::channel(None);
        let mut s = S3Server {
            rt: Some(rt),
            addr,
            root,
            _tmp: tmp,
            task: None,
            shared: Arc::default(),
            hold,
        };
        s.spawn(listener);
        s
    }

    fn spawn(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let rt = self.rt.as_ref().expect("runtime");
        let _g = rt.enter();
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let ctx = Ctx {
            svc: build_service(&self.root),
            shared: self.shared.clone(),
            hold: self.hold.subscribe(),
            bucket_dir: self.bucket_dir(),
        };
        self.shared.stopping.store(false, Ordering::SeqCst);
        self.task = Some(rt.spawn(serve(listener, ctx)));
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Directory holding the bucket's objects (`<root>/<BUCKET>/...`); readable while the
    /// server is stopped.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }

    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: self.endpoint(),
            bucket: BUCKET.to_string(),
            region: "us-east-1".to_string(),
            path_style: true,
            access_key: Some(ACCESS_KEY.to_string()),
            secret_key: Some(SECRET_KEY.to_string()),
            request_timeout_secs: 60,
            multipart_threshold_bytes: None,
        }
    }

    /// The `bucket:` section of a Strata config pointing here.
    pub fn bucket_yaml(&self) -> String {
        format!(
            "bucket:\n  type: s3\n  s3:\n    endpoint: {}\n    bucket: {BUCKET}\n    access_key: {ACCESS_KEY}\n    secret_key: {SECRET_KEY}\n",
            self.endpoint()
        )
    }

    /// A raw S3 store (no retries, no metrics) pointed at this server.
    pub fn store(&self) -> S3Store {
        S3Store::new(&self.config()).expect("s3 store")
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().expect("log").clone()
    }

    /// Successful PUTs of `<ULID>/meta.json`, in arrival order.
    pub fn meta_puts(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.method == "PUT" && l.status == 200 && l.key.ends_with("/meta.json"))
            .map(|l| l.key)
            .collect()
    }

    /// `meta.json` uploads that arrived while a file they list was missing or short.
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().expect("violations").clone()
    }

    /// From now on PUTs whose key contains `pattern` wait until [`S3Server::release`].
    pub fn hold_puts(&self, pattern: &str) {
        self.hold.send_replace(Some(pattern.to_string()));
    }

    /// Lets held PUTs (and later ones) through.
    pub fn release(&self) {
        self.hold.send_replace(None);
    }

    /// Keys of the PUTs that were held so far.
    pub fn held(&self) -> Vec<String> {
        self.shared.held.lock().expect("held").clone()
    }

    /// Stops accepting and drops every open connection; the port is released when this
    /// returns.
    pub async fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Requests already admitted finish (a held PUT is not admitted until released).
        let drained = Wait::new(
            "the S3 server's admitted requests to finish",
            Duration::from_secs(10),
        )
        .poll(Duration::from_millis(5))
        .until(|| std::future::ready(self.shared.in_flight.load(Ordering::SeqCst) == 0))
        .await;
        if let Err(e) = drained {
            eprintln!("stopping the S3 server with requests still running: {e}");
        }
        if let Some(task) = self.task.take() {
            task.abort();
            // Resolves once the server future (listener and connections) has been dropped on
            // the server's runtime.
            let _ = task.await;
        }
    }

    /// Serves again on the same address with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let addr = self.addr;
        let listener = Wait::new(
            format!("{addr} to be free for the S3 server again"),
            Duration::from_secs(20),
        )
        .poll(Duration::from_millis(50))
        .until_some(|| std::future::ready(std::net::TcpListener::bind(addr).ok()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        self.spawn(listener);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.release();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
