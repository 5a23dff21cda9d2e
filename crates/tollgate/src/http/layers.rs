//! Tower layers for generic concerns: the request id on every response, and client
//! authentication (with per-key CORS) in front of every `/v1` route. Hand-written
//! services rather than `axum::middleware::from_fn`, which boxes a future and clones a
//! boxed service per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::{self, AuthError, ClientKey};
use crate::store::now_ms;

/// The id of the request being served, also sent back as `x-request-id`, and the
/// time it was given (Unix ms): the request's "now" for every check and record that
/// needs the wall clock, read once.
#[derive(Debug, Clone)]
pub struct RequestId {
    pub id: Arc<str>,
    pub received_ms: i64,
}

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<ClientKey>);

/// A new request id for a request received at `now_ms`: `req_` + 12 hex digits of
/// Unix milliseconds + 12 random hex digits. Ids sort by time, so the request log's
/// index grows at its end.
fn new_request_id(now_ms: i64) -> String {
    let millis = now_ms.max(0) as u64;
    let random: u64 = rand::random::<u64>();
    let mut id = String::with_capacity(28);
    id.push_str("req_");
    push_hex12(&mut id, millis);
    push_hex12(&mut id, random);
    id
}

/// Appends the low 48 bits of `n` as 12 lowercase hex digits.
fn push_hex12(text: &mut String, n: u64) {
    for shift in (0..12).rev() {
        let digit = ((n >> (shift * 4)) & 0xf) as u32;
        text.push(char::from_digit(digit, 16).unwrap_or('0'));
    }
}

const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Gives every request an id and every response its `x-request-id` header.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = WithRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithRequestId { inner }
    }
}

/// The service [`RequestIdLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct WithRequestId<S> {
    inner: S,
}

impl<S> Service<Request> for WithRequestId<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let received_ms = now_ms();
        let id = new_request_id(received_ms);
        let header = HeaderValue::from_str(&id).ok();
        request.extensions_mut().insert(RequestId {
            id: id.into(),
            received_ms,
        });
        RequestIdFuture {
            inner: self.inner.call(request),
            header,
        }
    }
}

pin_project! {
    /// A response on its way, to be given its `x-request-id`.
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        header: Option<HeaderValue>,
    }
}

impl<F, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(header) = this.header.take() {
            response.headers_mut().insert(X_REQUEST_ID, header);
        }
        Poll::Ready(Ok(response))
    }
}

/// Which error shape a refused client call is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's error envelope (the `/v1` OpenAI routes).
    OpenAi,
    /// Anthropic's (`/v1/messages`).
    Anthropic,
}

/// Admits only requests that present an active client key, then gives browsers
/// access per key (SPEC §4): answers CORS preflights (`OPTIONS`, which browsers send
/// without credentials), and lets a page read an answer only when the caller's key
/// lists its origin. Whether such a call is admitted at all is the key's policy (an
/// unlisted origin is refused with 403). A hand-written service, not `from_fn`: it
/// costs the request no boxed future.
#[derive(Clone)]
pub struct ClientAuthLayer {
    state: AppState,
    dialect: Dialect,
}

impl ClientAuthLayer {
    /// Authentication against `state`'s key index, refusals in `dialect`'s shape.
    pub fn new(state: AppState, dialect: Dialect) -> Self {
        ClientAuthLayer { state, dialect }
    }
}

impl<S> Layer<S> for ClientAuthLayer {
    type Service = ClientAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAuth {
            inner,
            state: self.state.clone(),
            dialect: self.dialect,
        }
    }
}

/// The service [`ClientAuthLayer`] wraps around each client route.
#[derive(Clone)]
pub struct ClientAuth<S> {
    inner: S,
    state: AppState,
    dialect: Dialect,
}

impl<S> Service<Request> for ClientAuth<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ClientAuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let origin = request.headers().get(http::header::ORIGIN).cloned();
        if request.method() == http::Method::OPTIONS {
            return match origin {
                Some(origin)
                    if request
                        .headers()
                        .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD) =>
                {
                    ClientAuthFuture::answered(preflight(origin, request.headers()))
                }
                _ => ClientAuthFuture::relayed(self.inner.call(request), None),
            };
        }
        match admit_caller(&self.state, request) {
            Ok((request, caller)) => {
                let allowed =
                    origin.filter(|o| o.to_str().is_ok_and(|o| caller.policy.allows_origin(o)));
                ClientAuthFuture::relayed(self.inner.call(request), allowed)
            }
            Err(e) => ClientAuthFuture::answered(match self.dialect {
                Dialect::OpenAi => ApiError::Auth(e).into_response(),
                Dialect::Anthropic => ApiError::Auth(e).into_anthropic_response(),
            }),
        }
    }
}

pin_project! {
    /// A client call refused or answered at once, or on its way to the route.
    #[project = ClientAuthProj]
    pub enum ClientAuthFuture<F> {
        Answered { response: Option<Response> },
        Relayed {
            #[pin]
            inner: F,
            // The page origin to allow, when the caller's key lists it.
            allow_origin: Option<HeaderValue>,
        },
    }
}

impl<F> ClientAuthFuture<F> {
    fn answered(response: Response) -> Self {
        ClientAuthFuture::Answered {
            response: Some(response),
        }
    }

    fn relayed(inner: F, allow_origin: Option<HeaderValue>) -> Self {
        ClientAuthFuture::Relayed {
            inner,
            allow_origin,
        }
    }
}

impl<F, E> Future for ClientAuthFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ClientAuthProj::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it answered: a broken caller; answer nothing new.
                None => Poll::Pending,
            },
            ClientAuthProj::Relayed {
                inner,
                allow_origin,
            } => {
                let mut response = ready!(inner.poll(cx))?;
                if let Some(origin) = allow_origin.take() {
                    allow_reading(response.headers_mut(), origin);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// Checks the presented key and attaches the caller to the request.
fn admit_caller(
    state: &AppState,
    mut request: Request,
) -> Result<(Request, Arc<ClientKey>), AuthError> {
    let key = match auth::presented_key(request.headers()) {
        None => Err(AuthError::MissingKey),
        Some(secret) => {
            let received_ms = match request.extensions().get::<RequestId>() {
                Some(id) => id.received_ms,
                None => now_ms(),
            };
            state.keys.authenticate(secret, received_ms)
        }
    }?;
    request.extensions_mut().insert(Caller(key.clone()));
    Ok((request, key))
}

/// Lets a browser page from `origin` read the answer.
fn allow_reading(headers: &mut http::HeaderMap, origin: HeaderValue) {
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.append(http::header::VARY, HeaderValue::from_static("origin"));
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

#[cfg(test)]
mod tests {
    use super::new_request_id;

    #[test]
    fn request_ids_carry_their_time_in_hex_and_sort_by_it() {
        let id = new_request_id(0x0123_4567_89ab);
        assert_eq!(id.len(), 28);
        assert!(id.starts_with("req_0123456789ab"), "{id}");
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(new_request_id(1_000) < new_request_id(1_001));
        assert_ne!(new_request_id(7), new_request_id(7), "random part");
    }
}
