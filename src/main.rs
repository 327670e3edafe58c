//! The `strata` command line: `strata node` runs a node, `strata check config` validates a
//! config file, `strata check rules` validates rule files, `strata tools ...` are offline
//! tools over TSDB directories and buckets.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use strata::config::{Config, Overrides};
use strata::logging::{self, LogFormat};
use strata::node::{self, Listeners, StartOptions};

/// Queries and scrapes allocate many short-lived label strings and sample buffers across
/// threads; mimalloc's thread-local free lists handle that pattern far better than glibc's
/// arenas (profiles showed malloc/free at about a third of query CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "strata", version, about = "Prometheus at scale in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (with no config: the embedded default, all roles on 127.0.0.1:9090).
    Node(NodeArgs),
    /// Validate files.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Offline tools over TSDB directories and buckets, and benchmarks.
    Tools {
        #[command(subcommand)]
        tool: strata::cli::ToolCommand,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Validate a config file and print what is wrong with line context.
    Config { file: PathBuf },
    /// Validate Prometheus rule files, like `promtool check rules`.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct NodeArgs {
    /// Config file (Prometheus syntax plus Strata's sections).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long = "web.listen-address")]
    web_listen_address: Option<String>,
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    #[arg(long = "node.id")]
    node_id: Option<String>,
    /// Gossip seed host:port (repeatable).
    #[arg(long = "join")]
    join: Vec<String>,
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
    #[arg(long = "log.format", default_value = "logfmt")]
    log_format: String,
}

impl NodeArgs {
    fn flags(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        f.insert("config".to_string(), path(&self.config));
        f.insert(
            "web.listen-address".to_string(),
            self.web_listen_address.clone().unwrap_or_default(),
        );
        f.insert("data-dir".to_string(), path(&self.data_dir));
        f.insert(
            "node.id".to_string(),
            self.node_id.clone().unwrap_or_default(),
        );
        f.insert("join".to_string(), self.join.join(","));
        f.insert("log.level".to_string(), self.log_level.clone());
        f.insert("log.format".to_string(), self.log_format.clone());
        f
    }

    /// Loads the config (or the embedded default) and applies the flags over it.
    fn config(&self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => Config::embedded_default(),
        };
        let overrides = Overrides {
            web_listen: self.web_listen_address.clone(),
            data_dir: self.data_dir.clone(),
            node_id: self.node_id.clone(),
            join: self.join.clone(),
        };
        cfg.apply_overrides(&overrides)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(cfg)
    }
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let format: LogFormat = args.log_format.parse()?;
    logging::init(&args.log_level, format)?;
    let config = args.config()?;
    // Bind before starting anything: a bad or taken address fails with nothing started.
    let listeners = Listeners::bind(&config)?;
    let opts = StartOptions {
        flags: args.flags(),
        fault_injection: std::env::var("STRATA_ENABLE_FAULT_INJECTION").is_ok_and(|v| v == "1"),
        http_workers: 0,
        config_path: args.config.clone(),
    };
    let system = actix_rt::System::new();
    system.block_on(async move {
        let shutdown = CancellationToken::new();
        let handle = node::start(config, listeners, shutdown.clone(), opts).await?;
        let signals = shutdown.clone();
        actix_rt::spawn(async move {
            wait_for_signal().await;
            signals.cancel();
        });
        let reloads = handle.reloader();
        actix_rt::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::error!("cannot install SIGHUP handler; reload with POST /-/reload");
                return;
            };
            while hup.recv().await.is_some() {
                match reloads.reload() {
                    Ok(report) => tracing::info!(?report, "reloaded the config on SIGHUP"),
                    Err(e) => tracing::error!(error = %e, "reloading the config on SIGHUP failed"),
                }
            }
        });
        handle.wait().await;
        tracing::info!("node stopped");
        Ok::<(), anyhow::Error>(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}

/// `promtool check config`'s second part: each rule file of the (valid) config checked like
/// `check rules`, after a blank line.
fn check_config_rule_files(file: &std::path::Path) -> ExitCode {
    let paths = match strata::config::Config::load(file).map(|c| c.rule_file_paths()) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("  FAILED: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("  FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    if paths.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!();
    let code = strata::cli::check_rules::run(
        &paths,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    match code {
        Ok(0) => ExitCode::SUCCESS,
        Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => run_node(args),
        Command::Check {
            what: CheckCommand::Config { file },
        } => match strata::config::check_config_report(&file) {
            Ok(report) => {
                println!("{report}");
                // Then every rule file the config names, as `promtool check config` does.
                return check_config_rule_files(&file);
            }
            Err(report) => {
                eprintln!("{report}");
                return ExitCode::FAILURE;
            }
        },
        Command::Check {
            what: CheckCommand::Rules { files },
        } => {
            let code = strata::cli::check_rules::run(
                &files,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            return match code {
                Ok(0) => ExitCode::SUCCESS,
                Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Tools { tool } => strata::cli::run_tool(tool).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
