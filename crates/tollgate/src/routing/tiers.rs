//! Tier rules: which models a tier may use and which requested names it re-routes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::config::TierConfig;

/// Every tier's rules, with model names resolved to canonical names.
#[derive(Debug, Default)]
pub struct TierRules {
    tiers: HashMap<String, Tier>,
}

#[derive(Debug, Default)]
struct Tier {
    /// Canonical names of the models the tier may use; `None`: all.
    allowed: Option<HashSet<Arc<str>>>,
    /// Requested name → the name that serves it.
    route: BTreeMap<String, String>,
}

impl TierRules {
    /// Builds the rules; `canonical` maps a model name or alias to its canonical name.
    pub fn new(
        tiers: &BTreeMap<String, TierConfig>,
        canonical: impl Fn(&str) -> Option<Arc<str>>,
    ) -> Self {
        let tiers = tiers
            .iter()
            .map(|(name, t)| {
                let allowed = t.models.as_ref().map(|models| {
                    models
                        .iter()
                        .map(|m| canonical(m).unwrap_or_else(|| Arc::from(m.as_str())))
                        .collect()
                });
                (
                    name.clone(),
                    Tier {
                        allowed,
                        route: t.route.clone(),
                    },
                )
            })
            .collect();
        TierRules { tiers }
    }

    /// The model that serves `requested` for `tier`, when the tier re-routes it.
    pub fn route_for(&self, tier: &str, requested: &str) -> Option<&str> {
        self.tiers
            .get(tier)?
            .route
            .get(requested)
            .map(String::as_str)
    }

    /// True when `tier` may use the model with canonical name `model`.
    pub fn allows(&self, tier: &str, model: &str) -> bool {
        match self.tiers.get(tier).and_then(|t| t.allowed.as_ref()) {
            None => true,
            Some(allowed) => allowed.contains(model),
        }
    }

    /// The tier's re-routed names.
    pub fn routes(&self, tier: &str) -> impl Iterator<Item = (&String, &String)> {
        self.tiers
            .get(tier)
            .into_iter()
            .flat_map(|t| t.route.iter())
    }
}
