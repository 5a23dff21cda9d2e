//! The request path, as one function of plain calls:
//! read → (policy → admission: later) → route → pool → provider adapter →
//! stream and meter → settle. Failover loops back through the pool (another key) and
//! through the route (a fallback model) here, in sight.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use wire::openai::{peek_request, read_usage, rewrite_request, BodyError, Usage};

use crate::app::Gateway;
use crate::auth::ClientKey;
use crate::providers::{Endpoint, UpstreamError, UpstreamErrorKind};
use crate::routing::{Needs, Route, RouteError};
use crate::store::now_ms;
use crate::usage::meter::{CallMeter, MeteredBody};
use crate::usage::UsageRow;

/// The largest non-stream upstream answer relayed.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// A client call that passed authentication.
pub struct RelayRequest {
    pub endpoint: Endpoint,
    pub body: Bytes,
    pub caller: Arc<ClientKey>,
    pub request_id: Arc<str>,
    pub client_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<http::HeaderValue>,
    pub started: Instant,
}

/// The answer to relay to the client.
pub struct RelayResponse {
    pub status: u16,
    pub content_type: Option<http::HeaderValue>,
    pub body: RelayBody,
}

/// A complete body or a live stream.
pub enum RelayBody {
    Full(Bytes),
    Stream(Box<MeteredBody<Incoming>>),
}

/// One model tried for a call: which provider, with which upstream keys.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub model: Arc<str>,
    pub provider: Arc<str>,
    pub keys: Vec<Arc<str>>,
}

/// Why a call was not relayed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The body is not a request object.
    #[error("{0}")]
    InvalidBody(BodyError),
    /// No `model` in the body.
    #[error("you must provide a model parameter")]
    MissingModel,
    /// `stream` on an endpoint that cannot stream.
    #[error("streaming is not supported on {0}")]
    StreamNotSupported(&'static str),
    /// No model can serve the call.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Every model and key tried failed; the last error and what was tried.
    #[error("{error}")]
    Upstream {
        error: UpstreamError,
        attempts: Vec<Attempt>,
    },
}

/// Relays one call and meters it.
pub async fn relay(gw: &Gateway, req: RelayRequest) -> Result<RelayResponse, RelayError> {
    let mut meter = CallMeter::start(draft_row(&req), req.started, gw.usage.clone());
    match relay_metered(gw, &req, &mut meter).await {
        Ok(Outcome::Stream(response, strip_usage_chunk)) => {
            let (parts, body) = response.into_parts();
            Ok(RelayResponse {
                status: parts.status.as_u16(),
                content_type: parts.headers.get(http::header::CONTENT_TYPE).cloned(),
                body: RelayBody::Stream(Box::new(MeteredBody::new(body, meter, strip_usage_chunk))),
            })
        }
        Ok(Outcome::Full(status, content_type, bytes, usage)) => {
            meter.finish(status, None, usage);
            Ok(RelayResponse {
                status,
                content_type,
                body: RelayBody::Full(bytes),
            })
        }
        Err(error) => {
            meter.finish(error.http_status(), Some(error.label()), None);
            Err(error)
        }
    }
}

enum Outcome {
    Stream(http::Response<Incoming>, bool),
    Full(u16, Option<http::HeaderValue>, Bytes, Option<Usage>),
}

async fn relay_metered(
    gw: &Gateway,
    req: &RelayRequest,
    meter: &mut CallMeter,
) -> Result<Outcome, RelayError> {
    let peek = peek_request(&req.body).map_err(RelayError::InvalidBody)?;
    let requested = peek
        .model
        .as_deref()
        .filter(|m| !m.is_empty())
        .ok_or(RelayError::MissingModel)?;
    meter.row_mut().model_requested = Some(requested.into());
    let stream = peek.is_stream();
    meter.row_mut().stream = stream;
    if stream && !req.endpoint.can_stream() {
        return Err(RelayError::StreamNotSupported(req.endpoint.path()));
    }
    // Streams ask the upstream for a final usage chunk; it is removed again when the
    // client did not ask for it.
    let ask_usage = stream && !peek.wants_usage_chunk();

    // Route: the model asked for (or the one the caller's tier maps it to), then its
    // fallbacks in order.
    let needs = Needs {
        endpoint: req.endpoint,
        tools: peek.uses_tools(),
        vision: peek.has_images(),
    };
    let tier = req.caller.tier.as_str();
    let primary = gw.models.resolve(requested, tier, needs)?;
    let mut fallbacks = gw.models.fallbacks(&primary, tier, needs).into_iter();
    let mut route = primary;
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        let body = upstream_body(&req.body, &route, requested, ask_usage)?;
        let (error, keys) = match try_route(gw, req, &route, body, stream, meter).await {
            Ok(outcome) => return Ok(outcome.with_stripping(ask_usage)),
            Err(failed) => failed,
        };
        attempts.push(Attempt {
            model: route.model.clone(),
            provider: gw.upstreams[route.provider].name.clone(),
            keys,
        });
        let next = error.allows_fallback().then(|| {
            fallbacks.find(|candidate| {
                !attempts.iter().any(|a| a.model == candidate.model)
                    && (!error.is_context_length() || has_larger_window(candidate, &route))
            })
        });
        match next.flatten() {
            Some(fallback) => {
                tracing::warn!(request_id = %req.request_id, from = %route.model, to = %fallback.model, error = %error, "falling back to another model");
                route = fallback;
            }
            None => return Err(RelayError::Upstream { error, attempts }),
        }
    }
}

