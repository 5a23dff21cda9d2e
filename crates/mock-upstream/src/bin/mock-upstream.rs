//! `mock-upstream`: the mock OpenAI-compatible (and Anthropic Messages) server as a
//! standalone process, for benchmarks and manual tests.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mock_upstream::{MockOptions, MockServer};

/// A fake OpenAI-compatible (and Anthropic Messages) upstream with deterministic replies.
#[derive(Parser, Debug)]
#[command(name = "mock-upstream", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Milliseconds to wait before each response head.
    #[arg(long, default_value_t = 0)]
    first_byte_delay_ms: u64,
    /// Milliseconds to wait between stream events.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Words in each reply.
    #[arg(long, default_value_t = 12)]
    reply_words: usize,
    /// Models listed by GET /v1/models (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "mock-gpt,mock-embedding")]
    models: Vec<String>,
    /// Runtime worker threads (default: one per available CPU).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(workers) = args.workers {
        builder.worker_threads(workers.max(1));
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mock-upstream: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-upstream: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let options = MockOptions {
        first_byte_delay: Duration::from_millis(args.first_byte_delay_ms),
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        reply_words: args.reply_words,
        models: args.models,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let server = MockServer::start(listener, options)?;
    eprintln!("mock-upstream listening on {}", server.addr());
    wait_for_signal().await?;
    server.shutdown();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
