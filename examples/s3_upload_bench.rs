//! Upload benchmark: streams a large file (default 512 MiB, `STRATA_BENCH_MB`) to an
//! in-process s3s-fs server through `S3Store::put_file` (multipart, 2 parts in flight) and
//! prints throughput, CPU seconds per GB (getrusage, client AND in-process server) and the
//! peak RSS during the upload (VmHWM after resetting it via /proc/self/clear_refs).
//! Run: `cargo run --example s3_upload_bench`. The server is the tests' (`strata_testing::s3`),
//! on a runtime of its own inside this process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::time::{Duration, Instant};

use strata::storage::bucket::ObjectStore;
use strata_testing::S3Server;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb: u64 = std::env::var("STRATA_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("payload");
    {
        // Written in 1 MiB pieces so creating the file does not inflate the RSS.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src)?);
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mb {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = (j as u64 ^ i).wrapping_mul(2654435761) as u8;
            }
            f.write_all(&chunk)?;
        }
        f.flush()?;
    }
    let bytes = mb * 1024 * 1024;
    let server = S3Server::start();
    let store = server.store();
    // Warm the connection so the first request's setup is not in the numbers.
    store.list("", Some("/")).await?;

    let rss_before_kb = status_kb("VmRSS:").unwrap_or(0);
    let reset = reset_peak_rss();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let uploaded = store.put_file("bench/chunks/000001", &src).await?;
    let wall = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let peak_kb = status_kb("VmHWM:").unwrap_or(0);
    assert_eq!(uploaded, bytes);

    let dl = dir.path().join("download");
    let t1 = Instant::now();
    store.get_to_file("bench/chunks/000001", &dl).await?;
    let dl_wall = t1.elapsed();
    let same = std::fs::metadata(&dl)?.len() == bytes;
    let gb = bytes as f64 / 1e9;
    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!("payload:            {mb} MiB ({bytes} bytes)");
    println!(
        "upload wall:        {:.2} s  => {:.1} MB/s",
        wall.as_secs_f64(),
        mbs(wall)
    );
    println!(
        "upload CPU:         {cpu:.2} s  => {:.2} CPU-s/GB (client + in-process s3s-fs server)",
        cpu / gb
    );
    println!(
        "peak RSS in upload: {:.1} MiB (VmHWM, reset before upload: {reset}); RSS before: {:.1} MiB",
        peak_kb as f64 / 1024.0,
        rss_before_kb as f64 / 1024.0
    );
    println!(
        "download wall:      {:.2} s  => {:.1} MB/s (size ok: {same})",
        dl_wall.as_secs_f64(),
        mbs(dl_wall)
    );
    Ok(())
}
