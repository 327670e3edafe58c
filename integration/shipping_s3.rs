//! A real S3 server for the shipping tests: s3s-fs (SigV4-checking, S3 part-size rules) over a
//! temp dir, on 127.0.0.1:0, served by a tokio runtime of its own so that in-process nodes
//! (actix), the `strata` binary and the test body can all talk to it. In front of s3s sits a
//! small recorder that logs every request, can hold PUTs whose key matches a pattern (a
//! deterministic "slow network" to kill a node mid-upload), and checks at the moment each
//! `meta.json` arrives that every file it lists is already in the bucket with its size.
//! The server can be stopped and restarted on the same port with the same data.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use strata::storage::bucket::s3::S3Store;
use strata::storage::bucket::S3Config;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub const ACCESS_KEY: &str = "strata-ship-ak";
pub const SECRET_KEY: &str = "strata-ship-secret-key";
pub const BUCKET: &str = "strata-ship";

/// One request as the server saw it; `key` is the object key (bucket stripped).
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub key: String,
    pub query: String,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Logged>>,
    violations: Mutex<Vec<String>>,
    held: Mutex<Vec<String>>,
}

pub struct S3Server {
    rt: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    root: PathBuf,
    _tmp: tempfile::TempDir,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    hold: tokio::sync::watch::Sender<Option<String>>,
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

type Resp = Result<s3s::HttpResponse, s3s::HttpError>;

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    svc: S3Service,
    shared: Arc<Shared>,
    mut hold: tokio::sync::watch::Receiver<Option<String>>,
    bucket_dir: PathBuf,
) -> Resp {
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
        if matches(&hold.borrow()) {
            shared.held.lock().unwrap().push(key.clone());
            let _ = hold.wait_for(|p| !matches(p)).await;
        }
    }
    let (parts, body) = req.into_parts();
    let mut body = s3s::Body::from(body);
    let is_meta = method == "PUT" && key.ends_with("/meta.json");
    if is_meta {
        let bytes = body
            .store_all_limited(1 << 20)
            .await
            .map_err(s3s::HttpError::new)?;
        if let Some(v) = check_meta(&bucket_dir, &key, &bytes) {
            shared.violations.lock().unwrap().push(v);
        }
        body = s3s::Body::from(bytes);
    }
    let resp = svc.call(hyper::Request::from_parts(parts, body)).await;
    let status = resp.as_ref().map(|r| r.status().as_u16()).unwrap_or(500);
    shared.log.lock().unwrap().push(Logged {
        method,
        key,
        query,
        status,
    });
    resp
}

/// Accepts until aborted; aborting drops every open (keep-alive) connection with it.
async fn serve(
    listener: TcpListener,
    svc: S3Service,
    shared: Arc<Shared>,
    hold: tokio::sync::watch::Receiver<Option<String>>,
    bucket_dir: PathBuf,
) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let (svc, shared, hold, dir) = (
            svc.clone(),
            shared.clone(),
            hold.clone(),
            bucket_dir.clone(),
        );
        conns.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(socket);
            let f = service_fn(move |req| {
                handle(req, svc.clone(), shared.clone(), hold.clone(), dir.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, f)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

impl S3Server {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("s3s-fs")
            .build()
            .expect("s3 runtime");
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket dir");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        let (hold, _) = tokio::sync::watch::channel(None);
        let mut s = S3Server {
            rt: Some(rt),
            addr,
            root,
            _tmp: tmp,
            task: None,
            shared: Arc::default(),
            hold,
        };
        s.spawn(std_listener);
        s
    }

    fn spawn(&mut self, l: std::net::TcpListener) {
        l.set_nonblocking(true).expect("nonblocking");
        let rt = self.rt.as_ref().expect("runtime");
        let _g = rt.enter();
        let listener = TcpListener::from_std(l).expect("tokio listener");
        let svc = build_service(&self.root);
        let fut = serve(
            listener,
            svc,
            self.shared.clone(),
            self.hold.subscribe(),
            self.bucket_dir(),
        );
        self.task = Some(rt.spawn(fut));
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

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

    /// A raw S3 client (no retries) for reading what the node shipped.
    pub fn store(&self) -> S3Store {
        S3Store::new(&self.config()).expect("s3 store")
    }

    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
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
        self.shared.violations.lock().unwrap().clone()
    }

    /// From now on PUTs whose key contains `pattern` wait until `release`.
    pub fn hold_puts(&self, pattern: &str) {
        self.hold.send_replace(Some(pattern.to_string()));
    }

    pub fn release(&self) {
        self.hold.send_replace(None);
    }

    /// Keys of the PUTs that were held so far.
    pub fn held(&self) -> Vec<String> {
        self.shared.held.lock().unwrap().clone()
    }

    /// Stops accepting and drops every open connection; the port is released.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        // The abort lands on the server's own runtime; wait until the port refuses.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "S3 server on {} did not stop",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Serves again on the same address with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(20);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
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
