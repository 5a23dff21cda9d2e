//! `POST /v1/messages`: Anthropic's Messages API.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::Response;

use crate::admit::{admit_as, Admitted};
use crate::chat_stream::Answer;
use crate::directives::Directives;
use crate::messages_body::{self, MessageAnswer};
use crate::messages_errors::{self, request_id};
use crate::messages_request::MessagesRequest;
use crate::messages_stream::MessageEvents;
use crate::outcome::{self, Dialect};
use crate::ratelimit;
use crate::reply;
use crate::shared::Shared;
use crate::sse::{self, Pacing};
use crate::tools;

/// What is wrong with a request the API would refuse, in the API's words, or the
/// model and `max_tokens` of a valid one.
fn validate<'r>(request: &'r MessagesRequest<'_>) -> Result<(&'r str, u32), String> {
    let Some(model) = request.model.as_deref() else {
        return Err("model: Field required".to_owned());
    };
    let Some(max_tokens) = request.max_tokens else {
        return Err("max_tokens: Field required".to_owned());
    };
    let Some(messages) = &request.messages else {
        return Err("messages: Field required".to_owned());
    };
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_owned());
    }
    for (index, message) in messages.iter().enumerate() {
        match message.role.as_deref() {
            Some("user" | "assistant") => {}
            Some("system") => {
                return Err(
                    "messages: Unexpected role \"system\". The Messages API accepts a \
                            top-level `system` parameter, not \"system\" as an input message \
                            role."
                        .to_owned(),
                )
            }
            Some(_) => {
                return Err(format!(
                    "messages.{index}.role: Input should be 'user' or 'assistant'"
                ))
            }
            None => return Err(format!("messages.{index}.role: Field required")),
        }
    }
    Ok((model, max_tokens))
}

/// Handles one Messages request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Admitted { body, key_requests } = match admit_as(&shared, request, Dialect::Anthropic).await
    {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let parsed: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => {
            let message = format!("Invalid JSON body: {error}");
            return messages_errors::invalid_request(&message, shared.next_id());
        }
    };
    let (model, max_tokens) = match validate(&parsed) {
        Ok(valid) => valid,
        Err(message) => return messages_errors::invalid_request(&message, shared.next_id()),
    };
    let mut directives = Directives::default();
    if let Some(last) = parsed.last_user() {
        directives.scan(&last.all_text());
    }
    let first_byte_delay = directives
        .first_byte_delay
        .unwrap_or(shared.options.first_byte_delay);
    if let Some(outcome) = directives.outcome {
        return outcome::answer(&shared, outcome, first_byte_delay, Dialect::Anthropic).await;
    }

    let serial = shared.next_id();
    let chosen = tools::choose_anthropic(
        parsed.tools.as_deref(),
        parsed.tool_choice.as_ref(),
        directives.tool,
        serial,
    );
    let answer = match chosen {
        Some(call) => Answer::Tool(call),
        None => Answer::Text(reply::compose(
            "Mock reply to:",
            &parsed.seed(),
            shared.options.reply_words,
            Some(max_tokens),
        )),
    };
    let message = MessageAnswer {
        id: format!("msg_mock{serial}"),
        model: model.to_owned(),
        answer,
        input_tokens: parsed.input_tokens(),
    };

    if !shared.pause(first_byte_delay).await {
        return messages_errors::status(503, None, shared.next_id());
    }
    let tokens = message.input_tokens.saturating_add(message.output_tokens());
    let mut response = if parsed.stream == Some(true) {
        let pacing = Pacing {
            chunk_delay: directives.chunk_delay.unwrap_or(shared.options.chunk_delay),
            hang_after_first: directives.hang_after_first_chunk,
        };
        sse::response(shared, MessageEvents::new(message), pacing)
    } else {
        messages_body::response(&message)
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id(serial)) {
        headers.insert("request-id", value);
    }
    ratelimit::anthropic(headers, key_requests, tokens);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<(), String> {
        let request: MessagesRequest = serde_json::from_str(json).expect("parses");
        validate(&request).map(|_| ())
    }

    #[test]
    fn validation_names_the_field() {
        let user = r#"[{"role":"user","content":"hi"}]"#;
        assert_eq!(
            check(&format!(r#"{{"max_tokens":5,"messages":{user}}}"#)),
            Err("model: Field required".to_owned())
        );
        assert_eq!(
            check(&format!(r#"{{"model":"m","messages":{user}}}"#)),
            Err("max_tokens: Field required".to_owned())
        );
        assert_eq!(
            check(r#"{"model":"m","max_tokens":5}"#),
            Err("messages: Field required".to_owned())
        );
        assert_eq!(
            check(r#"{"model":"m","max_tokens":5,"messages":[]}"#),
            Err("messages: at least one message is required".to_owned())
        );
        let system = check(
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"},{"role":"user","content":"hi"}]}"#,
        );
        assert!(system
            .expect_err("refused")
            .contains("Unexpected role \"system\""));
        assert_eq!(
            check(r#"{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}"#),
            Err("messages.0.role: Input should be 'user' or 'assistant'".to_owned())
        );
        assert_eq!(
            check(&format!(
                r#"{{"model":"m","max_tokens":5,"messages":{user}}}"#
            )),
            Ok(())
        );
    }
}
