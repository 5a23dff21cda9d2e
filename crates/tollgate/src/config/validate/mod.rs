//! Raw configuration → [`Config`], collecting every problem instead of stopping at
//! the first.

mod alerts;
mod models;
mod providers;
mod server;
#[cfg(test)]
mod tests;

use serde::Deserialize;

use super::env::{apply_overrides, Env};
use super::raw::{RawConfig, RawModel};
use super::{
    Config, MockSettings, Problem, Problems, ProviderConfig, ProviderKind, Secret, StorageConfig,
    Strategy, ADMIN_PASSWORD_VAR,
};

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's base URL; the adapter appends `/v1/messages`.
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// Parses and validates configuration text (empty text means all defaults).
pub fn from_text(text: &str, origin: &str, env: &Env) -> Result<Config, Problems> {
    let raw = parse(text, origin, env)?;
    validate_with(origin, env, |v| v.config(raw))
}

/// Parses configuration text but validates only `[storage]`: what commands that
/// manage the database need, without provider secrets in the environment.
pub fn storage_from_text(text: &str, origin: &str, env: &Env) -> Result<StorageConfig, Problems> {
    let raw = parse(text, origin, env)?;
    validate_with(origin, env, |v| v.storage(&raw))
}

/// Parses configuration text but validates only `[server]`: what `tollgate stats`
/// needs to find a running gateway.
pub fn server_from_text(
    text: &str,
    origin: &str,
    env: &Env,
) -> Result<super::ServerConfig, Problems> {
    let raw = parse(text, origin, env)?;
    validate_with(origin, env, |v| v.server(&raw))
}

/// Runs one validation and answers its result, or every problem it found.
fn validate_with<T>(
    origin: &str,
    env: &Env,
    run: impl FnOnce(&mut Validator<'_>) -> T,
) -> Result<T, Problems> {
    let mut v = Validator {
        origin,
        env,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let result = run(&mut v);
    if v.problems.is_empty() {
        Ok(result)
    } else {
        Err(Problems(v.problems))
    }
}

/// Text → raw configuration with `TOLLGATE_*` overrides applied.
fn parse(text: &str, origin: &str, env: &Env) -> Result<RawConfig, Problems> {
    let mut problems = Vec::new();
    // Parse the text alone first: its errors carry line and column.
    if let Err(e) = toml::from_str::<RawConfig>(text) {
        let location = match e.span() {
            Some(span) => format!("{origin}:{}", line_col(text, span.start)),
            None => origin.to_owned(),
        };
        problems.push(Problem::new(
            location,
            e.message().trim().to_owned(),
            "correct the file; see the configuration reference in the README",
        ));
        return Err(Problems(problems));
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        Problems(vec![Problem::new(
            origin,
            e.message().trim().to_owned(),
            "correct the file",
        )])
    })?;
    apply_overrides(&mut table, env, &mut problems);
    match RawConfig::deserialize(toml::Value::Table(table)) {
        Ok(raw) if problems.is_empty() => Ok(raw),
        Ok(_) => Err(Problems(problems)),
        Err(e) => {
            problems.push(Problem::new(
                format!("{origin} (with TOLLGATE_* overrides)"),
                e.message().trim().to_owned(),
                "correct the overriding environment variable",
            ));
            Err(Problems(problems))
        }
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

struct Validator<'a> {
    origin: &'a str,
    env: &'a Env,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Validator<'_> {
    fn at(&self, path: &str) -> String {
        format!("{}: {path}", self.origin)
    }

    fn problem(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        let location = self.at(path);
        self.problems.push(Problem::new(location, message, fix));
    }

    fn positive(&mut self, path: &str, value: Option<i64>, default: i64) -> u64 {
        match value {
            None => default as u64,
            Some(n) if n > 0 => n as u64,
            Some(n) => {
                self.problem(
                    path,
                    format!("{n} must be greater than 0"),
                    format!("use a positive number such as {default}"),
                );
                default as u64
            }
        }
    }

    fn at_least_zero(&mut self, path: &str, value: Option<i64>) -> u64 {
        match value {
            None => 0,
            Some(n) if n >= 0 => n as u64,
            Some(n) => {
                self.problem(
                    path,
                    format!("{n} must not be negative"),
                    "use 0 or more milliseconds",
                );
                0
            }
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(&raw);
        let storage = self.storage(&raw);
        let alerts = self.alerts(raw.alerts.as_ref());
        let budgets = self.budgets(&raw.budgets);
        let default_strategy = match self.env.get("API_KEY_STRATEGY") {
            Some(s) => self.strategy("API_KEY_STRATEGY", s),
            None => Strategy::RoundRobin,
        };
        let mut providers: Vec<ProviderConfig> = raw
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| self.provider(i, p, default_strategy))
            .collect();
        self.env_providers(&mut providers, default_strategy);
        let mut models = raw.models;
        let builtin_mock = providers.is_empty();
        if builtin_mock {
            self.warnings.push(
                "NO PROVIDER IS CONFIGURED: serving the built-in MOCK provider (models mock-gpt, mock-embedding). \
                 Its answers are fake. Configure [[providers]] or set OPENAI_API_KEY for real traffic."
                    .to_owned(),
            );
            providers.push(ProviderConfig {
                name: "mock".to_owned(),
                kind: ProviderKind::Mock,
                base_url: String::new(),
                strategy: default_strategy,
                keys: Vec::new(),
                mock: MockSettings::default(),
            });
            if models.is_empty() {
                models = builtin_mock_models();
            }
        }
        for p in &providers {
            let needs_keys = matches!(p.kind, ProviderKind::OpenAi | ProviderKind::Anthropic);
            if needs_keys && p.keys.is_empty() {
                let path = format!("providers[name={}].keys", p.name);
                let kind = p.kind.as_str();
                let var = kind.to_ascii_uppercase();
                self.problem(&path, format!("an `{kind}` provider needs at least one key"), format!("add keys = [{{ id = \"{kind}-1\", key_env = \"{var}_API_KEY_1\" }}] or export {var}_API_KEY"));
            }
        }
        let models = self.models(&models, &providers);
        let tiers = self.tiers(&raw.tiers, &models);
        Config {
            server,
            storage,
            providers,
            models,
            tiers,
            budgets,
            alerts,
            builtin_mock,
            admin_password: self
                .env
                .get(ADMIN_PASSWORD_VAR)
                .filter(|p| !p.is_empty())
                .map(|p| Secret::new(p.as_str())),
            warnings: std::mem::take(&mut self.warnings),
        }
    }
}

fn builtin_mock_models() -> Vec<RawModel> {
    let model = |name: &str, caps: &[&str]| RawModel {
        name: name.to_owned(),
        provider: "mock".to_owned(),
        upstream_model: None,
        input_per_1m: Some(0.0),
        output_per_1m: Some(0.0),
        context_window: Some(128_000),
        capabilities: Some(caps.iter().map(|c| c.to_string()).collect()),
        aliases: Vec::new(),
        fallbacks: Vec::new(),
        downgrade_to: None,
    };
    vec![
        model("mock-gpt", &["chat", "completions", "tools"]),
        model("mock-embedding", &["embeddings"]),
    ]
}
