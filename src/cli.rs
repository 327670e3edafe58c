//! `strata tools ...`: offline tools over TSDB directories and buckets, and the whole-system
//! benchmarks. Argument parsing (clap) and the thin glue to the library functions that do the
//! work; every tool exits non-zero with a message naming what is wrong. The bucket tools and
//! the shipping, query and scrape benchmarks live in the submodules below.

pub mod bench_compact;
pub mod bench_downsample;
pub mod bench_query;
pub mod bench_receive;
pub mod bench_rules;
pub mod bench_scrape;
pub mod bench_ship;
pub mod bucket;
pub mod bucket_compact;
pub mod check_rules;
pub mod import;
pub mod test_rules;

use std::io::{BufReader, Write};
use std::path::PathBuf;

use clap::Subcommand;

use crate::storage::db::bench::bench_write;
use crate::storage::model::Matcher;
use crate::storage::tools;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    TsdbTool(#[from] tools::TsdbToolError),
    /// An input file that does not parse (e.g. `tsdb import openmetrics`).
    #[error(transparent)]
    Parse(#[from] crate::scrape::parser::ParseError),
    #[error(transparent)]
    Db(#[from] crate::storage::db::DbError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("config: {0}")]
    Config(String),
    #[error("bucket: {0}")]
    Bucket(#[from] crate::storage::bucket::BucketError),
    #[error(transparent)]
    BucketTool(#[from] crate::storage::bucket::tools::BucketToolError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    #[error("{0}")]
    Failed(String),
}

pub type Result<T> = std::result::Result<T, CliError>;

#[derive(Subcommand, Debug)]
pub enum ToolCommand {
    /// Local TSDB directories (Strata's or Prometheus's).
    Tsdb {
        #[command(subcommand)]
        cmd: TsdbCommand,
    },
    /// Object storage buckets (the config's `bucket:` section).
    Bucket {
        #[command(subcommand)]
        cmd: bucket::BucketCommand,
    },
    /// Whole-system benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: BenchCommand,
    },
    /// Prometheus rule files.
    Rules {
        #[command(subcommand)]
        cmd: RulesCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Run rule unit tests, like `promtool test rules` (same output; exit 1 on a failure).
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TsdbCommand {
    /// Print every sample, like `promtool tsdb dump`.
    Dump {
        dir: PathBuf,
        #[arg(long = "min-time", default_value_t = i64::MIN)]
        min_time: i64,
        #[arg(long = "max-time", default_value_t = i64::MAX)]
        max_time: i64,
        /// Series selector, e.g. `{job="api"}` (default: every series).
        #[arg(long = "match")]
        matcher: Option<String>,
    },
    /// List the blocks of a TSDB directory, like `promtool tsdb list`.
    Ls { dir: PathBuf },
    /// Backfill: build 2h-aligned blocks from an input file.
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportFormat {
    /// OpenMetrics text in, blocks out (like `promtool tsdb create-blocks-from openmetrics`).
    Openmetrics {
        file: PathBuf,
        dir: PathBuf,
        /// Block duration in milliseconds.
        #[arg(long = "block-duration-ms", default_value_t = 2 * 3600 * 1000)]
        block_duration_ms: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Head append throughput and block size, same workload shape as `promtool tsdb bench write`.
    Tsdb {
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        #[arg(long, default_value_t = 3000)]
        scrapes: usize,
        /// Where to write (default: a temporary directory, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Upload throughput (MB/s) and CPU cost per GB of the node's shipping path, to the
    /// config's bucket (the synthetic blocks are deleted afterwards).
    Ship(bench_ship::ShipBenchArgs),
    /// PromQL latency side by side with Prometheus 2.42 on the same promtool-made blocks.
    Query(bench_query::QueryBenchArgs),
    /// Remote-write receive throughput and CPU per million samples side by side with
    /// Prometheus 2.42's remote-write receiver on the same payloads.
    Receive(bench_receive::ReceiveBenchArgs),
    /// Parse throughput, and scraping CPU side by side with Prometheus 2.42 on the same
    /// in-process targets.
    Scrape(bench_scrape::ScrapeBenchArgs),
    /// Bucket compaction throughput and peak RSS side by side with Prometheus 2.42 compacting
    /// the same blocks.
    Compact(bench_compact::CompactBenchArgs),
    /// Rule evaluation CPU and group evaluation times side by side with Prometheus 2.42
    /// evaluating the same rules over the same live targets.
    Rules(bench_rules::RulesBenchArgs),
    /// 30-day range queries at a 1h step over downsampled versus raw blocks: bytes fetched,
    /// latency, and the difference of the answers.
    Downsample(bench_downsample::DownsampleBenchArgs),
}

fn parse_matchers(sel: Option<&str>) -> Result<Vec<Matcher>> {
    let Some(sel) = sel else {
        return Ok(vec![Matcher::new(
            crate::storage::model::MatchOp::RegexMatch,
            "__name__",
            ".+",
        )
        .map_err(|e| CliError::Usage(e.to_string()))?]);
    };
    let mut sets = crate::promql::parse_series_selector(sel)
        .map_err(|e| CliError::Usage(format!("--match: {e}")))?;
    if sets.len() != 1 {
        return Err(CliError::Usage(
            "--match: `or` selectors are not supported here".to_string(),
        ));
    }
    Ok(sets.remove(0))
}

pub fn run_tool(cmd: ToolCommand) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        ToolCommand::Tsdb {
            cmd:
                TsdbCommand::Dump {
                    dir,
                    min_time,
                    max_time,
                    matcher,
                },
        } => {
            let matchers = parse_matchers(matcher.as_deref())?;
            tools::dump(&dir, min_time, max_time, &matchers, &mut out)?;
        }
        ToolCommand::Tsdb {
            cmd: TsdbCommand::Ls { dir },
        } => tools::ls(&dir, &mut out)?,
        ToolCommand::Bucket { cmd } => bucket::run(cmd, &mut out)?,
        ToolCommand::Rules {
            cmd: RulesCommand::Test { files },
        } => {
            let code = test_rules::run(&files, &mut out, &mut std::io::stderr().lock())?;
            out.flush()?;
            if code != 0 {
                // promtool's exit code, without an extra error line on stderr.
                std::process::exit(code);
            }
        }
        ToolCommand::Bench {
            cmd: BenchCommand::Ship(args),
        } => bench_ship::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Query(args),
        } => bench_query::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Scrape(args),
        } => bench_scrape::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Receive(args),
        } => bench_receive::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Compact(args),
        } => bench_compact::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Rules(args),
        } => bench_rules::run(args, &mut out)?,
        ToolCommand::Bench {
            cmd: BenchCommand::Downsample(args),
        } => bench_downsample::run_bench(args, &mut out)?,
        ToolCommand::Tsdb {
            cmd:
                TsdbCommand::Import {
                    format:
                        ImportFormat::Openmetrics {
                            file,
                            dir,
                            block_duration_ms,
                        },
                },
        } => {
            let f = std::fs::File::open(&file).map_err(|source| CliError::Open {
                path: file.display().to_string(),
                source,
            })?;
            let metas =
                import::import_openmetrics(&mut BufReader::new(f), &dir, block_duration_ms)?;
            for m in metas {
                writeln!(
                    out,
                    "{}  {}  {}  samples={}",
                    m.ulid, m.min_time, m.max_time, m.stats.num_samples
                )?;
            }
        }
        ToolCommand::Bench {
            cmd:
                BenchCommand::Tsdb {
                    series,
                    scrapes,
                    dir,
                },
        } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile_dir()?;
                    tmp.clone()
                }
            };
            let report = bench_write(&dir, series, scrapes)?;
            writeln!(
                out,
                "series={} scrapes={} samples={}",
                report.series, report.scrapes, report.samples
            )?;
            writeln!(
                out,
                "ingest: {:.2}s wall, {:.0} samples/s; {:.2} CPU s, {:.0} samples/CPU-s",
                report.ingest_seconds,
                report.samples_per_sec,
                report.ingest_cpu_seconds,
                report.samples_per_cpu_sec
            )?;
            writeln!(
                out,
                "blocks: {:.3} bytes/sample over {} samples",
                report.bytes_per_sample, report.block_samples
            )?;
            writeln!(
                out,
                "head RSS growth: {:.0} bytes/series",
                report.rss_bytes_per_series
            )?;
            if dir.starts_with(std::env::temp_dir()) {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("strata-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Open {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(dir)
}
