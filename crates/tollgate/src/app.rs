//! The running gateway: shared state, start-up, and graceful shutdown.
//!
//! Shutdown order: stop accepting → let in-flight requests finish (up to
//! `server.shutdown_grace_s`) → stop background tasks → write every queued usage row.

use std::net::SocketAddr;
use std::sync::Arc;

use mock_upstream::{MockOptions, MockServer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{index, KeyIndex};
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::providers::{Timeouts, Upstream};
use crate::routing::ModelTable;
use crate::store::{Store, StoreError};
use crate::usage::{queue::QUEUE_CAPACITY, writer, UsageSink};

/// Everything a request needs, shared by all of them.
pub struct Gateway {
    pub config: Config,
    pub keys: Arc<KeyIndex>,
    pub models: ModelTable,
    /// Providers, in configuration order (routes refer to them by index).
    pub upstreams: Vec<Upstream>,
    pub usage: UsageSink,
    pub store: Store,
    /// Unix seconds at start, shown as `created` in the model list.
    pub started_at_s: u64,
}

/// The state handlers receive.
pub type AppState = Arc<Gateway>;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the built-in mock provider: {0}")]
    Mock(std::io::Error),
    #[error("provider {provider}: its base_url does not form valid request URIs: {reason}")]
    BaseUrl { provider: String, reason: String },
    #[error("cannot read the listening address: {0}")]
    Listener(std::io::Error),
}

/// A gateway serving on a listener, until [`RunningGateway::stop`].
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub gateway: AppState,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningGateway {
    /// Begins graceful shutdown.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until shutdown has finished and every usage row is written.
    pub async fn wait(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task failed");
        }
    }
}

/// Opens storage, starts providers and background tasks, and serves on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let store = Store::open(&config.storage.database_url).await?;
    let (index, revision) = KeyIndex::load(&store).await?;
    let keys = Arc::new(index);

    let mut mocks: Vec<MockServer> = Vec::new();
    let timeouts = Timeouts {
        connect: config.server.upstream_connect_timeout,
        first_byte: config.server.upstream_first_byte_timeout,
    };
    let mut upstreams = Vec::with_capacity(config.providers.len());
    for provider in &config.providers {
        let base_url = match provider.kind {
            ProviderKind::Mock => {
                let server = MockServer::start_local(mock_options(&config, provider))
                    .await
                    .map_err(StartError::Mock)?;
                let base_url = server.base_url();
                mocks.push(server);
                base_url
            }
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Anthropic => {
                provider.base_url.clone()
            }
        };
        let upstream =
            Upstream::new(provider, base_url, timeouts).map_err(|e| StartError::BaseUrl {
                provider: provider.name.clone(),
                reason: e.to_string(),
            })?;
        upstreams.push(upstream);
    }
    let models = ModelTable::new(&config.models, &config.providers, &config.tiers);

    let (usage, usage_rx) = UsageSink::new(QUEUE_CAPACITY);
    let writer_stop = CancellationToken::new();
    let writer_task = tokio::spawn(writer::run(store.clone(), usage_rx, writer_stop.clone()));
    let background_stop = CancellationToken::new();
    let refresher = tokio::spawn(index::refresh_until(
        keys.clone(),
        store.clone(),
        revision,
        background_stop.clone(),
    ));

    let grace = config.server.shutdown_grace;
    let gateway = Arc::new(Gateway {
        config,
        keys,
        models,
        upstreams,
        usage,
        store: store.clone(),
        started_at_s: chrono::Utc::now().timestamp().max(0) as u64,
    });
    let stop = CancellationToken::new();
    let router = crate::http::router(gateway.clone());
    let signal = stop.clone();
    let task = tokio::spawn(async move {
        crate::http::server::serve(listener, router, signal, grace).await;
        background_stop.cancel();
        let _ = refresher.await;
        writer_stop.cancel();
        if let Err(e) = writer_task.await {
            tracing::error!(error = %e, "the usage writer failed");
        }
        for mock in mocks {
            mock.shutdown();
        }
        store.close().await;
    });
    Ok(RunningGateway {
        addr,
        gateway,
        stop,
        task,
    })
}

/// The built-in mock's options for a mock provider: its settings, and its models.
fn mock_options(config: &Config, provider: &ProviderConfig) -> MockOptions {
    let mut options = MockOptions {
        first_byte_delay: provider.mock.first_byte_delay,
        chunk_delay: provider.mock.chunk_delay,
        ..MockOptions::default()
    };
    if let Some(words) = provider.mock.reply_words {
        options.reply_words = words;
    }
    let models: Vec<String> = config
        .models
        .iter()
        .filter(|m| m.provider == provider.name)
        .map(|m| m.upstream_model.clone())
        .collect();
    if !models.is_empty() {
        options.models = models;
    }
    options
}
