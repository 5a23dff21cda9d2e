//! The request path, as one function of plain calls:
//! read → policy → route → admission (limits, budgets, downgrade) → pool → provider
//! adapter → stream and meter → settle. Failover loops back through the pool (another
//! key) and through the route (a fallback model) here, in sight.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wire::openai::{count_answer_tokens, peek_request, rewrite_request, BodyError, Rewrite};

use crate::admission::check::{check_asks, check_model, Asks, PolicyError};
use crate::admission::{AdmissionError, Estimate, LimitReport, Refusal};
use crate::app::Gateway;
use crate::auth::ClientKey;
use crate::pool::{self, Demand};
use crate::providers::{
    Call, Endpoint, UpstreamBody, UpstreamError, UpstreamErrorKind, UpstreamReply,
};
use crate::routing::{Needs, Route, RouteError};
use crate::usage::meter::{CallMeter, MeteredBody};
use crate::usage::UsageRow;

/// A client call that passed authentication.
pub struct RelayRequest {
    pub endpoint: Endpoint,
    /// The route the client called, as logged (`/v1/messages` relays as chat).
    pub client_path: &'static str,
    pub body: Bytes,
    pub caller: Arc<ClientKey>,
    pub request_id: Arc<str>,
    pub client_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<http::HeaderValue>,
    pub started: Instant,
    /// When the request was received (Unix ms): the call's time for its log row,
    /// admission windows and the upstream key's quotas.
    pub received_ms: i64,
}

/// What became of a call, and what the client is told about its limits.
pub struct Relayed {
    pub outcome: Result<RelayResponse, RelayError>,
    /// The caller's limits after this call (absent when it never reached admission).
    pub limits: Option<LimitReport>,
    /// The model the caller asked for, when a cheaper one served it (soft budget).
    pub downgraded_from: Option<Arc<str>>,
}

/// What admission told the client-facing side.
#[derive(Default)]
struct Notes {
    limits: Option<LimitReport>,
    downgraded_from: Option<Arc<str>>,
}

/// The answer to relay to the client, in OpenAI's format.
pub struct RelayResponse {
    pub status: u16,
    pub content_type: Option<http::HeaderValue>,
    pub body: RelayBody,
}

/// A complete body or a live stream.
pub enum RelayBody {
    Full(Bytes),
    Stream(Box<MeteredBody<UpstreamBody>>),
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
    /// The key's policy refuses the call.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A limit or budget refuses the call, or the counters are unreachable.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// Every model and key tried failed; the last error and what was tried.
    #[error("{error}")]
    Upstream {
        error: UpstreamError,
        attempts: Vec<Attempt>,
    },
}

/// Relays one call and meters it.
pub async fn relay(gw: &Gateway, req: RelayRequest) -> Relayed {
    let mut meter = CallMeter::start(draft_row(&req), req.started, gw.usage.clone());
    let mut notes = Notes::default();
    let result = relay_metered(gw, &req, &mut meter, &mut notes).await;
    Relayed {
        outcome: answer(result, meter),
        limits: notes.limits,
        downgraded_from: notes.downgraded_from,
    }
}

/// Turns the relay's result into the client's answer; the meter records the row
/// now (full answers, errors) or when the stream ends.
fn answer(
    result: Result<(UpstreamReply, bool), RelayError>,
    mut meter: CallMeter,
) -> Result<RelayResponse, RelayError> {
    match result {
        Ok((
            UpstreamReply::Stream {
                status,
                content_type,
                body,
                ..
            },
            strip_usage_chunk,
        )) => Ok(RelayResponse {
            status,
            content_type,
            body: RelayBody::Stream(Box::new(MeteredBody::new(body, meter, strip_usage_chunk))),
        }),
        Ok((
            UpstreamReply::Full {
                status,
                content_type,
                body,
                usage,
                ..
            },
            _,
        )) => {
            let usage = usage.or_else(|| {
                (status < 300).then(|| meter.estimate_usage(count_answer_tokens(&body)))
            });
            meter.finish(status, None, usage);
            Ok(RelayResponse {
                status,
                content_type,
                body: RelayBody::Full(body),
            })
        }
        Err(error) => {
            meter.finish(error.http_status(), Some(error.label()), None);
            Err(error)
        }
    }
}

