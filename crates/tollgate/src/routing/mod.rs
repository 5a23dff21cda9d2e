//! The model table: which provider serves a model name or alias, under what
//! upstream name, at what price, with what capabilities.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Capability, ModelConfig, ProviderConfig};
use crate::providers::Endpoint;
use crate::usage::Prices;

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
}

/// Why a model cannot serve a request.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// No model has that name or alias.
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    UnknownModel(String),
    /// The model exists but cannot serve this endpoint.
    #[error("The model `{model}` does not support {capability}; use a model with the `{capability}` capability.")]
    Unsupported {
        model: String,
        capability: &'static str,
    },
}

/// Model names and aliases → routes.
#[derive(Debug, Default)]
pub struct ModelTable {
    by_name: HashMap<String, Route>,
    listed: Vec<(Arc<str>, Arc<str>)>,
    /// A provider with no `[[models]]` entry: serves any other name as-is.
    open_provider: Option<usize>,
}

impl ModelTable {
    /// Builds the table; `providers` is in the same order as the gateway's upstreams.
    pub fn new(models: &[ModelConfig], providers: &[ProviderConfig]) -> ModelTable {
        let mut table = ModelTable::default();
        for m in models {
            let Some(provider) = providers.iter().position(|p| p.name == m.provider) else {
                continue; // validation already refused this
            };
            let route = Route {
                model: m.name.as_str().into(),
                upstream_model: m.upstream_model.as_str().into(),
                provider,
                prices: Prices {
                    input_per_1m: m.input_per_1m,
                    output_per_1m: m.output_per_1m,
                },
                capabilities: Some(m.capabilities.clone().into()),
            };
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
        table
    }

    /// The route for `name`, checked against what `endpoint` needs.
    pub fn resolve(&self, name: &str, endpoint: Endpoint) -> Result<Route, RouteError> {
        let route = match (self.by_name.get(name), self.open_provider) {
            (Some(route), _) => route.clone(),
            (None, Some(provider)) => Route {
                model: name.into(),
                upstream_model: name.into(),
                provider,
                prices: Prices::default(),
                capabilities: None,
            },
            (None, None) => return Err(RouteError::UnknownModel(name.to_owned())),
        };
        let needed = match endpoint {
            Endpoint::ChatCompletions => Capability::Chat,
            Endpoint::Completions => Capability::Completions,
            Endpoint::Embeddings => Capability::Embeddings,
        };
        if let Some(caps) = &route.capabilities {
            if !caps.contains(&needed) {
                return Err(RouteError::Unsupported {
                    model: route.model.to_string(),
                    capability: needed.as_str(),
                });
            }
        }
        Ok(route)
    }

    /// Declared models with the provider serving each, in configuration order.
    pub fn listed(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Env};

    fn table(text: &str) -> ModelTable {
        let c = Config::load_text_for_tests(text, &Env::new());
        ModelTable::new(&c.models, &c.providers)
    }

    #[test]
    fn resolves_names_aliases_and_capabilities() {
        let t = table("");
        assert_eq!(
            &*t.resolve("mock-gpt", Endpoint::ChatCompletions)
                .expect("route")
                .model,
            "mock-gpt"
        );
        assert!(matches!(
            t.resolve("mock-gpt", Endpoint::Embeddings),
            Err(RouteError::Unsupported { .. })
        ));
        assert!(matches!(
            t.resolve("nope", Endpoint::ChatCompletions),
            Err(RouteError::UnknownModel(_))
        ));
        assert_eq!(t.listed().len(), 2);
    }

    #[test]
    fn open_provider_passes_any_name_through() {
        let t = table("[[providers]]\nname = \"local\"\nkind = \"openai_compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n");
        let r = t
            .resolve("llama3", Endpoint::ChatCompletions)
            .expect("route");
        assert_eq!(&*r.upstream_model, "llama3");
        assert!(t.listed().is_empty());
    }
}
