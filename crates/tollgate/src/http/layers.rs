//! Tower layers for generic concerns: the request id on every response, and client
//! authentication in front of every `/v1` route.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::{self, AuthError, ClientKey};
use crate::store::now_ms;

/// The id of the request being served, also sent back as `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<ClientKey>);

/// A new request id: `req_` + 12 hex digits of Unix milliseconds + 12 random hex
/// digits. Ids sort by time, so the request log's index grows at its end.
fn new_request_id() -> String {
    let millis = crate::store::now_ms().max(0) as u64 & 0xffff_ffff_ffff;
    let random: u64 = rand::random::<u64>() & 0xffff_ffff_ffff;
    let mut id = String::with_capacity(28);
    id.push_str("req_");
    let _ = write!(id, "{millis:012x}{random:012x}");
    id
}

/// Gives every request an id and every response its `x-request-id` header.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    let header = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id.into()));
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert("x-request-id", header);
    }
    response
}

/// Admits only requests that present an active client key.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match admit_caller(&state, request) {
        Ok(request) => next.run(request).await,
        Err(e) => ApiError::Auth(e).into_response(),
    }
}

/// [`authenticate`] for Anthropic's dialect: refusals in Anthropic's error shape.
pub async fn authenticate_anthropic(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match admit_caller(&state, request) {
        Ok(request) => next.run(request).await,
        Err(e) => ApiError::Auth(e).into_anthropic_response(),
    }
}

/// Checks the presented key and attaches the caller to the request.
fn admit_caller(state: &AppState, mut request: Request) -> Result<Request, AuthError> {
    let key = match auth::presented_key(request.headers()) {
        None => Err(AuthError::MissingKey),
        Some(secret) => state.keys.authenticate(secret, now_ms()),
    }?;
    request.extensions_mut().insert(Caller(key));
    Ok(request)
}
