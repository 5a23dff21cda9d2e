//! `[[models]]` and `[tiers]`.

use std::collections::{BTreeMap, HashSet};

use super::Validator;
use crate::config::raw::{RawModel, RawTier};
use crate::config::*;

impl Validator<'_> {
    pub(super) fn tiers(
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

    pub(super) fn models(
        &mut self,
        raw: &[RawModel],
        providers: &[ProviderConfig],
    ) -> Vec<ModelConfig> {
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
