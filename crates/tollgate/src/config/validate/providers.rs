//! `[[providers]]`, their keys, and providers built from the environment.

use std::time::Duration;

use super::{Validator, ANTHROPIC_BASE_URL, OPENAI_BASE_URL};
use crate::config::env::keys_from_env;
use crate::config::raw::RawProvider;
use crate::config::*;

impl Validator<'_> {
    pub(super) fn strategy(&mut self, path: &str, text: &str) -> Strategy {
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

    pub(super) fn provider(
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

    pub(super) fn mock_settings(
        &mut self,
        path: &str,
        p: &RawProvider,
        kind: ProviderKind,
    ) -> MockSettings {
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

    pub(super) fn base_url(&mut self, path: &str, url: &str) -> String {
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
    pub(super) fn env_providers(
        &mut self,
        providers: &mut Vec<ProviderConfig>,
        strategy: Strategy,
    ) {
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
}
