//! The `/v1` client routes. Each handler reads the body and hands it to the relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use wire::openai::{ModelEntry, ModelList};

use super::error::ApiError;
use super::layers::{Caller, RequestId};
use super::{limit_headers, usage_report};
use crate::admission::check::{check_origin, Origin};
use crate::admission::{hmac, network};
use crate::app::AppState;
use crate::auth::ClientKey;
use crate::providers::Endpoint;
use crate::relay::{self, RelayBody, RelayRequest};
use crate::store::now_ms;

/// POST /v1/chat/completions
pub async fn chat_completions(State(state): State<AppState>, request: Request) -> Response {
    relay_call(state, Endpoint::ChatCompletions, request).await
}

/// POST /v1/completions
pub async fn completions(State(state): State<AppState>, request: Request) -> Response {
    relay_call(state, Endpoint::Completions, request).await
}

/// POST /v1/embeddings
pub async fn embeddings(State(state): State<AppState>, request: Request) -> Response {
    relay_call(state, Endpoint::Embeddings, request).await
}

/// The most headers a relayed answer carries.
const RESPONSE_HEADERS: usize = 16;

async fn relay_call(state: AppState, endpoint: Endpoint, request: Request) -> Response {
    let relay_request = match read_call(&state, endpoint, endpoint.path(), request).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let relayed = relay::relay(&state, relay_request).await;
    let mut response = match relayed.outcome {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            let content_type = answer
                .content_type
                .unwrap_or(HeaderValue::from_static("application/json"));
            let mut response = match answer.body {
                RelayBody::Full(bytes) => Response::new(Body::from(bytes)),
                RelayBody::Stream(stream) => event_stream(Body::new(*stream)),
            };
            *response.status_mut() = status;
            let headers = response.headers_mut();
            // Room for every header the answer gets (content type, cache control, ten
            // limit headers, request id): the map is allocated once, never regrown.
            headers.reserve(RESPONSE_HEADERS);
            headers.insert(http::header::CONTENT_TYPE, content_type);
            response
        }
        Err(e) => ApiError::Relay(e).into_response(),
    };
    limit_headers::apply(
        &mut response,
        relayed.limits.as_ref(),
        relayed.downgraded_from.as_ref(),
    );
    response
}

/// A streaming response: the body goes out frame by frame, never cached.
pub(super) fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    response
}

/// Reads an authenticated client call: its caller, id, size-limited body and origin,
/// checked against the key's policy for where it comes from.
pub(super) async fn read_call(
    state: &AppState,
    endpoint: Endpoint,
    path: &'static str,
    request: Request,
) -> Result<RelayRequest, ApiError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (caller, client_ip) = checked_caller(state, &parts, path)?;
    let (request_id, received_ms) = match parts.extensions.get::<RequestId>() {
        Some(r) => (r.id.clone(), r.received_ms),
        None => ("req_unknown".into(), now_ms()),
    };
    let body = read_body(&parts.headers, body, state.config.server.max_body_bytes).await?;
    verify_signature(state, &caller, &parts, &body).await?;
    Ok(RelayRequest {
        endpoint,
        client_path: path,
        body,
        caller,
        request_id,
        client_ip,
        user_agent: parts.headers.get(http::header::USER_AGENT).cloned(),
        started,
        received_ms,
    })
}

/// For a key that signs its requests (SPEC §4): the signature over method, path,
/// timestamp and body must verify, and must not have been seen before.
pub(super) async fn verify_signature(
    state: &AppState,
    caller: &ClientKey,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(secret) = &caller.hmac_secret else {
        return Ok(());
    };
    let now_s = now_ms().div_euclid(1000);
    let signature = hmac::verify(
        secret,
        parts.method.as_str(),
        parts.uri.path(),
        &parts.headers,
        body,
        now_s,
    )?;
    let keep_s = (signature.valid_until_s() - now_s).max(0) as u64 + 1;
    let claim = format!("{}:{}", caller.id, signature.as_str());
    if state.admission.claim_nonce(&claim, keep_s).await? {
        Ok(())
    } else {
        Err(ApiError::SignatureReplayed)
    }
}

/// The authenticated caller, once its key's policy allows `path` from where the
/// request comes from (network, browser origin); and the client's address.
pub(super) fn checked_caller(
    state: &AppState,
    parts: &http::request::Parts,
    path: &'static str,
) -> Result<(Arc<ClientKey>, Option<IpAddr>), ApiError> {
    let Some(Caller(caller)) = parts.extensions.get::<Caller>().cloned() else {
        return Err(ApiError::Auth(crate::auth::AuthError::MissingKey));
    };
    let client_ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        network::client_ip(c.0.ip(), forwarded, &state.config.server.trusted_proxies)
    });
    let origin = parts
        .headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    check_origin(
        &caller.policy,
        Origin {
            path,
            ip: client_ip,
            origin,
        },
    )?;
    Ok((caller, client_ip))
}

/// Reads the whole request body, refusing more than `limit` bytes.
async fn read_body(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Err(e) => Err(ApiError::BodyUnreadable(e.to_string())),
    }
}

/// GET /v1/models: the models the caller's tier (and key) may use.
pub async fn models(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let caller = match checked_caller(&state, &parts, "/v1/models") {
        Ok((caller, _)) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = verify_signature(&state, &caller, &parts, b"").await {
        return e.into_response();
    }
    let created = state.started_at_s;
    let listed = state.models.listed_for(&caller.tier);
    let list = ModelList {
        object: "list",
        data: listed
            .iter()
            .filter(|(model, _)| caller.policy.allows_model(model, model))
            .map(|(model, provider)| ModelEntry {
                id: model,
                object: "model",
                created,
                owned_by: provider,
            })
            .collect(),
    };
    let mut response = axum::Json(list).into_response();
    // Read-only: the caller's limits as they stand, nothing counted.
    if let Ok(snapshot) = state.admission.snapshot(&caller, now_ms()).await {
        limit_headers::apply(&mut response, Some(&snapshot.limits), None);
    }
    response
}

/// GET /v1/usage: the caller's own usage, remaining limits and budgets, read from the
/// counters enforcement uses (nothing is counted).
pub async fn usage(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let caller = match checked_caller(&state, &parts, "/v1/usage") {
        Ok((caller, _)) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = verify_signature(&state, &caller, &parts, b"").await {
        return e.into_response();
    }
    match state.admission.snapshot(&caller, now_ms()).await {
        Ok(snapshot) => {
            let body = usage_report::render(&caller, &state.admission, &snapshot);
            let mut response = axum::Json(body).into_response();
            limit_headers::apply(&mut response, Some(&snapshot.limits), None);
            response
        }
        Err(e) => ApiError::Counters(e).into_response(),
    }
}
