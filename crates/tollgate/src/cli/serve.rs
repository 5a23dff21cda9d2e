//! `tollgate serve`: run until SIGINT/SIGTERM, then shut down gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::app;
use crate::config::{process_env, Config};
use crate::secrets::{MasterKey, MasterKeySource, DEFAULT_KEY_FILE};

/// Serves until a shutdown signal; exit 0 after a clean shutdown.
pub async fn serve(mut config: Config, listen: Option<SocketAddr>) -> ExitCode {
    // Before anything else: a signal that comes while the gateway starts must wait for
    // the graceful shutdown, not kill the process (the default action).
    let shutdown = shutdown_signal();
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.builtin_mock {
        eprintln!("\n  *** tollgate is serving the built-in MOCK provider: answers are fake. ***\n  *** Configure [[providers]] or export OPENAI_API_KEY for real traffic. ***\n");
    }
    let listener = match TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}\n  fix: choose a free address with --listen or server.listen", config.server.listen);
            return ExitCode::FAILURE;
        }
    };
    let master_key = match MasterKey::load(&process_env(), Path::new(DEFAULT_KEY_FILE)) {
        Ok((key, MasterKeySource::Environment)) => key,
        Ok((key, MasterKeySource::File { path, created })) => {
            let how = if created { "generated in" } else { "read from" };
            tracing::warn!(
                "the master key that encrypts stored upstream keys was {how} {}; production must set TOLLGATE_MASTER_KEY",
                path.display()
            );
            key
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match app::start(config, listener, master_key).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %running.addr, keys = running.gateway.keys.len(), "tollgate listening on http://{}", running.addr);
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight requests and writing usage");
    running.stop();
    running.wait().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves at the first SIGINT or SIGTERM. The handlers are installed when this is
/// called (not when first polled), so no signal is missed or fatal from then on.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut interrupt), Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                interrupt.recv().await;
            }
            (Err(e), Ok(mut terminate)) => {
                tracing::warn!(error = %e, "cannot listen for SIGINT; only SIGTERM stops the server");
                terminate.recv().await;
            }
            (Err(e), Err(_)) => {
                tracing::warn!(error = %e, "cannot listen for SIGINT or SIGTERM; falling back to Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Resolves at the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
