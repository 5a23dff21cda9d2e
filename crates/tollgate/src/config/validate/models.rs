//! `[[models]]` and `[tiers]`.

use std::collections::{BTreeMap, HashSet};

use super::Validator;
use crate::admission::RateLimits;
use crate::config::raw::{RawBudgets, RawModel, RawTier};
use crate::config::*;

/// Tiers that exist without configuration.
const BUILTIN_TIERS: [&str; 3] = ["free", "standard", "premium"];

/// A tier's limits: each configured value (`Some(None)`: configured as 0, no limit),
/// else the built-in default of SPEC §2 (free 10/min 100/h, standard 30/min 300/h,
/// premium 100/min 1000/h).
fn tier_limits(name: &str, configured: [Option<Option<u64>>; 6]) -> RateLimits {
    let (rpm, rph) = match name {
        "free" => (Some(10), Some(100)),
        "standard" => (Some(30), Some(300)),
        "premium" => (Some(100), Some(1000)),
        _ => (None, None),
    };
    let [c_rpm, c_rph, c_rpd, c_tpm, c_tpd, c_month] = configured;
    RateLimits {
        rpm: c_rpm.unwrap_or(rpm),
        rph: c_rph.unwrap_or(rph),
        rpd: c_rpd.flatten(),
        tpm: c_tpm.flatten(),
        tpd: c_tpd.flatten(),
        tokens_per_month: c_month.flatten(),
    }
}

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
            let mut limit = |field: &str, value: Option<i64>| -> Option<Option<u64>> {
                match value {
                    None => None,
                    Some(0) => Some(None),
                    Some(n) => Some(Some(self.positive(&format!("{path}.{field}"), Some(n), 1))),
                }
            };
            let configured = [
                limit("rpm", t.rpm),
                limit("rph", t.rph),
                limit("rpd", t.rpd),
                limit("tpm", t.tpm),
                limit("tpd", t.tpd),
                limit("tokens_per_month", t.tokens_per_month),
            ];
            let limits = tier_limits(name, configured);
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
                    limits,
                    models: t.models.clone(),
                    route: t.route.clone(),
                },
            );
        }
        for name in BUILTIN_TIERS {
            tiers.entry(name.to_owned()).or_insert_with(|| TierConfig {
                limits: tier_limits(name, [None; 6]),
                ..TierConfig::default()
            });
        }
        tiers
    }

    pub(super) fn budgets(&mut self, raw: &RawBudgets) -> BudgetsConfig {
        let defaults = BudgetsConfig::default();
        let currency = match &raw.currency {
            None => defaults.currency.clone(),
            Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                c.to_ascii_uppercase()
            }
            Some(c) => {
                self.problem(
                    "budgets.currency",
                    format!("{c:?} is not a currency code"),
                    "use a three-letter ISO code such as \"USD\" or \"EUR\"",
                );
                defaults.currency.clone()
            }
        };
        let soft_threshold = match raw.soft_threshold {
            None => defaults.soft_threshold,
            Some(t) if (0.0..=1.0).contains(&t) => t,
            Some(t) => {
                self.problem(
                    "budgets.soft_threshold",
                    format!("{t} is not a share of the budget"),
                    "use a number from 0 to 1, e.g. 0.8 for 80%",
                );
                defaults.soft_threshold
            }
        };
        let mut amount = |field: &str, value: Option<f64>| match value {
            None => None,
            Some(0.0) => None,
            Some(v) if v.is_finite() && v > 0.0 => Some(v),
            Some(v) => {
                self.problem(
                    &format!("budgets.{field}"),
                    format!("{v} is not an amount"),
                    "use a positive amount in the configured currency, or 0 for none",
                );
                None
            }
        };
        BudgetsConfig {
            currency,
            soft_threshold,
            global_daily: amount("global_daily", raw.global_daily),
            global_monthly: amount("global_monthly", raw.global_monthly),
            owner_daily: amount("owner_daily", raw.owner_daily),
            owner_monthly: amount("owner_monthly", raw.owner_monthly),
        }
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
