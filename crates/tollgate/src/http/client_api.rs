//! The `/v1` client routes. Each handler reads the body and hands it to the relay.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use wire::openai::{ModelEntry, ModelList};

use super::error::ApiError;
use super::layers::{Caller, RequestId};
use crate::app::AppState;
use crate::providers::Endpoint;
use crate::relay::{self, RelayBody, RelayRequest};

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

async fn relay_call(state: AppState, endpoint: Endpoint, request: Request) -> Response {
    let relay_request = match read_call(&state, endpoint, request).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match relay::relay(&state, relay_request).await {
        Ok(relayed) => {
            let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::OK);
            let content_type = relayed
                .content_type
                .unwrap_or(HeaderValue::from_static("application/json"));
            let mut response = match relayed.body {
                RelayBody::Full(bytes) => Response::new(Body::from(bytes)),
                RelayBody::Stream(stream) => event_stream(Body::new(*stream)),
            };
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type);
            response
        }
        Err(e) => ApiError::Relay(e).into_response(),
    }
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

/// Reads an authenticated client call: its caller, id, size-limited body and origin.
pub(super) async fn read_call(
    state: &AppState,
    endpoint: Endpoint,
    request: Request,
) -> Result<RelayRequest, ApiError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Some(Caller(caller)) = parts.extensions.get::<Caller>().cloned() else {
        return Err(ApiError::Auth(crate::auth::AuthError::MissingKey));
    };
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "req_unknown".into());
    let body = read_body(&parts.headers, body, state.config.server.max_body_bytes).await?;
    Ok(RelayRequest {
        endpoint,
        client_path: endpoint.path(),
        body,
        caller,
        request_id,
        client_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        user_agent: parts.headers.get(http::header::USER_AGENT).cloned(),
        started,
    })
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

/// GET /v1/models: the models the caller's tier may use.
pub async fn models(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Response {
    let created = state.started_at_s;
    let listed = state.models.listed_for(&caller.tier);
    let list = ModelList {
        object: "list",
        data: listed
            .iter()
            .map(|(model, provider)| ModelEntry {
                id: model,
                object: "model",
                created,
                owned_by: provider,
            })
            .collect(),
    };
    axum::Json(list).into_response()
}