/// One model: pool → adapter, failing over to another key while the error allows it.
/// On failure, answers the last error and the keys tried.
async fn try_route(
    gw: &Gateway,
    req: &RelayRequest,
    route: &Route,
    body: Bytes,
    stream: bool,
    meter: &mut CallMeter,
) -> Result<Outcome, (UpstreamError, Vec<Arc<str>>)> {
    let upstream = &gw.upstreams[route.provider];
    meter.set_prices(route.prices);
    let row = meter.row_mut();
    row.model_served = Some(route.model.clone());
    row.provider = Some(upstream.name.clone());

    let mut tried: Vec<Arc<str>> = Vec::new();
    let attempts = gw.config.server.max_retries as usize + 1;
    let first_byte_timeout = gw.config.server.upstream_first_byte_timeout;
    loop {
        let Some(key) = upstream.pool.pick(&tried) else {
            return Err((no_usable_key(), tried));
        };
        meter.row_mut().upstream_key_id = Some(key.id.clone());
        tried.push(key.id.clone());
        let result = match upstream
            .send(&key, req.endpoint, body.clone(), first_byte_timeout)
            .await
        {
            Ok(response) if stream => Ok(Outcome::Stream(response, false)),
            Ok(response) => read_full(response, first_byte_timeout).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(outcome) => {
                meter.first_byte();
                return Ok(outcome);
            }
            Err(error)
                if error.is_retryable()
                    && tried.len() < attempts
                    && tried.len() < upstream.pool.len() =>
            {
                tracing::warn!(request_id = %req.request_id, provider = %upstream.name, upstream_key = %key.id, error = %error, "upstream attempt failed; trying another key");
            }
            Err(error) => {
                tracing::warn!(request_id = %req.request_id, provider = %upstream.name, upstream_key = %key.id, error = %error, "upstream call failed");
                return Err((error, tried));
            }
        }
    }
}

impl Outcome {
    fn with_stripping(self, strip_usage_chunk: bool) -> Self {
        match self {
            Outcome::Stream(response, _) => Outcome::Stream(response, strip_usage_chunk),
            full => full,
        }
    }
}

/// The body for the upstream: the route's upstream model name, and a usage chunk
/// asked for on streams. The client's bytes are reused when nothing changes.
fn upstream_body(
    body: &Bytes,
    route: &Route,
    requested: &str,
    ask_usage: bool,
) -> Result<Bytes, RelayError> {
    let rename = *route.upstream_model != *requested;
    if !ask_usage && !rename {
        return Ok(body.clone());
    }
    let model = rename.then_some(&*route.upstream_model);
    rewrite_request(body, model, ask_usage)
        .map(Bytes::from)
        .map_err(RelayError::InvalidBody)
}

/// True when `candidate` is known to hold more context than `failed`.
fn has_larger_window(candidate: &Route, failed: &Route) -> bool {
    match (candidate.context_window, failed.context_window) {
        (Some(c), Some(f)) => c > f,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Reads a non-stream answer whole (bounded in size and time) and checks it is JSON.
async fn read_full(
    response: http::Response<Incoming>,
    timeout: std::time::Duration,
) -> Result<Outcome, UpstreamError> {
    let (parts, body) = response.into_parts();
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, MAX_UPSTREAM_BODY).collect())
        .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => return Err(bad_response(format!("the upstream answer broke off: {e}"))),
        Err(_) => {
            let waited = timeout.as_millis();
            let message = format!("the upstream answer did not complete within {waited} ms");
            return Err(UpstreamError::new(UpstreamErrorKind::Timeout, message));
        }
    };
    let usage = read_usage(&bytes).map_err(|_| {
        bad_response("the upstream answered 200 with a body that is not a JSON object".to_owned())
    })?;
    Ok(Outcome::Full(
        parts.status.as_u16(),
        parts.headers.get(http::header::CONTENT_TYPE).cloned(),
        bytes,
        usage,
    ))
}

fn bad_response(message: String) -> UpstreamError {
    UpstreamError::new(UpstreamErrorKind::BadResponse, message)
}

fn no_usable_key() -> UpstreamError {
    UpstreamError {
        status: Some(503),
        ..UpstreamError::new(
            UpstreamErrorKind::Status,
            "no usable upstream key".to_owned(),
        )
    }
}

fn draft_row(req: &RelayRequest) -> UsageRow {
    UsageRow {
        request_id: req.request_id.clone(),
        created_at_ms: now_ms(),
        key_id: Some(req.caller.id.clone()),
        owner: req.caller.owner.clone(),
        endpoint: req.endpoint.path(),
        client_ip: req.client_ip,
        user_agent: req.user_agent.clone(),
        ..UsageRow::default()
    }
}

impl RelayError {
    /// A data-free label for the usage row and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RelayError::InvalidBody(_)
            | RelayError::MissingModel
            | RelayError::StreamNotSupported(_) => "invalid_request",
            RelayError::Route(RouteError::UnknownModel(_)) => "model_not_found",
            RelayError::Route(RouteError::Unsupported { .. }) => "model_unsupported",
            RelayError::Route(RouteError::NotAllowed { .. }) => "model_not_allowed",
            RelayError::Upstream { error, .. } => error.label(),
        }
    }
}
