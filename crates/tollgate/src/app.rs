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

use crate::admission::{Admission, Counters, CountersError};
use crate::auth::{index, KeyIndex};
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::providers::{Timeouts, Upstream};
use crate::routing::ModelTable;
use crate::secrets::MasterKey;
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use crate::usage::{queue::QUEUE_CAPACITY, spool::Spool, writer, UsageSink};

/// Everything a request needs, shared by all of them.
pub struct Gateway {
    pub config: Config,
    pub keys: Arc<KeyIndex>,
    /// Policy, limits and budgets, with their counters.
    pub admission: Arc<Admission>,
    /// Prometheus metrics.
    pub telemetry: Arc<Telemetry>,
    pub models: ModelTable,
    /// Providers, in configuration order (routes refer to them by index).
    pub upstreams: Vec<Upstream>,
    /// Shared, not cloned, by every call's meter (a clone is a channel sender and
    /// two more handles).
    pub usage: Arc<UsageSink>,
    pub store: Store,
    /// Unix seconds at start, shown as `created` in the model list.
    pub started_at_s: u64,
    /// The master key: admin writes reload the key index and the upstream pools at
    /// once (sealed HMAC and upstream secrets need it) instead of waiting for a poll.
    pub master_key: MasterKey,
    /// Failed admin logins, per client address and per username (in memory).
    pub admin_logins: crate::http::admin::LoginLimiter,
    /// Alert rules (replaceable at run time), sinks and history.
    pub alerts: Arc<crate::alerts::Alerts>,
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
    #[error(
        "cannot open the usage spool {path}: {source}; set storage.spool_path to a writable file"
    )]
    Spool {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the listening address: {0}")]
    Listener(std::io::Error),
    #[error("cannot start the limits and budgets counters: {}", .0.0)]
    Limits(CountersError),
    #[error("cannot create the first admin user: {0}")]
    AdminBootstrap(String),
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
/// `master_key` opens the upstream keys stored encrypted in the database.
pub async fn start(
    config: Config,
    listener: TcpListener,
    master_key: MasterKey,
) -> Result<RunningGateway, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let store = Store::open(&config.storage.database_url).await?;
    bootstrap_admin(&store, config.admin_password.as_ref()).await?;
    let upstream_revision = store.upstream_keys_revision().await?;
    let stored = store.list_upstream_keys(&master_key).await?;
    for key in &stored {
        if !config.providers.iter().any(|p| p.name == key.provider) {
            tracing::warn!(upstream_key = %key.key.id, provider = %key.provider, "a stored upstream key names a provider that is not configured; it is not used");
        }
    }
    let (index, revision) = KeyIndex::load(&store, &master_key).await?;
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
        let upstream = Upstream::new(provider, base_url, timeouts, &stored).map_err(|e| {
            StartError::BaseUrl {
                provider: provider.name.clone(),
                reason: e.to_string(),
            }
        })?;
        upstreams.push(upstream);
    }
    let models = ModelTable::new(&config.models, &config.providers, &config.tiers);

    let telemetry = Arc::new(Telemetry::new());
    let (usage, usage_rx) = UsageSink::new(QUEUE_CAPACITY, Some(telemetry.clone()));
    let spool = Spool::open(&config.storage.spool_path).map_err(|e| StartError::Spool {
        path: config.storage.spool_path.display().to_string(),
        source: e,
    })?;
    let writer_stop = CancellationToken::new();
    let writer_task = tokio::spawn(writer::run(
        store.clone(),
        usage_rx,
        spool,
        usage.counters(),
        writer::FLUSH_EVERY,
        writer_stop.clone(),
    ));
    let background_stop = CancellationToken::new();
    let refresher = tokio::spawn(index::refresh_until(
        keys.clone(),
        store.clone(),
        master_key.clone(),
        revision,
        background_stop.clone(),
    ));

    let counters = Counters::from_config(&config.storage)
        .await
        .map_err(StartError::Limits)?;
    let admission = Arc::new(Admission::new(&config, counters));
    admission.resume(&store, crate::store::now_ms()).await?;
    let grace = config.server.shutdown_grace;
    let alert_rules = Arc::new(crate::alerts::Alerts::new(&config.alerts, store.clone()));
    let gateway = Arc::new(Gateway {
        config,
        keys,
        admission,
        telemetry,
        models,
        upstreams,
        usage: Arc::new(usage),
        store: store.clone(),
        started_at_s: chrono::Utc::now().timestamp().max(0) as u64,
        master_key: master_key.clone(),
        admin_logins: crate::http::admin::LoginLimiter::default(),
        alerts: alert_rules,
    });
    let stop = CancellationToken::new();
    let upstream_sync = tokio::spawn(refresh_upstream_keys(
        gateway.clone(),
        master_key,
        upstream_revision,
        background_stop.clone(),
    ));
    // Daily aggregates and log retention (spawned here, after every fallible step).
    let aggregates = tokio::spawn(crate::usage::aggregates::run(
        store.clone(),
        gateway.config.storage.log_retention_days,
        background_stop.clone(),
    ));
    // Histogram samples folded into buckets, so memory stays flat between scrapes.
    let metrics_upkeep = tokio::spawn(crate::telemetry::run_upkeep(
        gateway.telemetry.clone(),
        background_stop.clone(),
    ));
    // Alert rules, evaluated every alerts.evaluate_every_s.
    let alerts = tokio::spawn(crate::alerts::run(gateway.clone(), background_stop.clone()));
    let service = crate::http::service(gateway.clone());
    let limits = crate::http::server_limits(&gateway.config);
    let signal = stop.clone();
    let task = tokio::spawn(async move {
        crate::http::server::serve(listener, service, signal, grace, limits).await;
        background_stop.cancel();
        let _ = refresher.await;
        let _ = aggregates.await;
        let _ = upstream_sync.await;
        let _ = alerts.await;
        let _ = metrics_upkeep.await;
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

/// The first admin (SPEC §1): on a database without admin users, creates `admin` with
/// `password` (TOLLGATE_ADMIN_PASSWORD), or with a random password printed once to
/// standard error — never through the log, which may be shipped elsewhere.
async fn bootstrap_admin(
    store: &Store,
    password: Option<&crate::config::Secret>,
) -> Result<(), StartError> {
    use crate::auth::admin;
    if store.has_admins().await? {
        if password.is_some() {
            tracing::info!(
                "{} is set, but admin users exist already: it applies only on an empty database (change a password with `tollgate admin passwd`)",
                crate::config::ADMIN_PASSWORD_VAR
            );
        }
        return Ok(());
    }
    let (password, generated) = match password {
        Some(p) => {
            admin::check_password(p.expose()).map_err(|e| {
                StartError::AdminBootstrap(format!("{}: {e}", crate::config::ADMIN_PASSWORD_VAR))
            })?;
            (p.expose().to_owned(), false)
        }
        None => (admin::generate_password(), true),
    };
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || admin::hash_password(&password))
            .await
            .map_err(|e| StartError::AdminBootstrap(e.to_string()))?
            .map_err(|e| StartError::AdminBootstrap(e.to_string()))?
    };
    let created = store.insert_first_admin(FIRST_ADMIN, &hash).await?;
    if !created {
        return Ok(()); // another replica created it first
    }
    if generated {
        eprintln!(
            "\n  *** Created the admin user `{FIRST_ADMIN}` with this password, shown only this once: ***\n\n      {password}\n\n  *** Log in at /admin/api/login; change it with `tollgate admin passwd --username {FIRST_ADMIN}`. ***\n"
        );
    } else {
        tracing::info!(
            "created the admin user `{FIRST_ADMIN}` with the password from {}",
            crate::config::ADMIN_PASSWORD_VAR
        );
    }
    Ok(())
}

/// The username of the admin created on an empty database.
pub const FIRST_ADMIN: &str = "admin";

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

/// How often stored upstream keys are checked for changes.
const UPSTREAM_REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Polls the stored upstream keys' revision until `stop` and applies changes to the
/// pools. When a row cannot be decrypted (the master key was rotated and this gateway
/// still has the old one), the pools keep their last good keys until a restart.
async fn refresh_upstream_keys(
    gateway: AppState,
    master_key: MasterKey,
    mut revision: i64,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(UPSTREAM_REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = match gateway.store.upstream_keys_revision().await {
            Ok(current) if current == revision => continue,
            Ok(current) => current,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the upstream key revision; keeping the current keys");
                continue;
            }
        };
        match gateway.store.list_upstream_keys(&master_key).await {
            Ok(stored) => {
                for upstream in &gateway.upstreams {
                    upstream.apply_stored(&stored);
                }
                revision = current;
                tracing::info!(stored_keys = stored.len(), "upstream keys reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "stored upstream keys cannot be loaded; keeping the current keys (restart with the current master key)")
            }
        }
    }
}
