//! `strata tools bench receive`: remote-write receive throughput of one Strata node side by
//! side with Debian's Prometheus 2.42 started with `--web.enable-remote-write-receiver`, on
//! the same payloads. The payloads are built first (snappy-compressed remote-write 1.0
//! requests, `--batch` series with one sample each, as Prometheus's queue shards send them);
//! one sender per slice of the series (so a series' samples arrive in order, as with
//! Prometheus's shards) posts them to `/api/v1/write`, one server at a time so they do not
//! compete for cores. Reported per server: samples/s (wall), CPU seconds (utime + stime from
//! `/proc/<pid>/stat`) per million samples, and samples per CPU second, the per-core figure
//! the two are compared on. With `--pool N` it also runs N joined nodes with
//! `receive_replication: 2`, the senders spread over them as behind a load balancer: the
//! pool's CPU (all nodes) per million samples received, each stored twice.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench_query::{
    free_port, spawn, start_strata, strata_binary, wait_ready, work_dir, Server,
};
use super::bench_scrape::process_cpu;
use super::{CliError, Result};
use crate::http::remote_write::encode;
use crate::storage::model::Labels;

#[derive(Args, Debug, Clone)]
pub struct ReceiveBenchArgs {
    /// Work directory (both servers' data and logs). Default: a temporary directory, removed
    /// afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Distinct series.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Samples per series (one per request round, 1 s apart).
    #[arg(long, default_value_t = 100)]
    pub rounds: usize,
    /// Series (one sample each) per request.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus: PathBuf,
    /// The Strata binary to run as the node (default: this one).
    #[arg(long)]
    pub strata: Option<PathBuf>,
    /// Also run a pool of this many joined Strata nodes with `receive_replication: 2`, the
    /// senders spread over them (as behind a load balancer); its CPU is the pool's total.
    #[arg(long, default_value_t = 0)]
    pub pool: usize,
}

/// One server's figures.
#[derive(Clone, Debug)]
pub struct ReceiveReport {
    pub name: &'static str,
    pub samples: u64,
    pub wall_s: f64,
    pub cpu_s: f64,
}

impl ReceiveReport {
    pub fn samples_per_sec(&self) -> f64 {
        self.samples as f64 / self.wall_s.max(1e-9)
    }
    pub fn cpu_s_per_million(&self) -> f64 {
        self.cpu_s / (self.samples as f64 / 1e6).max(1e-9)
    }
    pub fn samples_per_cpu_s(&self) -> f64 {
        self.samples as f64 / self.cpu_s.max(1e-9)
    }
}

/// The requests of every sender: `senders[s][r]` is sender `s`'s request of round `r`.
pub fn payloads(series: usize, rounds: usize, batch: usize, t0: i64) -> Vec<Vec<Vec<u8>>> {
    let batch = batch.max(1);
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                (
                    "__name__",
                    format!("bench_metric_{}_total", i % 100).as_str(),
                ),
                ("instance", format!("host-{}:9100", i / 100).as_str()),
                ("job", "node"),
                ("mode", ["user", "system", "idle", "iowait"][i % 4]),
            ])
        })
        .collect();
    let mut senders = Vec::new();
    for (s, chunk) in labels.chunks(batch).enumerate() {
        let mut reqs = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let t = t0 + r as i64 * 1000;
            let body: Vec<(Labels, Vec<(i64, f64)>)> = chunk
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    let v = (r * ((s * batch + j) % 97 + 1)) as f64;
                    (l.clone(), vec![(t, v)])
                })
                .collect();
            reqs.push(encode(&body));
        }
        senders.push(reqs);
    }
    senders
}

fn start_prometheus(bin: &Path, work: &Path) -> Result<Server> {
    let port = free_port()?;
    let cfg = work.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").map_err(|source| CliError::Open {
        path: cfg.display().to_string(),
        source,
    })?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.join("prometheus").display()
        ))
        .arg("--web.enable-remote-write-receiver")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    spawn(
        "prometheus",
        &mut cmd,
        &work.join("prometheus.log"),
        format!("http://127.0.0.1:{port}"),
    )
}

