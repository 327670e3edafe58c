//! In-process S3 server for tests (s3s-fs over a temp dir, SigV4 auth, 127.0.0.1:0) that can
//! be stopped and restarted on the same port with the same data, so fault tests can take the
//! bucket away mid-run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use strata::storage::bucket::s3::S3Store;
use strata::storage::bucket::S3Config;

pub const ACCESS_KEY: &str = "strata-test-ak";
pub const SECRET_KEY: &str = "strata-test-secret-key";
pub const BUCKET: &str = "strata-test";

pub struct S3TestServer {
    addr: SocketAddr,
    root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    task: Option<JoinHandle<()>>,
}

fn build_service(root: &Path) -> S3Service {
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let mut b = S3ServiceBuilder::new(fs);
    b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    b.build()
}

/// Accepts connections until aborted; the connection tasks live in a JoinSet owned by this
/// future, so aborting it also drops every open (keep-alive) connection.
async fn serve(listener: TcpListener, service: S3Service) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let svc = service.clone();
        conns.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(socket);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

impl S3TestServer {
    /// Starts a server over a fresh temp dir containing an empty bucket `BUCKET`.
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(serve(listener, build_service(&root)));
        Self {
            addr,
            root,
            _tmp: Some(tmp),
            task: Some(task),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Directory holding the bucket's objects (`<root>/<BUCKET>/...`).
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

    /// A raw (undecorated) S3 store pointed at this server.
    pub fn store(&self) -> S3Store {
        S3Store::new(&self.config()).expect("s3 store")
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Stops accepting and drops every open connection; the port is released.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Starts serving again on the same address with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.task = Some(tokio::spawn(serve(listener, build_service(&self.root))));
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
