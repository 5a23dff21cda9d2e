//! The OpenAI protocol adapter: api.openai.com, every OpenAI-compatible server, and
//! the built-in mock. Requests are relayed as bytes; answers come back as they are.

use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use wire::openai::{read_usage, ErrorEnvelope};

use super::origin::{OriginClient, OriginRequest};
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
    let request = OriginRequest {
        method: http::Method::POST,
        target: uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &[
            (CONTENT_TYPE, transport::JSON),
            (ACCEPT, transport::JSON_OR_EVENTS),
        ],
        credential: key.authorization().map(|auth| (&AUTHORIZATION, auth)),
        body: call.body.clone(),
    };
    let answer = transport::send(client, request, first_byte_timeout).await?;
    if !answer.status.is_success() {
        return Err(transport::error_answer(answer, key, first_byte_timeout, error_envelope).await);
    }
    let status = answer.status.as_u16();
    let content_type = answer.headers.value(CONTENT_TYPE.as_str());
    let headroom = transport::headroom(&answer.headers, transport::OPENAI_RATELIMIT_HEADERS);
    let body = answer.body;
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
