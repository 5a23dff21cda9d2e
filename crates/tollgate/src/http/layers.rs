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

fn new_request_id() -> String {
    let n: u128 = rand::random();
    let mut id = String::with_capacity(28);
    id.push_str("req_");
    let _ = write!(id, "{:024x}", n >> 32);
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
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match auth::presented_key(request.headers()) {
        None => Err(AuthError::MissingKey),
        Some(secret) => state.keys.authenticate(secret, now_ms()),
    };
    match caller {
        Ok(key) => {
            request.extensions_mut().insert(Caller(key));
            next.run(request).await
        }
        Err(e) => ApiError::Auth(e).into_response(),
    }
}
