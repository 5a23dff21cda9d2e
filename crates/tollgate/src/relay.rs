//! The request path, as one function of plain calls:
//! read → (policy → admission: later) → route → pool → provider adapter →
//! stream and meter → settle. Failover loops back through the pool here, in sight.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use wire::openai::{peek_request, read_usage, rewrite_request, BodyError, Usage};

use crate::app::Gateway;
use crate::auth::ClientKey;
use crate::providers::{Endpoint, UpstreamError, UpstreamErrorKind};
use crate::routing::RouteError;
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
    /// The model cannot serve the call.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Every attempt failed; the last error and what was tried.
    #[error("{error}")]
    Upstream {
        error: UpstreamError,
        provider: Arc<str>,
        model: Arc<str>,
        tried: Vec<Arc<str>>,
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

    // Route.
    let route = gw.models.resolve(requested, req.endpoint)?;
    let upstream = &gw.upstreams[route.provider];
    meter.set_prices(route.prices);
    let row = meter.row_mut();
    row.model_served = Some(route.model.clone());
    row.provider = Some(upstream.name.clone());

    // The upstream body: renamed model, and a usage chunk asked for on streams.
    let ask_usage = stream && !peek.wants_usage_chunk();
    let rename = *route.upstream_model != *requested;
    let body = if ask_usage || rename {
        let model = rename.then_some(&*route.upstream_model);
        Bytes::from(rewrite_request(&req.body, model, ask_usage).map_err(RelayError::InvalidBody)?)
    } else {
        req.body.clone()
    };

    // Pool → adapter, failing over to another key while the error allows it.
    let mut tried: Vec<Arc<str>> = Vec::new();
    let attempts = gw.config.server.max_retries as usize + 1;
    let first_byte_timeout = gw.config.server.upstream_first_byte_timeout;
    loop {
        let Some(key) = upstream.pool.pick(&tried) else {
            return Err(no_key_left(
                upstream.name.clone(),
                route.model.clone(),
                tried,
            ));
        };
        meter.row_mut().upstream_key_id = Some(key.id.clone());
        tried.push(key.id.clone());
        let result = upstream
            .send(&key, req.endpoint, body.clone(), first_byte_timeout)
            .await;
        let result = match result {
            Ok(response) if stream => {
                meter.first_byte();
                return Ok(Outcome::Stream(response, ask_usage));
            }
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
                return Err(RelayError::Upstream {
                    error,
                    provider: upstream.name.clone(),
                    model: route.model.clone(),
                    tried,
                });
            }
        }
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

fn no_key_left(provider: Arc<str>, model: Arc<str>, tried: Vec<Arc<str>>) -> RelayError {
    RelayError::Upstream {
        error: UpstreamError {
            kind: UpstreamErrorKind::Status,
            status: Some(503),
            retry_after: None,
            message: "no usable upstream key".to_owned(),
        },
        provider,
        model,
        tried,
    }
}

fn draft_row(req: &RelayRequest) -> UsageRow {
    UsageRow {
        request_id: req.request_id.clone(),
        created_at_ms: now_ms(),
        key_id: Some(req.caller.id.clone()),
        owner: req.caller.owner.clone(),
        endpoint: req.endpoint.path(),
        stream: false,
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
            RelayError::Upstream { error, .. } => error.label(),
        }
    }
}
