//! The model table: which provider serves a model name or alias, under what upstream
//! name, at what price, with what capabilities; tiers that restrict or re-route models;
//! and the fallbacks to try when a model's provider fails.

mod tiers;

use std::sync::Arc;

use crate::config::{Capability, ModelConfig, ProviderConfig, TierConfig};
use crate::fast_map::FastMap;
use crate::providers::Endpoint;
use crate::usage::Prices;

pub use tiers::TierRules;

/// Where a request for a model goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The model's canonical client-facing name.
    pub model: Arc<str>,
    /// The name the upstream knows it by.
    pub upstream_model: Arc<str>,
    /// Index of the provider in the gateway's upstream list.
    pub provider: usize,
    pub prices: Prices,
    /// `None` for models of an open provider (any name is passed through).
    pub capabilities: Option<Arc<[Capability]>>,
    pub context_window: Option<u32>,
    /// Models to try, in order, when this one fails.
    pub fallbacks: Arc<[Arc<str>]>,
    /// The cheaper model a caller past its budget's soft threshold is moved to.
    pub downgrade_to: Option<Arc<str>>,
}

/// What a request needs from the model that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub endpoint: Endpoint,
    pub tools: bool,
    pub vision: bool,
}

/// Why a model cannot serve a request.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// No model has that name or alias.
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    UnknownModel(String),
    /// The model exists but lacks a capability the request needs.
    #[error("The model `{model}` does not support {capability}; use a model with the `{capability}` capability.")]
    Unsupported {
        model: String,
        capability: &'static str,
    },
    /// The caller's tier may not use the model.
    #[error("Your key's tier `{tier}` may not use the model `{model}`; GET /v1/models lists the models it may use.")]
    NotAllowed { model: String, tier: String },
}

/// Model names and aliases → routes, plus the tiers' rules.
#[derive(Debug, Default)]
pub struct ModelTable {
    /// Shared: a call holds its routes by reference count, not field by field.
    by_name: FastMap<String, Arc<Route>>,
    listed: Vec<(Arc<str>, Arc<str>)>,
    /// A provider with no `[[models]]` entry: serves any other name as-is.
    open_provider: Option<usize>,
    tiers: TierRules,
}

impl ModelTable {
    /// Builds the table; `providers` is in the same order as the gateway's upstreams.
    pub fn new(
        models: &[ModelConfig],
        providers: &[ProviderConfig],
        tiers: &std::collections::BTreeMap<String, TierConfig>,
    ) -> ModelTable {
        let mut table = ModelTable::default();
        for m in models {
            let Some(provider) = providers.iter().position(|p| p.name == m.provider) else {
                continue; // validation already refused this
            };
            let route = Arc::new(Route {
                model: m.name.as_str().into(),
                upstream_model: m.upstream_model.as_str().into(),
                provider,
                prices: Prices {
                    input_per_1m: m.input_per_1m,
                    output_per_1m: m.output_per_1m,
                },
                capabilities: Some(m.capabilities.clone().into()),
                context_window: m.context_window,
                fallbacks: m.fallbacks.iter().map(|f| Arc::from(f.as_str())).collect(),
                downgrade_to: m.downgrade_to.as_deref().map(Arc::from),
            });
            for name in std::iter::once(&m.name).chain(&m.aliases) {
                table.by_name.insert(name.clone(), route.clone());
            }
            table.listed.push((
                route.model.clone(),
                providers[provider].name.as_str().into(),
            ));
        }
        table.open_provider = providers
            .iter()
            .position(|p| !models.iter().any(|m| m.provider == p.name));
        table.tiers = TierRules::new(tiers, |name| {
            table.by_name.get(name).map(|r| r.model.clone())
        });
        table
    }

    /// The route for a model a caller of `tier` asked for, checked against `needs`.
    pub fn resolve(&self, name: &str, tier: &str, needs: Needs) -> Result<Arc<Route>, RouteError> {
        let target = self.tiers.route_for(tier, name).unwrap_or(name);
        let route = self
            .lookup(target)
            .ok_or_else(|| RouteError::UnknownModel(name.to_owned()))?;
        self.admit(&route, tier, needs)?;
        Ok(route)
    }

    /// The fallbacks of `route` that a caller of `tier` may use and that can serve
    /// `needs`, in order.
    pub fn fallbacks(&self, route: &Route, tier: &str, needs: Needs) -> Vec<Arc<Route>> {
        route
            .fallbacks
            .iter()
            .filter_map(|name| self.lookup(name))
            .filter(|r| self.admit(r, tier, needs).is_ok())
            .collect()
    }

    /// The cheaper model a caller past a budget's soft threshold is moved to: the
    /// route's `downgrade_to`, only when the caller's tier may use it, it can serve
    /// `needs`, and its context window (when known) holds `prompt_tokens`.
    pub fn downgrade(
        &self,
        route: &Route,
        tier: &str,
        needs: Needs,
        prompt_tokens: u64,
    ) -> Option<Arc<Route>> {
        let cheaper = self.lookup(route.downgrade_to.as_deref()?)?;
        let fits = cheaper
            .context_window
            .is_none_or(|window| prompt_tokens <= u64::from(window));
        (fits && self.admit(&cheaper, tier, needs).is_ok()).then_some(cheaper)
    }

    /// The models a caller of `tier` may ask for, with the provider serving each.
    pub fn listed_for(&self, tier: &str) -> Vec<(Arc<str>, Arc<str>)> {
        let mut listed: Vec<(Arc<str>, Arc<str>)> = self
            .listed
            .iter()
            .filter(|(model, _)| self.tiers.allows(tier, model))
            .cloned()
            .collect();
        for (requested, target) in self.tiers.routes(tier) {
            if let Some(route) = self.lookup(target) {
                if !listed.iter().any(|(m, _)| **m == *requested) {
                    listed.push((requested.as_str().into(), self.provider_name(&route)));
                }
            }
        }
        listed
    }

    fn provider_name(&self, route: &Route) -> Arc<str> {
        self.listed
            .iter()
            .find(|(m, _)| *m == route.model)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| Arc::from(""))
    }

    fn lookup(&self, name: &str) -> Option<Arc<Route>> {
        match (self.by_name.get(name), self.open_provider) {
            (Some(route), _) => Some(route.clone()),
            (None, Some(provider)) => Some(Arc::new(Route {
                model: name.into(),
                upstream_model: name.into(),
                provider,
                prices: Prices::default(),
                capabilities: None,
                context_window: None,
                fallbacks: Arc::from([]),
                downgrade_to: None,
            })),
            (None, None) => None,
        }
    }

    fn admit(&self, route: &Route, tier: &str, needs: Needs) -> Result<(), RouteError> {
        if !self.tiers.allows(tier, &route.model) {
            return Err(RouteError::NotAllowed {
                model: route.model.to_string(),
                tier: tier.to_owned(),
            });
        }
        let Some(caps) = &route.capabilities else {
            return Ok(());
        };
        let endpoint = match needs.endpoint {
            Endpoint::ChatCompletions => Capability::Chat,
            Endpoint::Completions => Capability::Completions,
            Endpoint::Embeddings => Capability::Embeddings,
        };
        let required = [
            Some(endpoint),
            needs.tools.then_some(Capability::Tools),
            needs.vision.then_some(Capability::Vision),
        ];
        match required.into_iter().flatten().find(|c| !caps.contains(c)) {
            Some(missing) => Err(RouteError::Unsupported {
                model: route.model.to_string(),
                capability: missing.as_str(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
