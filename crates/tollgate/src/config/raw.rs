//! The configuration file exactly as written: serde types that refuse unknown fields,
//! so a typo is reported instead of silently ignored. Validation happens in `validate`.

use serde::Deserialize;

/// `tollgate.toml` as parsed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub tiers: std::collections::BTreeMap<String, RawTier>,
    #[serde(default)]
    pub budgets: RawBudgets,
    /// `[alerts]`; absent: the default rules to a `log` sink.
    pub alerts: Option<RawAlerts>,
}

/// `[alerts]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub evaluate_every_s: Option<i64>,
    /// Absent: one rule of each kind with its defaults, to every sink.
    pub rules: Option<Vec<super::alerts::RuleSpec>>,
    /// Absent: one `log` sink named `log`.
    pub sinks: Option<Vec<RawAlertSink>>,
}

/// A `[[alerts.sinks]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertSink {
    pub name: String,
    pub kind: String,
    /// webhook, slack: where to POST.
    pub url: Option<String>,
    /// webhook, slack: the environment variable holding the URL instead.
    pub url_env: Option<String>,
    /// email: `smtp://[user:password@]host[:port]` (`?tls=required` for STARTTLS) or
    /// `smtps://…`.
    pub smtp_url: Option<String>,
    /// email: the environment variable holding the SMTP URL instead.
    pub smtp_url_env: Option<String>,
    /// email: the sender address.
    pub from: Option<String>,
    /// email: one address or a list.
    pub to: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_body_bytes: Option<i64>,
    pub upstream_connect_timeout_ms: Option<i64>,
    pub upstream_first_byte_timeout_ms: Option<i64>,
    pub max_retries: Option<i64>,
    pub shutdown_grace_s: Option<i64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub metrics_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub log_retention_days: Option<i64>,
    pub spool_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub strategy: Option<String>,
    #[serde(default)]
    pub keys: Vec<RawUpstreamKey>,
    /// Only for `kind = "mock"`: how the built-in mock behaves.
    pub mock: Option<RawMockSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMockSettings {
    pub first_byte_delay_ms: Option<i64>,
    pub chunk_delay_ms: Option<i64>,
    pub reply_words: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamKey {
    pub id: String,
    pub key_env: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    pub weight: Option<i64>,
    pub tier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub rpm: Option<i64>,
    pub rph: Option<i64>,
    pub rpd: Option<i64>,
    pub tpm: Option<i64>,
    pub tpd: Option<i64>,
    pub tokens_per_month: Option<i64>,
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub route: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgets {
    pub currency: Option<String>,
    pub soft_threshold: Option<f64>,
    pub global_daily: Option<f64>,
    pub global_monthly: Option<f64>,
    pub owner_daily: Option<f64>,
    pub owner_monthly: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    pub provider: String,
    pub upstream_model: Option<String>,
    pub input_per_1m: Option<f64>,
    pub output_per_1m: Option<f64>,
    pub context_window: Option<i64>,
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    pub downgrade_to: Option<String>,
}
