//! The non-stream chat completion body (`CreateChatCompletionResponse`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::chat::ChatAnswer;
use crate::chat_stream::Answer;
use crate::tools::ToolCallOut;

/// `usage` of a completion.
#[derive(Serialize, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u32,
    pub(crate) completion_tokens: u32,
    pub(crate) total_tokens: u32,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

/// Serializes `body` as a `200 application/json` response.
pub(crate) fn json_response<T: Serialize>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// The whole answer as one JSON body.
pub(crate) fn response(chat: &ChatAnswer) -> Response {
    let (message, finish_reason, completion_tokens) = match &chat.answer {
        Answer::Text(reply) => (
            MessageOut {
                role: "assistant",
                content: Some(&reply.text),
                refusal: (),
                tool_calls: None,
            },
            reply.finish_reason(),
            reply.tokens,
        ),
        Answer::Tool(call) => (
            MessageOut {
                role: "assistant",
                content: None,
                refusal: (),
                tool_calls: Some([call.out()]),
            },
            "tool_calls",
            call.tokens(),
        ),
    };
    json_response(&Completion {
        id: &chat.id,
        object: "chat.completion",
        created: chat.created,
        model: &chat.model,
        choices: [Choice {
            index: 0,
            message,
            logprobs: (),
            finish_reason,
        }],
        usage: Usage::new(chat.prompt_tokens, completion_tokens),
    })
}
