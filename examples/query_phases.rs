//! Times one instant query evaluated in-process over an existing TSDB directory, without HTTP
//! or the cluster in the way, so that `perf record` sees only the engine and the storage it
//! reads. The node must not be running on that directory (the TSDB takes a lock).
//!
//! Usage: query_phases TSDB_DIR QUERY TIME_SECONDS [RUNS]
//! e.g. `cargo run --release --example query_phases -- /work/bench-full/strata/tsdb \
//!   'histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[20m])))' \
//!   1795600561.517 200`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Instant;

use strata::promql::engine::Engine;
use strata::promql::value::Value;
use strata::storage::db::{Db, DbOptions};

// The node's allocator, so that profiles match what it does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WARMUP: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(query), Some(time)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: query_phases TSDB_DIR QUERY TIME_SECONDS [RUNS]".into());
    };
    let t_ms = (time.parse::<f64>()? * 1000.0) as i64;
    let runs: usize = args
        .get(4)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50)
        .max(1);
    let db = Db::open(Path::new(dir), DbOptions::default())?;
    let engine = Engine::default();
    let mut took = Vec::with_capacity(runs);
    for i in 0..runs + WARMUP {
        let started = Instant::now();
        let value = engine.instant(&db, query, t_ms)?;
        let elapsed = started.elapsed();
        if i == 0 {
            let series = match &value.value {
                Value::Vector(v) => v.len(),
                Value::Matrix(m) => m.len(),
                _ => 1,
            };
            println!("{series} result series");
        }
        drop(value);
        if i >= WARMUP {
            took.push(elapsed.as_secs_f64() * 1e3);
        }
    }
    took.sort_by(f64::total_cmp);
    let pct = |p: f64| took[((took.len() - 1) as f64 * p) as usize];
    println!(
        "runs {runs}: p10 {:.2} ms, p50 {:.2} ms, p90 {:.2} ms",
        pct(0.1),
        pct(0.5),
        pct(0.9)
    );
    Ok(())
}
