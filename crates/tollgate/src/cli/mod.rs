//! Command line: clap definitions and dispatch; one file per subcommand.

mod admin;
mod check;
mod keys;
mod serve;
mod stats;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, process_env, Config, StorageConfig};

/// Tollgate: one OpenAI-compatible endpoint in front of many LLM providers and keys.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./tollgate.toml when it exists).
    #[arg(long, global = true, env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage client keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage upstream (provider) keys stored encrypted in the database.
    #[command(subcommand)]
    Upstream(upstream::UpstreamCommand),
    /// Administration: admin users (create, passwd) and master key rotation.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Pool and per-key figures from a running gateway.
    Stats(stats::StatsArgs),
    /// Create or upgrade the database schema.
    Migrate,
    /// Print the version.
    Version,
}

/// `tollgate config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print every problem with its location and fix.
    Check,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    init_tracing(serving);
    let runtime = match runtime_builder().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

/// The async runtime for the CPUs this process may use: one thread that runs every
/// task when that is a single CPU (a one-core container, a pinned process), where a
/// work-stealing pool would only add cross-thread bookkeeping to every wake-up; a
/// worker per CPU otherwise (or as many as `TOKIO_WORKER_THREADS` says).
fn runtime_builder() -> tokio::runtime::Builder {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if one_thread(cpus, std::env::var_os("TOKIO_WORKER_THREADS").is_some()) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}

/// True when the runtime should be a single thread: one CPU, and no worker count set.
fn one_thread(cpus: usize, worker_threads_set: bool) -> bool {
    cpus == 1 && !worker_threads_set
}

async fn run(cli: Cli) -> ExitCode {
    let path = config::locate(cli.config.as_deref());
    match cli.command {
        Command::Version => {
            println!("tollgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Check) => check::config_check(path.as_deref()),
        Command::Stats(args) => stats::run(path.as_deref(), args).await,
        Command::Serve { listen } => match Config::load(path.as_deref(), &process_env()) {
            Ok(config) => serve::serve(config, listen).await,
            Err(problems) => config_error(&problems),
        },
        command @ (Command::Keys(_)
        | Command::Upstream(_)
        | Command::Admin(_)
        | Command::Migrate) => {
            let storage = match StorageConfig::load(path.as_deref(), &process_env()) {
                Ok(s) => s,
                Err(problems) => return config_error(&problems),
            };
            match command {
                Command::Keys(k) => keys::run(path.as_deref(), &storage, k).await,
                Command::Upstream(u) => upstream::run(path.as_deref(), &storage, u).await,
                Command::Admin(a) => admin::run(&storage, a).await,
                _ => check::migrate(&storage).await,
            }
        }
    }
}

fn config_error(problems: &config::Problems) -> ExitCode {
    eprint!("error: {problems}");
    ExitCode::from(2)
}

fn init_tracing(serving: bool) {
    // sqlx logs a slow statement at warn with its whole text (multi-row INSERTs):
    // the writer reports slow or failed writes itself.
    let default = if serving {
        "info,sqlx=error"
    } else {
        "warn,sqlx=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::one_thread;

    #[test]
    fn one_cpu_runs_one_thread_unless_workers_are_set() {
        assert!(one_thread(1, false));
        assert!(!one_thread(1, true), "TOKIO_WORKER_THREADS is honoured");
        assert!(!one_thread(2, false));
        assert!(!one_thread(16, false));
    }
}
