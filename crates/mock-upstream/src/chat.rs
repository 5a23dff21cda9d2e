//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;

use crate::admit::{admit, Admitted};
use crate::chat_body;
use crate::chat_stream::{Answer, ChatEvents};
use crate::directives::Directives;
use crate::errors;
use crate::outcome::{self, Dialect};
use crate::ratelimit;
use crate::reply;
use crate::request::{wants_usage, ChatRequest};
use crate::shared::{unix_now, Shared};
use crate::sse::{self, Pacing};
use crate::tools;

/// What every chat answer, streamed or not, is made of.
pub(crate) struct ChatAnswer {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    pub(crate) answer: Answer,
    pub(crate) prompt_tokens: u32,
}

impl ChatAnswer {
    /// Tokens of the answer: the reply text, or the tool call.
    pub(crate) fn completion_tokens(&self) -> u32 {
        match &self.answer {
            Answer::Text(reply) => reply.tokens,
            Answer::Tool(call) => call.tokens(),
        }
    }
}

/// Handles one chat completion request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Admitted { body, key_requests } = match admit(&shared, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let parsed: ChatRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => return errors::invalid_request(&format!("Invalid JSON body: {error}"), None),
    };
    let Some(model) = parsed.model.as_deref() else {
        return errors::invalid_request("You must provide a model parameter.", Some("model"));
    };
    let Some(last) = parsed.messages.last() else {
        return errors::invalid_request(
            "'messages' must contain at least one message.",
            Some("messages"),
        );
    };
    let mut directives = Directives::default();
    directives.scan(&last.text());
    let first_byte_delay = directives
        .first_byte_delay
        .unwrap_or(shared.options.first_byte_delay);
    if let Some(outcome) = directives.outcome {
        return outcome::answer(&shared, outcome, first_byte_delay, Dialect::OpenAi).await;
    }

    let serial = shared.next_id();
    let answer = match tools::choose(&parsed, directives.tool, serial) {
        Some(call) => Answer::Tool(call),
        None => {
            let seed = parsed
                .messages
                .iter()
                .rev()
                .find(|m| m.is_user())
                .unwrap_or(last);
            let words = shared.options.reply_words;
            Answer::Text(reply::compose(
                "Mock reply to:",
                &seed.text(),
                words,
                parsed.output_cap(),
            ))
        }
    };
    let chat = ChatAnswer {
        id: format!("chatcmpl-mock{serial}"),
        created: unix_now(),
        model: model.to_owned(),
        answer,
        prompt_tokens: parsed.prompt_tokens(),
    };

    if !shared.pause(first_byte_delay).await {
        return errors::status(503, None);
    }
    let tokens = chat.prompt_tokens.saturating_add(chat.completion_tokens());
    let mut response = if parsed.stream == Some(true) {
        let usage = wants_usage(parsed.stream_options.as_ref()) && !directives.no_usage;
        let pacing = Pacing {
            chunk_delay: directives.chunk_delay.unwrap_or(shared.options.chunk_delay),
            hang_after_first: directives.hang_after_first_chunk,
        };
        sse::response(shared, ChatEvents::new(chat, usage), pacing)
    } else {
        chat_body::response(&chat)
    };
    ratelimit::openai(response.headers_mut(), key_requests, tokens);
    response
}
