//! The Anthropic Messages adapter: OpenAI chat requests are translated to Messages
//! requests, and answers, streams and errors back to OpenAI's format (the translation
//! itself is `wire::anthropic`, pure functions).

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use wire::anthropic::{
    chat_request_to_messages, messages_error_to_openai, messages_response_to_chat,
    MessagesToChatStream,
};

use super::origin::{OriginClient, OriginRequest};
use super::{
    transport, Call, Endpoint, UpstreamBody, UpstreamError, UpstreamErrorKind, UpstreamReply,
};
use crate::pool::UpstreamKey;
use crate::sse_body::{SseTranslator, TranslatedSse};

/// The Messages API version Tollgate speaks.
const ANTHROPIC_VERSION: HeaderValue = HeaderValue::from_static("2023-06-01");
const ANTHROPIC_VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// `max_tokens` when the client sets none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Calls `uri` (the provider's `/v1/messages`) for an OpenAI chat call.
pub async fn call(
    client: &OriginClient,
    uri: &http::Uri,
    key: &UpstreamKey,
    call: &Call<'_>,
    first_byte_timeout: Duration,
) -> Result<UpstreamReply, UpstreamError> {
    if call.endpoint != Endpoint::ChatCompletions {
        return Err(refused(format!(
            "the Anthropic provider serves chat completions only, not {}",
            call.endpoint.path()
        )));
    }
    let body = chat_request_to_messages(&call.body, call.upstream_model, DEFAULT_MAX_TOKENS)
        .map_err(|e| {
            refused(format!(
                "the request cannot be sent to Anthropic: {}",
                e.message
            ))
        })?;
    let request = OriginRequest {
        method: http::Method::POST,
        target: uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &[
            (CONTENT_TYPE, transport::JSON),
            (ACCEPT, transport::JSON_OR_EVENTS),
            (ANTHROPIC_VERSION_HEADER, ANTHROPIC_VERSION),
        ],
        credential: key.api_key().map(|api_key| (&X_API_KEY, api_key)),
        body: Bytes::from(body),
    };
    let answer = transport::send(client, request, first_byte_timeout).await?;
    if !answer.status.is_success() {
        return Err(transport::error_answer(
            answer,
            key,
            first_byte_timeout,
            messages_error_to_openai,
        )
        .await);
    }
    let created = chrono::Utc::now().timestamp().max(0) as u64;
    let json = HeaderValue::from_static("application/json");
    let status = answer.status.as_u16();
    let headroom = transport::headroom(&answer.headers, transport::ANTHROPIC_RATELIMIT_HEADERS);
    let body = answer.body;
    if call.stream {
        // Always with the usage chunk: the meter reads it (and removes it when the
        // client did not ask for it).
        let translator = Egress(MessagesToChatStream::new(call.model, created, true));
        let body = UpstreamBody::Anthropic(Box::new(TranslatedSse::new(body, translator)));
        return Ok(UpstreamReply::Stream {
            status,
            content_type: Some(HeaderValue::from_static("text/event-stream")),
            body,
            headroom,
        });
    }
    let body = transport::read_whole(body, first_byte_timeout).await?;
    let (body, usage) = messages_response_to_chat(&body, call.model, created).map_err(|e| {
        UpstreamError::new(
            UpstreamErrorKind::BadResponse,
            format!("the Anthropic answer cannot be read: {}", e.message),
        )
    })?;
    Ok(UpstreamReply::Full {
        status,
        content_type: Some(json),
        body: Bytes::from(body),
        usage: Some(usage),
        headroom,
    })
}

/// A request the upstream cannot take as it is: a client error, not retried.
fn refused(message: String) -> UpstreamError {
    UpstreamError {
        status: Some(400),
        ..UpstreamError::new(UpstreamErrorKind::Status, message)
    }
}

/// Anthropic events in, OpenAI chunks out.
pub struct Egress(MessagesToChatStream);

impl SseTranslator for Egress {
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        match self.0.push(data, out) {
            Ok(()) => !self.0.is_done(),
            Err(e) => {
                // OpenAI reports a failure inside a stream as an error event.
                let envelope = wire::openai::ErrorEnvelope::new(
                    format!("the upstream stream failed: {}", e.message),
                    "server_error",
                    None,
                    None,
                );
                out.extend_from_slice(&wire::sse::data_event(&envelope.to_vec()));
                false
            }
        }
    }
}
