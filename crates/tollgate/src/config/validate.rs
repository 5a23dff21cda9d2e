//! Raw configuration → [`Config`], collecting every problem instead of stopping at
//! the first.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::env::{apply_overrides, keys_from_env, Env};
use super::raw::{RawConfig, RawModel, RawProvider, RawTier};
use super::{
    Capability, Config, MockSettings, ModelConfig, Problem, Problems, ProviderConfig, ProviderKind,
    Secret, ServerConfig, StorageConfig, Strategy, TierConfig, UpstreamKeyConfig,
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
        for (name, present) in [
            ("budgets", raw.budgets.is_some()),
            ("alerts", raw.alerts.is_some()),
        ] {
            if present {
                self.warnings.push(format!(
                    "[{name}] is accepted but not enforced by this version of tollgate"
                ));
            }
        }
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
            builtin_mock,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn tiers(
        &mut self,
        raw: &BTreeMap<String, RawTier>,
        models: &[ModelConfig],
    ) -> BTreeMap<String, TierConfig> {
        let known = |name: &str| {
            models
                .iter()
                .any(|m| m.name == name || m.aliases.iter().any(|a| a == name))
        };
        let open = models.is_empty();
        let mut tiers = BTreeMap::new();
        for (name, t) in raw {
            let path = format!("tiers.{name}");
            let limits = [
                ("rpm", t.rpm),
                ("rph", t.rph),
                ("rpd", t.rpd),
                ("tpm", t.tpm),
                ("tpd", t.tpd),
                ("tokens_per_month", t.tokens_per_month),
            ];
            for (field, value) in limits {
                if let Some(n) = value {
                    self.positive(&format!("{path}.{field}"), Some(n), 1);
                }
            }
            if limits.iter().any(|(_, v)| v.is_some()) {
                self.warnings.push(format!("[{path}] rate limits are accepted but not enforced by this version of tollgate"));
            }
            for m in t.models.iter().flatten().chain(t.route.values()) {
                if !open && !known(m) {
                    self.problem(
                        &path,
                        format!("{m:?} is not a model"),
                        "name a model (or alias) declared in [[models]]",
                    );
                }
            }
            tiers.insert(
                name.clone(),
                TierConfig {
                    models: t.models.clone(),
                    route: t.route.clone(),
                },
            );
        }
        tiers
    }

    fn server(&mut self, raw: &RawConfig) -> ServerConfig {
        let s = &raw.server;
        let listen_text = s
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            self.problem(
                "server.listen",
                format!("{listen_text:?} is not an address"),
                "use IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        ServerConfig {
            listen,
            max_body_bytes: self.positive(
                "server.max_body_bytes",
                s.max_body_bytes,
                10 * 1024 * 1024,
            ) as usize,
            upstream_connect_timeout: Duration::from_millis(self.positive(
                "server.upstream_connect_timeout_ms",
                s.upstream_connect_timeout_ms,
                5000,
            )),
            upstream_first_byte_timeout: Duration::from_millis(self.positive(
                "server.upstream_first_byte_timeout_ms",
                s.upstream_first_byte_timeout_ms,
                60_000,
            )),
            max_retries: match s.max_retries {
                None => 2,
                Some(n) if (0..=10).contains(&n) => n as u32,
                Some(n) => {
                    self.problem(
                        "server.max_retries",
                        format!("{n} is out of range"),
                        "use a number from 0 to 10",
                    );
                    2
                }
            },
            shutdown_grace: Duration::from_secs(self.positive(
                "server.shutdown_grace_s",
                s.shutdown_grace_s,
                30,
            )),
            trusted_proxies: s.trusted_proxies.clone().unwrap_or_default(),
            metrics_token: s.metrics_token.clone().unwrap_or_default(),
        }
    }

    fn storage(&mut self, raw: &RawConfig) -> StorageConfig {
        let s = &raw.storage;
        let database_url = s
            .database_url
            .clone()
            .unwrap_or_else(|| "sqlite://tollgate.db".to_owned());
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            self.problem(
                "storage.database_url",
                "PostgreSQL is not supported by this version of tollgate yet",
                "use sqlite://PATH for now",
            );
        } else if !database_url.starts_with("sqlite:") {
            self.problem(
                "storage.database_url",
                format!("{database_url:?} is not a database URL tollgate knows"),
                "use sqlite://tollgate.db (relative) or sqlite:///absolute/path.db",
            );
        }
        let redis_url = s.redis_url.clone().filter(|u| !u.is_empty());
        if redis_url.is_some() {
            self.warnings.push("storage.redis_url is set, but this version keeps limits in-process; Redis is not used yet".to_owned());
        }
        StorageConfig {
            database_url,
            redis_url,
            log_retention_days: self.positive(
                "storage.log_retention_days",
                s.log_retention_days,
                90,
            ) as u32,
        }
    }

    fn strategy(&mut self, path: &str, text: &str) -> Strategy {
        match text {
            "round_robin" => Strategy::RoundRobin,
            "least_loaded" => Strategy::LeastLoaded,
            "weighted" => Strategy::Weighted,
            "dedicated" => Strategy::Dedicated,
            "hybrid" => Strategy::Hybrid,
            other => {
                let location = if path.contains('.') || path.contains('[') {
                    self.at(path)
                } else {
                    path.to_owned()
                };
                self.problems.push(Problem::new(
                    location,
                    format!("unknown strategy {other:?}"),
                    "use round_robin, least_loaded, weighted, dedicated or hybrid",
                ));
                Strategy::RoundRobin
            }
        }
    }

    fn provider(
        &mut self,
        i: usize,
        p: &RawProvider,
        default_strategy: Strategy,
    ) -> ProviderConfig {
        let path = format!("providers[{i}]");
        if p.name.trim().is_empty() {
            self.problem(
                &format!("{path}.name"),
                "a provider needs a name",
                "set name = \"openai\" (clients never see it; model entries refer to it)",
            );
        }
        let kind = match p.kind.as_str() {
            "openai" => ProviderKind::OpenAi,
            "openai_compatible" => ProviderKind::OpenAiCompatible,
            "mock" => ProviderKind::Mock,
            "anthropic" => ProviderKind::Anthropic,
            other => {
                self.problem(
                    &format!("{path}.kind"),
                    format!("unknown provider kind {other:?}"),
                    "use openai, anthropic, openai_compatible or mock",
                );
                ProviderKind::OpenAiCompatible
            }
        };
        let base_url = match (kind, &p.base_url) {
            (ProviderKind::Mock, _) => String::new(),
            (_, Some(url)) => self.base_url(&format!("{path}.base_url"), url),
            (ProviderKind::OpenAi, None) => OPENAI_BASE_URL.to_owned(),
            (ProviderKind::Anthropic, None) => ANTHROPIC_BASE_URL.to_owned(),
            (_, None) => {
                self.problem(&format!("{path}.base_url"), "an openai_compatible provider needs a base_url", "set base_url, e.g. \"http://127.0.0.1:8000/v1\" for vLLM or \"http://127.0.0.1:11434/v1\" for Ollama");
                String::new()
            }
        };
        let strategy = match &p.strategy {
            Some(s) => self.strategy(&format!("{path}.strategy"), s),
            None => default_strategy,
        };
        let keys = p
            .keys
            .iter()
            .enumerate()
            .filter_map(|(k, key)| {
                let kpath = format!("{path}.keys[{k}]");
                let secret = match (&key.key_env, kind) {
                    (Some(var), _) => match self.env.get(var) {
                        Some(v) if !v.trim().is_empty() => Secret::new(v.trim()),
                        _ => {
                            self.problem(
                                &format!("{kpath}.key_env"),
                                format!("environment variable {var} is not set"),
                                format!("export {var}=<the provider key>, or remove this key"),
                            );
                            return None;
                        }
                    },
                    (None, ProviderKind::Mock) => Secret::new("mock"),
                    (None, _) => {
                        self.problem(
                            &format!("{kpath}.key_env"),
                            "a key needs key_env, the environment variable holding its secret",
                            "add key_env = \"OPENAI_API_KEY_1\"; secrets never go in the file",
                        );
                        return None;
                    }
                };
                Some(UpstreamKeyConfig {
                    id: key.id.clone(),
                    secret,
                    rpm: key
                        .rpm
                        .map(|n| self.positive(&format!("{kpath}.rpm"), Some(n), 60) as u32),
                    tpm: key
                        .tpm
                        .map(|n| self.positive(&format!("{kpath}.tpm"), Some(n), 100_000) as u32),
                    daily_budget: key.daily_budget,
                    region: key.region.clone(),
                    weight: self.positive(&format!("{kpath}.weight"), key.weight, 1) as u32,
                    tier: key.tier.clone(),
                })
            })
            .collect();
        let mock = self.mock_settings(&path, p, kind);
        ProviderConfig {
            name: p.name.clone(),
            kind,
            base_url,
            strategy,
            keys,
            mock,
        }
    }

    fn mock_settings(&mut self, path: &str, p: &RawProvider, kind: ProviderKind) -> MockSettings {
        match (&p.mock, kind) {
            (None, _) => MockSettings::default(),
            (Some(m), ProviderKind::Mock) => MockSettings {
                first_byte_delay: Duration::from_millis(self.at_least_zero(
                    &format!("{path}.mock.first_byte_delay_ms"),
                    m.first_byte_delay_ms,
                )),
                chunk_delay: Duration::from_millis(
                    self.at_least_zero(&format!("{path}.mock.chunk_delay_ms"), m.chunk_delay_ms),
                ),
                reply_words: m.reply_words.map(|n| {
                    self.positive(&format!("{path}.mock.reply_words"), Some(n), 12) as usize
                }),
            },
            (Some(_), _) => {
                self.problem(
                    &format!("{path}.mock"),
                    "`mock` settings apply only to a provider of kind \"mock\"",
                    "remove the mock table, or set kind = \"mock\"",
                );
                MockSettings::default()
            }
        }
    }

    fn base_url(&mut self, path: &str, url: &str) -> String {
        let trimmed = url.trim_end_matches('/');
        match trimmed.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http") | Some("https"))
                    && uri.host().is_some() =>
            {
                trimmed.to_owned()
            }
            _ => {
                self.problem(
                    path,
                    format!("{url:?} is not an http(s) URL"),
                    "use e.g. \"https://api.openai.com/v1\"",
                );
                String::new()
            }
        }
    }

    /// Fills or creates the `openai` and `anthropic` providers from the
    /// `OPENAI_API_KEY*` and `ANTHROPIC_API_KEY*` variables.
    fn env_providers(&mut self, providers: &mut Vec<ProviderConfig>, strategy: Strategy) {
        let families = [
            ("OPENAI", "openai", ProviderKind::OpenAi, OPENAI_BASE_URL),
            (
                "ANTHROPIC",
                "anthropic",
                ProviderKind::Anthropic,
                ANTHROPIC_BASE_URL,
            ),
        ];
        for (prefix, name, kind, base_url) in families {
            let keys: Vec<UpstreamKeyConfig> = keys_from_env(prefix, self.env, &mut self.problems)
                .into_iter()
                .filter_map(|k| {
                    let secret = self.env.get(&k.key_env)?.trim().to_owned();
                    Some(UpstreamKeyConfig {
                        id: k.id,
                        secret: Secret::new(secret),
                        rpm: k.rpm.map(|n| n as u32),
                        tpm: k.tpm.map(|n| n as u32),
                        daily_budget: k.daily_budget,
                        region: None,
                        weight: 1,
                        tier: None,
                    })
                })
                .collect();
            if keys.is_empty() {
                continue;
            }
            match providers.iter_mut().find(|p| p.name == name) {
                Some(p) if p.keys.is_empty() => p.keys = keys,
                Some(_) => {}
                None => providers.push(ProviderConfig {
                    name: name.to_owned(),
                    kind,
                    base_url: base_url.to_owned(),
                    strategy,
                    keys,
                    mock: MockSettings::default(),
                }),
            }
        }
    }

    fn models(&mut self, raw: &[RawModel], providers: &[ProviderConfig]) -> Vec<ModelConfig> {
        let mut seen_names = HashSet::new();
        let mut seen_keys = HashSet::new();
        for p in providers {
            if !seen_names.insert(p.name.clone()) {
                self.problem(
                    &format!("providers[name={}]", p.name),
                    "two providers have this name",
                    "give each provider its own name",
                );
            }
            for k in &p.keys {
                if !seen_keys.insert(k.id.clone()) {
                    self.problem(
                        &format!("providers[name={}].keys[id={}]", p.name, k.id),
                        "this key id is used twice",
                        "give every upstream key its own id",
                    );
                }
            }
        }
        let mut names = HashSet::new();
        let models: Vec<ModelConfig> = raw
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let path = format!("models[{i}]");
                for n in std::iter::once(&m.name).chain(&m.aliases) {
                    if !names.insert(n.clone()) {
                        self.problem(
                            &path,
                            format!("the model name or alias {n:?} is used twice"),
                            "each name and alias must be unique",
                        );
                    }
                }
                if !providers.iter().any(|p| p.name == m.provider) {
                    self.problem(
                        &format!("{path}.provider"),
                        format!("no provider is named {:?}", m.provider),
                        "name a provider declared in [[providers]]",
                    );
                }
                let mut price = |field: &str, v: Option<f64>| match v {
                    Some(x) if x < 0.0 || !x.is_finite() => {
                        self.problem(
                            &format!("{path}.{field}"),
                            format!("{x} is not a price"),
                            "use a price per million tokens of 0 or more",
                        );
                        0.0
                    }
                    Some(x) => x,
                    None => 0.0,
                };
                let input_per_1m = price("input_per_1m", m.input_per_1m);
                let output_per_1m = price("output_per_1m", m.output_per_1m);
                let kind = providers
                    .iter()
                    .find(|p| p.name == m.provider)
                    .map(|p| p.kind);
                let capabilities = match &m.capabilities {
                    None if kind == Some(ProviderKind::Anthropic) => {
                        vec![Capability::Chat, Capability::Tools, Capability::Vision]
                    }
                    None => vec![Capability::Chat, Capability::Completions, Capability::Tools],
                    Some(list) => list
                        .iter()
                        .filter_map(|c| match c.as_str() {
                            "chat" => Some(Capability::Chat),
                            "completions" => Some(Capability::Completions),
                            "embeddings" => Some(Capability::Embeddings),
                            "tools" => Some(Capability::Tools),
                            "vision" => Some(Capability::Vision),
                            other => {
                                self.problem(
                                    &format!("{path}.capabilities"),
                                    format!("unknown capability {other:?}"),
                                    "use chat, completions, embeddings, tools or vision",
                                );
                                None
                            }
                        })
                        .collect(),
                };
                if kind == Some(ProviderKind::Anthropic) {
                    for c in [Capability::Completions, Capability::Embeddings] {
                        if capabilities.contains(&c) {
                            self.problem(
                                &format!("{path}.capabilities"),
                                format!("an anthropic model cannot serve `{}`", c.as_str()),
                                "Anthropic serves chat (with tools and vision); remove it",
                            );
                        }
                    }
                }
                let context_window = m.context_window.map(|n| {
                    self.positive(&format!("{path}.context_window"), Some(n), 8192) as u32
                });
                ModelConfig {
                    name: m.name.clone(),
                    provider: m.provider.clone(),
                    upstream_model: m.upstream_model.clone().unwrap_or_else(|| m.name.clone()),
                    input_per_1m,
                    output_per_1m,
                    context_window,
                    capabilities,
                    aliases: m.aliases.clone(),
                    fallbacks: m.fallbacks.clone(),
                    downgrade_to: m.downgrade_to.clone(),
                }
            })
            .collect();
        for (i, m) in models.iter().enumerate() {
            for target in m.fallbacks.iter().chain(&m.downgrade_to) {
                if !names.contains(target) {
                    self.problem(
                        &format!("models[{i}]"),
                        format!("{target:?} (in fallbacks or downgrade_to) is not a model"),
                        "name a model declared in [[models]]",
                    );
                }
            }
        }
        models
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_config_serves_the_builtin_mock() {
        let c = from_text("", "(defaults)", &env(&[])).expect("valid");
        assert!(c.builtin_mock);
        assert_eq!(c.providers[0].kind, ProviderKind::Mock);
        let names: Vec<_> = c.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["mock-gpt", "mock-embedding"]);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.database_url, "sqlite://tollgate.db");
    }

    #[test]
    fn openai_env_key_creates_the_openai_provider() {
        let c = from_text("", "(defaults)", &env(&[("OPENAI_API_KEY", "sk-abc")])).expect("valid");
        assert!(!c.builtin_mock);
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].base_url, OPENAI_BASE_URL);
        assert_eq!(c.providers[0].keys[0].secret.expose(), "sk-abc");
        assert!(!format!("{:?}", c.providers[0]).contains("sk-abc"));
    }

    #[test]
    fn every_problem_is_reported_with_location_and_fix() {
        let text = r#"
[server]
listen = "nowhere"
max_retries = 99
[[providers]]
name = "local"
kind = "openai_compatible"
base_url = "not a url"
keys = [ { id = "a", key_env = "MISSING_VAR" } ]
[[models]]
name = "m"
provider = "nope"
capabilities = ["chat", "telepathy"]
"#;
        let problems = from_text(text, "t.toml", &env(&[])).expect_err("invalid").0;
        let locations: Vec<_> = problems.iter().map(|p| p.location.as_str()).collect();
        for expected in [
            "t.toml: server.listen",
            "t.toml: server.max_retries",
            "t.toml: providers[0].base_url",
            "t.toml: providers[0].keys[0].key_env",
            "t.toml: models[0].provider",
            "t.toml: models[0].capabilities",
        ] {
            assert!(
                locations.contains(&expected),
                "missing {expected} in {locations:?}"
            );
        }
        assert!(problems.iter().all(|p| !p.fix.is_empty()));
    }

    #[test]
    fn syntax_and_unknown_fields_point_at_the_line() {
        let problems = from_text("[server]\nlistn = \"x\"\n", "t.toml", &env(&[]))
            .expect_err("invalid")
            .0;
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].location.starts_with("t.toml:2:"),
            "{:?}",
            problems[0]
        );
        assert!(problems[0].message.contains("listn"), "{:?}", problems[0]);
    }

    #[test]
    fn mock_settings_only_on_mock_providers() {
        let text = "[[providers]]\nname = \"m\"\nkind = \"mock\"\nmock = { first_byte_delay_ms = 250, chunk_delay_ms = 5 }\n";
        let c = from_text(text, "t.toml", &env(&[])).expect("valid");
        assert_eq!(
            c.providers[0].mock.first_byte_delay,
            Duration::from_millis(250)
        );
        let bad = "[[providers]]\nname = \"o\"\nkind = \"openai_compatible\"\nbase_url = \"http://x/v1\"\nmock = { chunk_delay_ms = 5 }\n";
        let problems = from_text(bad, "t.toml", &env(&[])).expect_err("invalid").0;
        assert_eq!(problems[0].location, "t.toml: providers[0].mock");
    }

    #[test]
    fn storage_alone_needs_no_provider_secrets() {
        let text = "[storage]\ndatabase_url = \"sqlite:///tmp/x.db\"\n[[providers]]\nname = \"o\"\nkind = \"openai\"\nkeys = [ { id = \"a\", key_env = \"UNSET_VAR\" } ]\n";
        assert!(from_text(text, "t.toml", &env(&[])).is_err());
        let storage = storage_from_text(text, "t.toml", &env(&[])).expect("storage is valid");
        assert_eq!(storage.database_url, "sqlite:///tmp/x.db");
    }

    #[test]
    fn tiers_name_models_that_exist() {
        let text = "[tiers.free]\nrpm = 10\nmodels = [\"mock-gpt\"]\nroute = { \"gpt-4o\" = \"mock-gpt\" }\n";
        let c = from_text(text, "t.toml", &env(&[])).expect("valid");
        assert_eq!(c.tiers["free"].route["gpt-4o"], "mock-gpt");
        assert!(c.warnings.iter().any(|w| w.contains("tiers.free")));
        let bad = "[tiers.free]\nmodels = [\"ghost\"]\n";
        let problems = from_text(bad, "t.toml", &env(&[])).expect_err("invalid").0;
        assert_eq!(problems[0].location, "t.toml: tiers.free");
    }

    #[test]
    fn env_override_reaches_the_config() {
        let c = from_text(
            "",
            "x",
            &env(&[("TOLLGATE_SERVER__LISTEN", "127.0.0.1:9999")]),
        )
        .expect("valid");
        assert_eq!(c.server.listen.port(), 9999);
    }
}
