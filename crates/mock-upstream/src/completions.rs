//! `POST /v1/completions` (legacy text completions), plain and streamed.
//!
//! Stream chunks carry `finish_reason: null` until the last one, as OpenAI sends
//! them, although `CreateCompletionResponse` declares the field non-nullable.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::admit::{admit, Admitted};
use crate::chat_body::{json_response, Usage};
use crate::directives::Directives;
use crate::errors;
use crate::outcome::{self, Dialect};
use crate::ratelimit;
use crate::reply::{self, Reply};
use crate::request::{wants_usage, CompletionRequest, Input};
use crate::shared::{unix_now, Shared};
use crate::sse::{self, Pacing};

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    text: &'a str,
    index: u32,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// One completion answer, the source of both the JSON body and the stream events.
struct TextAnswer {
    id: String,
    created: u64,
    model: String,
    reply: Reply,
    usage: Usage,
}

impl TextAnswer {
    fn render<'b>(&'b self, choices: &'b [Choice<'b>], usage: Option<Usage>) -> Completion<'b> {
        Completion {
            id: &self.id,
            object: "text_completion",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        }
    }
}

/// Handles one completion request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Admitted { body, key_requests } = match admit(&shared, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let parsed: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => return errors::invalid_request(&format!("Invalid JSON body: {error}"), None),
    };
    let Some(model) = parsed.model.as_deref() else {
        return errors::invalid_request("You must provide a model parameter.", Some("model"));
    };
    let items = parsed
        .prompt
        .as_ref()
        .map(|p| p.items())
        .unwrap_or_default();
    let mut directives = Directives::default();
    items.iter().for_each(|item| directives.scan(item.text()));
    let first_byte_delay = directives
        .first_byte_delay
        .unwrap_or(shared.options.first_byte_delay);
    if let Some(outcome) = directives.outcome {
        return outcome::answer(&shared, outcome, first_byte_delay, Dialect::OpenAi).await;
    }

    let seed = items.first().map_or("", Input::text);
    let words = shared.options.reply_words;
    let reply = reply::compose("Mock completion of:", seed, words, parsed.max_tokens);
    let prompt_tokens = items.iter().map(Input::tokens).fold(0, u32::saturating_add);
    let answer = TextAnswer {
        id: format!("cmpl-mock{}", shared.next_id()),
        created: unix_now(),
        model: model.to_owned(),
        usage: Usage::new(prompt_tokens, reply.tokens),
        reply,
    };

    if !shared.pause(first_byte_delay).await {
        return errors::status(503, None);
    }
    let tokens = answer.usage.total_tokens;
    let mut response = if parsed.stream == Some(true) {
        let usage = wants_usage(parsed.stream_options.as_ref()) && !directives.no_usage;
        let pacing = Pacing {
            chunk_delay: directives.chunk_delay.unwrap_or(shared.options.chunk_delay),
            hang_after_first: directives.hang_after_first_chunk,
        };
        sse::response(shared, CompletionEvents::new(answer, usage), pacing)
    } else {
        let choices = [Choice {
            text: &answer.reply.text,
            index: 0,
            logprobs: (),
            finish_reason: Some(answer.reply.finish_reason()),
        }];
        json_response(&answer.render(&choices, Some(answer.usage)))
    };
    ratelimit::openai(response.headers_mut(), key_requests, tokens);
    response
}

/// The events of one completion stream: a chunk per word, a closing chunk with the
/// finish reason, the usage chunk when asked for, then `[DONE]`.
struct CompletionEvents {
    answer: TextAnswer,
    include_usage: bool,
    /// Byte offset of the next piece; `None` once the closing chunk went out.
    offset: Option<usize>,
    step: u8,
}

impl CompletionEvents {
    fn new(answer: TextAnswer, include_usage: bool) -> CompletionEvents {
        CompletionEvents {
            answer,
            include_usage,
            offset: Some(0),
            step: 0,
        }
    }

    fn chunk(&self, text: &str, finish_reason: Option<&'static str>) -> Bytes {
        let choices = [Choice {
            text,
            index: 0,
            logprobs: (),
            finish_reason,
        }];
        // No `usage: null` here: `CreateCompletionResponse` does not allow it.
        sse::event(&self.answer.render(&choices, None))
    }
}

impl Iterator for CompletionEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if let Some(offset) = self.offset {
            let rest = self.answer.reply.text.get(offset..).unwrap_or("");
            if let Some(piece) = reply::pieces(rest).next() {
                self.offset = Some(offset + piece.len());
                return Some(self.chunk(piece, None));
            }
            self.offset = None;
            return Some(self.chunk("", Some(self.answer.reply.finish_reason())));
        }
        self.step += 1;
        match self.step {
            1 if self.include_usage => {
                let usage = Some(self.answer.usage);
                Some(sse::event(&self.answer.render(&[], usage)))
            }
            1 | 2 => {
                self.step = 2;
                Some(Bytes::from_static(sse::DONE))
            }
            _ => None,
        }
    }
}
