//! Upstream providers: one pooled HTTP client per provider, the adapters that speak
//! each provider's protocol, and the one error type every adapter returns.

pub mod anthropic;
pub mod client;
pub mod error;
pub mod openai;
pub mod origin;
mod reply;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use error::{UpstreamError, UpstreamErrorKind};
pub use reply::{Call, UpstreamBody, UpstreamReply};

use crate::config::{ProviderConfig, ProviderKind, Secret, UpstreamKeyConfig};
use crate::pool::{KeyAttributes, KeyPool, Limits, UpstreamKey};
use crate::store::{StoredUpstreamKey, UpstreamKeyStatus};

/// What the client called; decides the upstream path and the capability needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// The client-facing path, as logged.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }

    /// The path below an OpenAI-style base URL.
    pub fn upstream_suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// True for endpoints that can stream.
    pub fn can_stream(self) -> bool {
        !matches!(self, Endpoint::Embeddings)
    }
}

/// A configured provider at run time.
pub struct Upstream {
    pub name: Arc<str>,
    pub kind: ProviderKind,
    adapter: Adapter,
    pub pool: KeyPool,
    client: origin::OriginClient,
    /// The provider's configuration, to rebuild its key list when stored keys change.
    config: ProviderConfig,
}

/// The protocol a provider speaks, with its endpoint URIs parsed once.
enum Adapter {
    /// OpenAI's API: one URI per endpoint.
    OpenAi {
        chat_completions: http::Uri,
        completions: http::Uri,
        embeddings: http::Uri,
    },
    /// Anthropic's Messages API: one URI.
    Anthropic { messages: http::Uri },
}

impl Adapter {
    /// One of the URIs this adapter calls: they share the provider's origin.
    fn any_uri(&self) -> &http::Uri {
        match self {
            Adapter::OpenAi {
                chat_completions, ..
            } => chat_completions,
            Adapter::Anthropic { messages } => messages,
        }
    }

    fn new(kind: ProviderKind, base_url: &str) -> Result<Self, http::uri::InvalidUri> {
        let uri = |path: &str| format!("{base_url}{path}").parse::<http::Uri>();
        Ok(match kind {
            ProviderKind::Anthropic => Adapter::Anthropic {
                messages: uri("/v1/messages")?,
            },
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Mock => {
                Adapter::OpenAi {
                    chat_completions: uri(Endpoint::ChatCompletions.upstream_suffix())?,
                    completions: uri(Endpoint::Completions.upstream_suffix())?,
                    embeddings: uri(Endpoint::Embeddings.upstream_suffix())?,
                }
            }
        })
    }
}

/// A provider's keys: the configured ones, then those stored for it (with whether each
/// is enabled); a provider with none gets one keyless default key.
fn pool_keys(config: &ProviderConfig, stored: &[StoredUpstreamKey]) -> Vec<(UpstreamKey, bool)> {
    let configured = config.keys.iter().map(|k| (pool_key(k), true));
    let from_store = stored
        .iter()
        .filter(|s| s.provider == config.name)
        .map(|s| {
            let key = pool_key(&s.key).with_stamp(s.updated_at);
            (key, s.status == UpstreamKeyStatus::Enabled)
        });
    let mut keys: Vec<(UpstreamKey, bool)> = configured.chain(from_store).collect();
    if keys.is_empty() {
        // Keyless servers (Ollama, a local vLLM) and the built-in mock.
        let secret = (config.kind == ProviderKind::Mock).then(|| Secret::new("mock"));
        let default = KeyAttributes {
            weight: 1,
            ..KeyAttributes::default()
        };
        keys.push((
            UpstreamKey::new(&format!("{}-default", config.name), secret, default),
            true,
        ));
    }
    keys
}

/// A pool key from a configured or stored one.
fn pool_key(k: &UpstreamKeyConfig) -> UpstreamKey {
    let attributes = KeyAttributes {
        limits: Limits {
            rpm: k.rpm,
            tpm: k.tpm,
            daily_budget_nanos: k.daily_budget.map(|b| (b * 1e9).round() as i64),
        },
        weight: k.weight,
        region: k.region.clone(),
        tier: k.tier.clone(),
    };
    UpstreamKey::new(&k.id, Some(k.secret.clone()), attributes)
}

/// Timeouts for one upstream call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
}

impl Upstream {
    /// Builds a provider from its configuration and the keys stored for it;
    /// `base_url` overrides the configured one (the built-in mock's address is known
    /// only at start).
    pub fn new(
        config: &ProviderConfig,
        base_url: String,
        timeouts: Timeouts,
        stored: &[StoredUpstreamKey],
    ) -> Result<Upstream, String> {
        let adapter = Adapter::new(config.kind, &base_url).map_err(|e| e.to_string())?;
        let client = origin::OriginClient::new(adapter.any_uri(), timeouts.connect)?;
        let keys = pool_keys(config, stored)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let pool = KeyPool::new(keys, config.strategy);
        let upstream = Upstream {
            name: config.name.as_str().into(),
            kind: config.kind,
            adapter,
            pool,
            client,
            config: config.clone(),
        };
        upstream.apply_stored(stored);
        Ok(upstream)
    }

    /// Brings the pool in line with the keys now stored (added, changed, disabled or
    /// removed at run time); configured keys always stay.
    pub fn apply_stored(&self, stored: &[StoredUpstreamKey]) {
        self.pool.replace(pool_keys(&self.config, stored));
    }

    /// Makes one call with `key`: the adapter speaks the provider's protocol and
    /// answers in OpenAI's format, or with an [`UpstreamError`] that says whether
    /// another key (or model) may be tried.
    pub async fn call(
        &self,
        key: &UpstreamKey,
        call: &Call<'_>,
        first_byte_timeout: Duration,
    ) -> Result<UpstreamReply, UpstreamError> {
        match &self.adapter {
            Adapter::OpenAi {
                chat_completions,
                completions,
                embeddings,
            } => {
                let uri = match call.endpoint {
                    Endpoint::ChatCompletions => chat_completions,
                    Endpoint::Completions => completions,
                    Endpoint::Embeddings => embeddings,
                };
                openai::call(&self.client, uri, key, call, first_byte_timeout).await
            }
            Adapter::Anthropic { messages } => {
                anthropic::call(&self.client, messages, key, call, first_byte_timeout).await
            }
        }
    }
}
