//! The OpenAI protocol adapter: api.openai.com, every OpenAI-compatible server, and
//! the built-in mock. Requests are relayed as bytes; answers come back as they are.

use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use wire::openai::{read_usage, ErrorEnvelope};

use super::origin::OriginClient;
use super::{transport, Call, UpstreamBody, UpstreamError, UpstreamErrorKind, UpstreamReply};
use crate::pool::UpstreamKey;

/// Calls an OpenAI-compatible endpoint: the body goes as it is, and the answer comes
/// back as it is (a non-stream answer is read whole and checked to be JSON).
pub async fn call(
    client: &OriginClient,
    uri: &http::Uri,
    key: &UpstreamKey,
    call: &Call<'_>,
    first_byte_timeout: Duration,
) -> Result<UpstreamReply, UpstreamError> {
    let mut request = http::Request::post(uri.clone())
        .header(CONTENT_TYPE, transport::JSON)
        .header(ACCEPT, transport::JSON_OR_EVENTS);
    if let Some(auth) = key.authorization() {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let response = transport::send(client, request, call.body.clone(), first_byte_timeout).await?;
    if !response.status().is_success() {
        return Err(
            transport::error_answer(response, key, first_byte_timeout, error_envelope).await,
        );
    }
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let content_type = parts.headers.get(CONTENT_TYPE).cloned();
    let headroom = transport::headroom(&parts.headers, transport::OPENAI_RATELIMIT_HEADERS);
    if call.stream {
        let body = UpstreamBody::Plain(body);
        return Ok(UpstreamReply::Stream {
            status,
            content_type,
            body,
            headroom,
        });
    }
    let body = transport::read_whole(body, first_byte_timeout).await?;
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
        headroom,
    })
}

/// An OpenAI error body, or the start of whatever else the upstream sent.
fn error_envelope(status: u16, body: &[u8]) -> ErrorEnvelope {
    ErrorEnvelope::parse(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let text = if text.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            text
        };
        ErrorEnvelope::new(text, "api_error", None, None)
    })
}
