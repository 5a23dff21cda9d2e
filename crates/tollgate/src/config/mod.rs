//! Configuration: `tollgate.toml`, `TOLLGATE_*` overrides and provider keys from the
//! environment, validated into [`Config`] in two steps (parse raw, then validate) so
//! that every problem is reported at once with its location and fix.

pub mod alerts;
mod env;
mod problem;
mod raw;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use alerts::{AlertRule, AlertSink, AlertsConfig, RuleKind, RuleSpec, SinkKind};
pub use env::{process_env, Env};
pub use problem::{Problem, Problems};

/// The environment variable with the first admin's password; `tollgate admin
/// create|passwd` also take the password from it (else from standard input).
pub const ADMIN_PASSWORD_VAR: &str = "TOLLGATE_ADMIN_PASSWORD";

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Upstream providers, in file order.
    pub providers: Vec<ProviderConfig>,
    /// The model table.
    pub models: Vec<ModelConfig>,
    /// Tiers by name; a key without a tier is `standard`. Always holds `free`,
    /// `standard` and `premium` (with their default limits unless configured).
    pub tiers: std::collections::BTreeMap<String, TierConfig>,
    /// `[budgets]`.
    pub budgets: BudgetsConfig,
    /// `[alerts]`: rules, sinks, and how often the rules are evaluated.
    pub alerts: AlertsConfig,
    /// True when no provider was configured and the built-in mock serves instead.
    pub builtin_mock: bool,
    /// `TOLLGATE_ADMIN_PASSWORD`: the password of the first admin, `admin`, created
    /// when the database has none (SPEC §1); unset: a random one is printed once.
    pub admin_password: Option<Secret>,
    /// Things that work but deserve the operator's attention.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub upstream_connect_timeout: Duration,
    pub upstream_first_byte_timeout: Duration,
    pub max_retries: u32,
    pub shutdown_grace: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::admission::Cidr>,
    pub metrics_token: String,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `sqlite://path` (relative to the working directory) or `sqlite:///abs/path`.
    pub database_url: String,
    pub redis_url: Option<String>,
    pub log_retention_days: u32,
    /// The append-only file usage rows wait in while the database is down or slow;
    /// default: beside a SQLite database (`<file>.usage-spool`), else
    /// `./tollgate.usage-spool`.
    pub spool_path: PathBuf,
}

/// What protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// api.openai.com.
    OpenAi,
    /// vLLM, Ollama's /v1, LocalAI, any server speaking OpenAI's API.
    OpenAiCompatible,
    /// Anthropic's Messages API (requests and answers are translated).
    Anthropic,
    /// The built-in mock upstream, started in-process.
    Mock,
}

impl ProviderKind {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Mock => "mock",
        }
    }
}

/// How a provider's key pool picks a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    LeastLoaded,
    Weighted,
    Dedicated,
    Hybrid,
}

/// A `[[providers]]` entry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL without a trailing slash; empty for `mock` (filled in at start).
    pub base_url: String,
    pub strategy: Strategy,
    pub keys: Vec<UpstreamKeyConfig>,
    /// Behaviour of the built-in mock (only for `kind = "mock"`).
    pub mock: MockSettings,
}

/// How the built-in mock provider answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockSettings {
    pub first_byte_delay: Duration,
    pub chunk_delay: Duration,
    /// Words per reply; `None` keeps the mock's default.
    pub reply_words: Option<usize>,
}

/// An upstream (provider) key of a pool.
#[derive(Debug, Clone)]
pub struct UpstreamKeyConfig {
    /// Stable id, safe to show and to use as a metric label.
    pub id: String,
    /// The secret; redacted in Debug output.
    pub secret: Secret,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    pub weight: u32,
    pub tier: Option<String>,
}

/// A `[tiers.<name>]` entry: what keys of the tier may use, how their requests are
/// routed, and the rate limits of keys that set none of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierConfig {
    /// Limits of the tier's keys (a key's own limits take precedence).
    pub limits: crate::admission::RateLimits,
    /// Models (names or aliases) the tier may use; `None`: all.
    pub models: Option<Vec<String>>,
    /// A requested model name → the model that serves it for this tier.
    pub route: std::collections::BTreeMap<String, String>,
}

/// `[budgets]`: spending limits above single keys, and the downgrade threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetsConfig {
    /// ISO code of the currency prices and budgets are in.
    pub currency: String,
    /// Share of a budget (0–1) past which calls move to their model's `downgrade_to`.
    pub soft_threshold: f64,
    pub global_daily: Option<f64>,
    pub global_monthly: Option<f64>,
    /// Budgets of every owner (the `--owner` of keys), each counted on its own.
    pub owner_daily: Option<f64>,
    pub owner_monthly: Option<f64>,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        BudgetsConfig {
            currency: "USD".to_owned(),
            soft_threshold: 0.8,
            global_daily: None,
            global_monthly: None,
            owner_daily: None,
            owner_monthly: None,
        }
    }
}

/// What a model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Chat,
    Completions,
    Embeddings,
    Tools,
    Vision,
}

impl Capability {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Completions => "completions",
            Capability::Embeddings => "embeddings",
            Capability::Tools => "tools",
            Capability::Vision => "vision",
        }
    }
}

/// A `[[models]]` entry.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub provider: String,
    pub upstream_model: String,
    pub input_per_1m: f64,
    pub output_per_1m: f64,
    pub context_window: Option<u32>,
    pub capabilities: Vec<Capability>,
    pub aliases: Vec<String>,
    pub fallbacks: Vec<String>,
    pub downgrade_to: Option<String>,
}

/// A credential. Its Debug and Display never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Where the configuration file is: the given path, else `./tollgate.toml` when it
/// exists, else none (all defaults).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let default = PathBuf::from("tollgate.toml");
            default.exists().then_some(default)
        }
    }
}

/// Reads the configuration file's text, or none when there is no file.
fn read_text(path: Option<&Path>) -> Result<(String, String), Problems> {
    match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Ok((t, p.display().to_string())),
            Err(e) => Err(Problems(vec![Problem::new(
                p.display().to_string(),
                format!("cannot read the configuration file: {e}"),
                "check the path given with --config or TOLLGATE_CONFIG",
            )])),
        },
        None => Ok((String::new(), "(defaults)".to_owned())),
    }
}

impl StorageConfig {
    /// Loads only `[storage]`: enough for commands that manage the database.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<StorageConfig, Problems> {
        let (text, origin) = read_text(path)?;
        validate::storage_from_text(&text, &origin, env)
    }
}

impl ServerConfig {
    /// Loads only `[server]`: enough for commands that talk to a running gateway.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<ServerConfig, Problems> {
        let (text, origin) = read_text(path)?;
        validate::server_from_text(&text, &origin, env)
    }
}

impl Config {
    /// Loads and validates the configuration from `path` (if any) and `env`.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Config, Problems> {
        let (text, origin) = read_text(path)?;
        validate::from_text(&text, &origin, env)
    }
}

#[cfg(test)]
impl Config {
    /// Parses configuration text in tests, panicking on problems.
    pub fn load_text_for_tests(text: &str, env: &Env) -> Config {
        match validate::from_text(text, "test.toml", env) {
            Ok(c) => c,
            Err(p) => panic!("{p}"),
        }
    }
}