/// Posts every sender's requests in order (senders in parallel) and measures the server.
async fn measure(
    servers: &mut [Server],
    senders: &Arc<Vec<Vec<Vec<u8>>>>,
    samples: u64,
) -> Result<ReceiveReport> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    for server in servers.iter_mut() {
        wait_ready(&client, server).await?;
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let cpu = |pids: &[u32]| -> Result<f64> { pids.iter().map(|&p| process_cpu(p)).sum() };
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/api/v1/write", s.base))
        .collect();
    let cpu0 = cpu(&pids)?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders.len() {
        let url = urls[s % urls.len().max(1)].clone();
        let (client, senders) = (client.clone(), senders.clone());
        tasks.push(tokio::spawn(async move {
            for body in senders.get(s).into_iter().flatten() {
                let resp = client
                    .post(&url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(format!("{url}: {status}: {text}"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .map_err(CliError::Failed)?;
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = cpu(&pids)? - cpu0;
    Ok(ReceiveReport {
        name: servers.first().map_or("none", |s| s.name),
        samples,
        wall_s,
        cpu_s,
    })
}

/// `n` joined Strata nodes (receive_replication 2, a shared filesystem bucket).
fn start_pool(bin: &Path, work: &Path, n: usize) -> Result<Vec<Server>> {
    let mut ports = Vec::new();
    for _ in 0..n {
        ports.push((free_port()?, free_port()?, free_port()?));
    }
    let mut servers = Vec::new();
    for (i, (web, gossip, rpc)) in ports.iter().enumerate() {
        let join = if i == 0 {
            String::new()
        } else {
            format!("\"127.0.0.1:{}\"", ports[0].1)
        };
        let dir = work.join(format!("n{i}"));
        std::fs::create_dir_all(&dir).map_err(|source| CliError::Open {
            path: dir.display().to_string(),
            source,
        })?;
        let cfg = dir.join("strata.yml");
        let yaml = format!(
            "node:\n  id: bench-{i}\n  web_listen: 127.0.0.1:{web}\n  gossip_listen: 127.0.0.1:{gossip}\n  \
             rpc_listen: 127.0.0.1:{rpc}\n  data_dir: {}\n  roles: [scraper_shipper, query_planner]\n\
             cluster:\n  join: [{join}]\n  receive_replication: 2\n  role_policy: {{}}\n\
             bucket:\n  type: filesystem\n  filesystem:\n    dir: {}\n",
            dir.join("data").display(),
            work.join("bucket").display()
        );
        std::fs::write(&cfg, yaml).map_err(|source| CliError::Open {
            path: cfg.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(bin);
        cmd.arg("node")
            .arg(format!("--config={}", cfg.display()))
            .arg("--log.level=warn");
        servers.push(spawn(
            "strata",
            &mut cmd,
            &dir.join("strata.log"),
            format!("http://127.0.0.1:{web}"),
        )?);
    }
    Ok(servers)
}

/// Waits until every node of the pool sees all of them alive.
async fn wait_pool(pool: &[Server]) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut all = true;
        for s in pool {
            let url = format!("{}/api/v1/admin/cluster", s.base);
            let alive = super::bench_scrape::get_json(&client, &url, &[])
                .await
                .and_then(|v| {
                    v["data"]["members"]
                        .as_array()
                        .map(|m| m.iter().filter(|x| x["state"] != "down").count())
                })
                .unwrap_or(0);
            all &= alive == pool.len();
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(CliError::Failed(
        "the pool's nodes did not all see each other within 60 s".to_string(),
    ))
}

pub fn run(args: ReceiveBenchArgs, out: &mut dyn Write) -> Result<()> {
    let (work, temporary) = work_dir(&args.dir, "receive");
    for d in ["strata", "prometheus"] {
        std::fs::create_dir_all(work.join(d)).map_err(|source| CliError::Open {
            path: work.join(d).display().to_string(),
            source,
        })?;
    }
    let strata = strata_binary(&args.strata)?;
    let t0 = (crate::time::now_ms() - 10 * 60_000) / 1000 * 1000;
    let senders = Arc::new(payloads(args.series, args.rounds, args.batch, t0));
    let per_req = args.batch.min(args.series).max(1);
    let samples = (args.series * args.rounds) as u64;
    writeln!(
        out,
        "receive: {} series x {} rounds = {samples} samples, {per_req} samples per request, {} senders",
        args.series,
        args.rounds,
        senders.len()
    )?;
    let rt = super::bucket::runtime()?;
    let result = rt.block_on(async {
        let mut reports = Vec::new();
        let node = start_strata(&strata.clone(), &work.join("strata"), "")?;
        reports.push(measure(&mut [node], &senders, samples).await?);
        let prom = start_prometheus(&args.prometheus, &work.join("prometheus"))?;
        reports.push(measure(&mut [prom], &senders, samples).await?);
        if args.pool > 0 {
            let mut pool = start_pool(&strata, &work.join("pool"), args.pool)?;
            wait_pool(&pool).await?;
            let mut r = measure(&mut pool, &senders, samples).await?;
            r.name = "strata-pool";
            reports.push(r);
        }
        Ok::<_, CliError>(reports)
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    let reports = result?;
    writeln!(
        out,
        "{:<12} {:>14} {:>10} {:>10} {:>16} {:>16}",
        "server", "samples/s", "wall s", "cpu s", "cpu s/1M samples", "samples/cpu s"
    )?;
    for r in &reports {
        writeln!(
            out,
            "{:<12} {:>14.0} {:>10.2} {:>10.2} {:>16.3} {:>16.0}",
            r.name,
            r.samples_per_sec(),
            r.wall_s,
            r.cpu_s,
            r.cpu_s_per_million(),
            r.samples_per_cpu_s()
        )?;
    }
    if let [s, p, ..] = reports.as_slice() {
        writeln!(
            out,
            "per core: strata / prometheus = {:.2}x",
            s.samples_per_cpu_s() / p.samples_per_cpu_s().max(1e-9)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_cover_every_series_once_per_round() {
        let p = payloads(5, 3, 2, 1_000_000);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|s| s.len() == 3));
        let round0: usize = p
            .iter()
            .map(|s| crate::http::remote_write::decode(&s[0]).unwrap().len())
            .sum();
        assert_eq!(round0, 5);
    }
}
