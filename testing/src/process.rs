//! Child processes: a guard that kills on drop, the real peers' binaries (Debian packages the
//! tests never skip without), and a real Prometheus 2.42 on a free port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::try_wait_http_ok;
use crate::net::free_port;

/// A child process killed when dropped, so a failing test never leaks servers.
pub struct ChildGuard {
    pub child: Child,
    pub name: &'static str,
}

impl ChildGuard {
    pub fn new(child: Child, name: &'static str) -> Self {
        ChildGuard { child, name }
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of a real peer's binary; fails with an install hint when it is missing (tests
/// must not skip).
pub fn require_binary(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run ./scripts/test.sh, which installs the Debian packages the tests use");
}

/// A real Prometheus 2.42 (Debian's package) on a free loopback port, with the remote-write
/// receiver on and its data in a temp dir. Killed when dropped.
pub struct Prometheus {
    pub base: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
    _guard: ChildGuard,
}

impl Prometheus {
    /// Starts Prometheus with `config_yaml` as its whole config file and waits until it is
    /// ready.
    pub async fn start(config_yaml: &str) -> Prometheus {
        Self::start_with_blocks(config_yaml, None).await
    }

    /// Like [`Prometheus::start`], with the block directories (those with a meta.json) of
    /// `blocks` copied into its data dir first, so it serves them as its own history.
    pub async fn start_with_blocks(config_yaml: &str, blocks: Option<&Path>) -> Prometheus {
        Self::start_full(config_yaml, blocks, None).await
    }

    /// Like [`Prometheus::start`], with `resolv_conf` in place of `/etc/resolv.conf` (bind
    /// mounted in a private mount namespace, so DNS discovery asks a test's DNS server;
    /// needs root).
    pub async fn start_with_resolv_conf(config_yaml: &str, resolv_conf: &Path) -> Prometheus {
        Self::start_full(config_yaml, None, Some(resolv_conf)).await
    }

    async fn start_full(
        config_yaml: &str,
        blocks: Option<&Path>,
        resolv_conf: Option<&Path>,
    ) -> Prometheus {
        let bin = require_binary("prometheus");
        let dir = crate::temp_dir();
        if let Some(from) = blocks {
            copy_blocks(from, &dir.path().join("data"));
        }
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config_yaml).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let stderr = std::fs::File::create(&log).expect("create prometheus.log");
        let port = free_port();
        let mut cmd = match resolv_conf {
            None => Command::new(bin),
            Some(conf) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
                    .arg(conf)
                    .arg(bin);
                c
            }
        };
        let child = cmd
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus {
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            log,
            _guard: ChildGuard::new(child, "prometheus"),
        };
        let ready = format!("{}/-/ready", prom.base);
        if let Err(e) = try_wait_http_ok(&ready, Duration::from_secs(30)).await {
            panic!("{e}; Prometheus's log:\n{}", prom.log_tail());
        }
        prom
    }

    /// The last lines of Prometheus's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Copies every block directory (one with a meta.json) of `from` into `to`.
pub fn copy_blocks(from: &Path, to: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(from).expect("read blocks dir").flatten() {
        let src = e.path();
        if !src.join("meta.json").exists() {
            continue;
        }
        let dest = to.join(e.file_name());
        std::fs::create_dir_all(dest.join("chunks")).expect("create block dir");
        for f in ["meta.json", "index", "tombstones"] {
            if src.join(f).exists() {
                std::fs::copy(src.join(f), dest.join(f)).expect("copy block file");
            }
        }
        for c in std::fs::read_dir(src.join("chunks"))
            .expect("read chunks")
            .flatten()
        {
            std::fs::copy(c.path(), dest.join("chunks").join(c.file_name())).expect("copy chunk");
        }
        n += 1;
    }
    n
}
