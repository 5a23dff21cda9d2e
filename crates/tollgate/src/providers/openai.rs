//! The OpenAI protocol adapter: api.openai.com, every OpenAI-compatible server, and
//! the built-in mock. Requests are relayed as bytes; only error answers are read.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use wire::openai::{read_usage, ErrorEnvelope};

use super::client::HttpClient;
use super::{Call, UpstreamBody, UpstreamError, UpstreamErrorKind, UpstreamReply};
use crate::pool::UpstreamKey;

/// The largest upstream error body read.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The largest non-stream upstream answer read.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// Calls an OpenAI-compatible endpoint: the body goes as it is, and the answer comes
/// back as it is (a non-stream answer is read whole and checked to be JSON).
pub async fn call(
    client: &HttpClient,
    uri: &http::Uri,
    key: &UpstreamKey,
    call: &Call<'_>,
    first_byte_timeout: Duration,
) -> Result<UpstreamReply, UpstreamError> {
    let response = send(client, uri, key, call.body.clone(), first_byte_timeout).await?;
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let content_type = parts.headers.get(CONTENT_TYPE).cloned();
    if call.stream {
        return Ok(UpstreamReply::Stream {
            status,
            content_type,
            body: UpstreamBody::Plain(body),
        });
    }
    let body = read_whole(body, first_byte_timeout).await?;
    let usage = read_usage(&body).map_err(|_| {
        UpstreamError::new(
            UpstreamErrorKind::BadResponse,
            "the upstream answered 200 with a body that is not a JSON object".to_owned(),
        )
    })?;
    Ok(UpstreamReply::Full {
        status,
        content_type,
        body,
        usage,
    })
}

/// Reads a whole answer body, bounded in size and time.
pub async fn read_whole(body: Incoming, timeout: Duration) -> Result<Bytes, UpstreamError> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_UPSTREAM_BODY).collect()).await {
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

/// Sends `body` to `uri` with `key`; answers with the response head when its status
/// is a success.
async fn send(
    client: &HttpClient,
    uri: &http::Uri,
    key: &UpstreamKey,
    body: Bytes,
    first_byte_timeout: Duration,
) -> Result<http::Response<Incoming>, UpstreamError> {
    let mut request = http::Request::post(uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream");
    if let Some(auth) = key.authorization() {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let request = request.body(Full::new(body)).map_err(|e| {
        UpstreamError::new(
            UpstreamErrorKind::Connect,
            format!("cannot build the upstream request: {e}"),
        )
    })?;
    let response = match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
        Err(_) => {
            let waited = first_byte_timeout.as_millis();
            let message = format!("the upstream did not answer within {waited} ms");
            return Err(UpstreamError::new(UpstreamErrorKind::Timeout, message));
        }
        Ok(Err(e)) => {
            let message = format!("cannot reach the upstream: {}", error_chain(&e));
            return Err(UpstreamError::new(UpstreamErrorKind::Connect, message));
        }
        Ok(Ok(response)) => response,
    };
    if response.status().is_success() {
        return Ok(response);
    }
    Err(read_error(response, key, first_byte_timeout).await)
}

/// Turns an upstream error answer into an [`UpstreamError`], masking any key in it.
async fn read_error(
    response: http::Response<Incoming>,
    key: &UpstreamKey,
    timeout: Duration,
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
        Limited::new(response.into_body(), ERROR_BODY_LIMIT).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    let envelope = ErrorEnvelope::parse(&body);
    let code = envelope.as_ref().and_then(|e| e.error.code.clone());
    let detail = envelope
        .map(|e| e.error.message)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    UpstreamError {
        kind: UpstreamErrorKind::Status,
        status: Some(status),
        retry_after,
        message: format!("upstream answered HTTP {status}: {}", key.scrub(&detail)),
        code,
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
