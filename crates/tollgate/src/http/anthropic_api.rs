//! `POST /v1/messages`: Anthropic's Messages API as an ingress. The request is
//! translated to an OpenAI chat call, relayed like any other (to any provider), and
//! the answer, stream or error translated back into Anthropic's format.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use wire::anthropic::{chat_response_to_messages, messages_request_to_chat, ChatToMessagesStream};

use super::client_api::{event_stream, read_call};
use super::error::ApiError;
use super::limit_headers;
use crate::app::AppState;
use crate::providers::Endpoint;
use crate::relay::{self, RelayBody, RelayResponse};
use crate::sse_body::{SseTranslator, TranslatedSse};

/// POST /v1/messages
pub async fn messages(State(state): State<AppState>, request: Request) -> Response {
    let mut call = match read_call(&state, Endpoint::ChatCompletions, "/v1/messages", request).await
    {
        Ok(call) => call,
        Err(e) => return e.into_anthropic_response(),
    };
    let (chat_body, peek) = match messages_request_to_chat(&call.body) {
        Ok(translated) => translated,
        Err(e) => return ApiError::AnthropicRequest(e).into_anthropic_response(),
    };
    call.body = Bytes::from(chat_body);
    let relayed = relay::relay(&state, call).await;
    let mut response = match relayed.outcome {
        Ok(answer) => messages_answer(answer, &peek.model),
        Err(e) => ApiError::Relay(e).into_anthropic_response(),
    };
    limit_headers::apply(
        &mut response,
        relayed.limits.as_ref(),
        relayed.downgraded_from.as_ref(),
    );
    response
}

/// A relayed chat answer (full or streamed) in Anthropic's format.
fn messages_answer(relayed: RelayResponse, model: &str) -> Response {
    let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::OK);
    match relayed.body {
        RelayBody::Stream(stream) => {
            let translated = TranslatedSse::new(*stream, Ingress(ChatToMessagesStream::new(model)));
            let mut response = event_stream(Body::new(translated));
            *response.status_mut() = status;
            response
        }
        RelayBody::Full(bytes) => match chat_response_to_messages(&bytes, model) {
            Ok(body) => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(e) => ApiError::AnthropicAnswer(e).into_anthropic_response(),
        },
    }
}

/// OpenAI chunks in, Anthropic events out.
struct Ingress(ChatToMessagesStream);

impl SseTranslator for Ingress {
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let done = data == b"[DONE]";
        match self.0.push(data, out) {
            Ok(()) => !done,
            Err(e) => {
                let body = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": format!("the upstream stream failed: {}", e.message)}});
                out.extend_from_slice(format!("event: error\ndata: {body}\n\n").as_bytes());
                false
            }
        }
    }
}
