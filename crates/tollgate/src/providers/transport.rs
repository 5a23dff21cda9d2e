//! What every adapter does on the wire: send with connect and first-byte timeouts,
//! read bounded bodies, and turn an error answer into an [`UpstreamError`].

use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use wire::openai::ErrorEnvelope;

use super::client::HttpClient;
use super::{UpstreamError, UpstreamErrorKind};
use crate::pool::UpstreamKey;

/// The largest non-stream upstream answer read.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The largest upstream error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sends a request; answers with the response head, whatever its status.
pub async fn send(
    client: &HttpClient,
    request: http::request::Builder,
    body: Bytes,
    first_byte_timeout: Duration,
) -> Result<http::Response<Incoming>, UpstreamError> {
    let request = request.body(Full::new(body)).map_err(|e| {
        UpstreamError::new(
            UpstreamErrorKind::Connect,
            format!("cannot build the upstream request: {e}"),
        )
    })?;
    match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
        Err(_) => {
            let waited = first_byte_timeout.as_millis();
            Err(UpstreamError::new(
                UpstreamErrorKind::Timeout,
                format!("the upstream did not answer within {waited} ms"),
            ))
        }
        Ok(Err(e)) => {
            let message = format!("cannot reach the upstream: {}", error_chain(&e));
            Err(UpstreamError::new(UpstreamErrorKind::Connect, message))
        }
        Ok(Ok(response)) => Ok(response),
    }
}

/// Reads a whole answer body, bounded in size and time.
pub async fn read_whole(body: Incoming, timeout: Duration) -> Result<Bytes, UpstreamError> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(UpstreamError::new(
            UpstreamErrorKind::BadResponse,
            format!("the upstream answer broke off: {e}"),
        )),
        Err(_) => {
            let waited = timeout.as_millis();
            Err(UpstreamError::new(
                UpstreamErrorKind::Timeout,
                format!("the upstream answer did not complete within {waited} ms"),
            ))
        }
    }
}

/// Turns an error answer into an [`UpstreamError`]: `parse` reads the provider's error
/// body into OpenAI's envelope; any occurrence of the key's secret is masked.
pub async fn error_answer(
    response: http::Response<Incoming>,
    key: &UpstreamKey,
    timeout: Duration,
    parse: impl FnOnce(u16, &[u8]) -> ErrorEnvelope,
) -> UpstreamError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let body = match tokio::time::timeout(
        timeout,
        Limited::new(response.into_body(), MAX_ERROR_BODY).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    let envelope = parse(status, &body);
    UpstreamError {
        kind: UpstreamErrorKind::Status,
        status: Some(status),
        retry_after,
        message: format!(
            "upstream answered HTTP {status}: {}",
            key.scrub(&envelope.error.message)
        ),
        code: envelope.error.code,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
