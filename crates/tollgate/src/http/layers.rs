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

/// Admits only requests that present an active client key, then applies [`cors`]
/// (one layer calling both: each layer costs the request path a boxed future). A CORS
/// preflight (`OPTIONS`, which browsers send without credentials) goes straight to
/// [`cors`].
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() == http::Method::OPTIONS {
        return cors(request, next).await;
    }
    match admit_caller(&state, request) {
        Ok(request) => cors(request, next).await,
        Err(e) => ApiError::Auth(e).into_response(),
    }
}

/// [`authenticate`] for Anthropic's dialect: refusals in Anthropic's error shape.
pub async fn authenticate_anthropic(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == http::Method::OPTIONS {
        return cors(request, next).await;
    }
    match admit_caller(&state, request) {
        Ok(request) => cors(request, next).await,
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

/// Browser access per key (SPEC §4), run by the authentication layers: answers CORS preflights, and lets a browser read
/// an answer only when the caller's key lists the page's origin. Whether such a call
/// is admitted at all is the key's policy (an unlisted origin is refused with 403).
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    if request.method() == http::Method::OPTIONS
        && request
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(origin, request.headers());
    }
    let allowed = request
        .extensions()
        .get::<Caller>()
        .zip(origin.to_str().ok())
        .is_some_and(|(caller, o)| caller.0.policy.allows_origin(o));
    let mut response = next.run(request).await;
    if allowed {
        let headers = response.headers_mut();
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        headers.append(http::header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// Headers a browser page may read from an answer.
const EXPOSED_HEADERS: &str = "x-request-id, retry-after, x-ratelimit-limit-minute, x-ratelimit-remaining-minute, x-ratelimit-limit-hour, x-ratelimit-remaining-hour, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-tollgate-downgraded-from";

/// The answer to a preflight. It carries no credentials, so it cannot name a key:
/// the origin is checked against the key on the call itself.
fn preflight(origin: HeaderValue, headers: &http::HeaderMap) -> Response {
    let requested = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "authorization, content-type, x-api-key, x-tollgate-timestamp, x-tollgate-signature",
        ));
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    h.insert(
        http::header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(http::header::VARY, HeaderValue::from_static("origin"));
    response
}