/// The successful reply, and whether its stream's usage chunk is the gateway's to remove.
async fn relay_metered(
    gw: &Gateway,
    req: &RelayRequest,
    meter: &mut CallMeter,
    notes: &mut Notes,
) -> Result<(UpstreamReply, bool), RelayError> {
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
    // The output cap the call names (the larger, when it names both).
    let asked_output = match (peek.max_completion_tokens, peek.max_tokens) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let needs = Needs {
        endpoint: req.endpoint,
        tools: peek.uses_tools(),
        vision: peek.has_images(),
    };

    // Policy: what the call asks for, and the model.
    let policy = &req.caller.policy;
    check_asks(
        policy,
        Asks {
            stream,
            tools: needs.tools,
            vision: needs.vision,
            max_tokens: asked_output,
        },
    )?;
    // A key's cap also bounds calls that name no cap: the upstream is sent it.
    let cap_to_send = match (req.endpoint, asked_output) {
        (Endpoint::Embeddings, _) | (_, Some(_)) => None,
        _ => policy.permissions.max_tokens,
    };
    let max_output = asked_output.or(cap_to_send);
    // Route: the model asked for (or the one the caller's tier maps it to).
    let tier = req.caller.tier.as_str();
    let primary = gw.models.resolve(requested, tier, needs)?;
    check_model(policy, requested, &primary.model)?;

    // Admission: limits and budgets hold this call's estimate (or, past a soft budget
    // threshold, the estimate of the model's cheaper downgrade).
    let prompt_tokens = count_prompt_tokens(&req.body);
    let downgrade = gw.models.downgrade(&primary, tier, needs, prompt_tokens);
    let ask = gw.admission.ask(
        &req.caller,
        estimate(prompt_tokens, max_output, &primary),
        downgrade
            .as_ref()
            .map(|cheaper| estimate(prompt_tokens, max_output, cheaper)),
        req.received_ms,
    );
    let admitted = match gw.admission.admit(&ask).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            if let AdmissionError::Refused(refusal) = &refused {
                notes.limits = Some(refusal.report());
            }
            return Err(refused.into());
        }
    };
    notes.limits = Some(admitted.report);
    meter.hold_ticket(gw.admission.clone(), admitted.ticket, prompt_tokens);
    let primary = match (admitted.downgraded, downgrade) {
        (true, Some(cheaper)) => {
            notes.downgraded_from = Some(primary.model.clone());
            meter.row_mut().downgraded_from = Some(primary.model.clone());
            cheaper
        }
        _ => primary,
    };

    // Then its fallbacks in order.
    let mut fallbacks = gw.models.fallbacks(&primary, tier, needs).into_iter();
    let mut route = primary;
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        let call = Call {
            endpoint: req.endpoint,
            body: upstream_body(&req.body, &route, requested, ask_usage, cap_to_send)?,
            stream,
            model: &route.model,
            upstream_model: &route.upstream_model,
        };
        let expected = estimate(prompt_tokens, max_output, &route);
        let demand = Demand {
            tokens: expected.tokens,
            cost_nanos: expected.cost_nanos,
        };
        let (error, keys) = match try_route(gw, req, &route, &call, demand, meter).await {
            Ok(reply) => return Ok((reply, ask_usage)),
            Err(failed) => failed,
        };
        let provider = gw.upstreams[route.provider].name.clone();
        attempts.push(Attempt {
            model: route.model.clone(),
            provider,
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
    call: &Call<'_>,
    demand: Demand,
    meter: &mut CallMeter,
) -> Result<UpstreamReply, (UpstreamError, Vec<Arc<str>>)> {
    let upstream = &gw.upstreams[route.provider];
    meter.set_prices(route.prices);
    let row = meter.row_mut();
    row.model_served = Some(route.model.clone());
    row.provider = Some(upstream.name.clone());

    let caller = pool::Caller {
        dedicated: req.caller.dedicated_upstream.as_deref(),
        tier: Some(req.caller.tier.as_str()),
        region: req.caller.region.as_deref(),
    };
    let bound = gw.keys.bound_upstreams();
    let mut tried: Vec<Arc<str>> = Vec::new();
    let attempts = gw.config.server.max_retries as usize + 1;
    let first_byte_timeout = gw.config.server.upstream_first_byte_timeout;
    loop {
        let lease = match upstream
            .pool
            .pick_waiting(caller, &bound, &tried, demand, req.received_ms)
            .await
        {
            Ok(lease) => lease,
            Err(none) => return Err((no_usable_key(none.retry_after), tried)),
        };
        meter.row_mut().upstream_key_id = Some(lease.key().id.clone());
        match upstream.call(lease.key(), call, first_byte_timeout).await {
            Ok(reply) => {
                lease.succeeded(reply.headroom());
                meter.first_byte();
                meter.hold_lease(lease);
                return Ok(reply);
            }
            Err(error) => {
                let key_id = lease.key().id.clone();
                lease.failed(&error, &upstream.pool);
                // Kept only on failure: a call that succeeds at once allocates no list.
                tried.push(key_id.clone());
                if error.is_retryable()
                    && tried.len() < attempts
                    && tried.len() < upstream.pool.len()
                {
                    tracing::warn!(request_id = %req.request_id, provider = %upstream.name, upstream_key = %key_id, error = %error, "upstream attempt failed; trying another key");
                    continue;
                }
                tracing::warn!(request_id = %req.request_id, provider = %upstream.name, upstream_key = %key_id, error = %error, "upstream call failed");
                return Err((error, tried));
            }
        }
    }
}

/// What a call is expected to use (SPEC §6), reserved by admission and on the
/// upstream key it goes to: the counted prompt plus the output cap (or a default
/// allowance), priced at the route's prices.
fn estimate(prompt_tokens: u64, max_output: Option<u64>, route: &Route) -> Estimate {
    let output = max_output.unwrap_or(DEFAULT_OUTPUT_ALLOWANCE);
    Estimate {
        tokens: prompt_tokens + output,
        cost_nanos: route.prices.cost_nanos(prompt_tokens, output),
    }
}

/// The prompt's tokens, counted over the request body (its JSON punctuation makes
/// this a slight overestimate, the safe side for reservations).
fn count_prompt_tokens(body: &[u8]) -> u64 {
    u64::from(wire::tokens::count_bytes(body))
}

/// The output tokens a call without `max_tokens` is expected to use.
const DEFAULT_OUTPUT_ALLOWANCE: u64 = 512;

/// The body for the upstream: the route's upstream model name, a usage chunk asked
/// for on streams, and the key's `max_tokens` cap when the call names no output cap.
/// The client's bytes are reused when nothing changes.
fn upstream_body(
    body: &Bytes,
    route: &Route,
    requested: &str,
    ask_usage: bool,
    default_max_tokens: Option<u64>,
) -> Result<Bytes, RelayError> {
    let rewrite = Rewrite {
        model: (*route.upstream_model != *requested).then_some(&*route.upstream_model),
        include_usage: ask_usage,
        default_max_tokens,
    };
    if rewrite.is_empty() {
        return Ok(body.clone());
    }
    rewrite_request(body, rewrite)
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

fn no_usable_key(retry_after: Option<std::time::Duration>) -> UpstreamError {
    let message = match retry_after {
        Some(_) => "no usable upstream key: every key is at its quota or cooling down",
        None => "no usable upstream key: every key is invalid, disabled or already tried",
    };
    let error = UpstreamError::new(UpstreamErrorKind::Status, message.to_owned());
    UpstreamError {
        status: Some(503),
        retry_after,
        ..error
    }
}

fn draft_row(req: &RelayRequest) -> UsageRow {
    UsageRow {
        request_id: req.request_id.clone(),
        created_at_ms: req.received_ms,
        key_id: Some(req.caller.id.clone()),
        owner: req.caller.owner.clone(),
        endpoint: req.client_path.into(),
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
            RelayError::Policy(e) => e.code(),
            RelayError::Admission(AdmissionError::Refused(r)) => match **r {
                Refusal::RateLimited { .. } => "rate_limited",
                Refusal::BudgetExceeded { .. } => "budget_exceeded",
            },
            RelayError::Admission(AdmissionError::Backend(_)) => "limits_unavailable",
            RelayError::Upstream { error, .. } => error.label(),
        }
    }
}
