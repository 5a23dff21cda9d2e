//! Anthropic Messages response → OpenAI `chat.completion`.
//!
//! Text blocks are joined into `message.content`; `tool_use` blocks become
//! `message.tool_calls` with their `input` passed on byte for byte as `arguments`.
//! Blocks OpenAI has no place for (`thinking`, `redacted_thinking`, server tool blocks)
//! are dropped.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::json::{self, Object};
use super::reasons::{finish_reason, TokenCounts};
use super::TranslateError;
use crate::openai::Usage;

/// The parts of an Anthropic message the translation reads.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<Block<'a>>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Object>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

/// Egress: an Anthropic Messages response body → an OpenAI `chat.completion` body whose
/// `model` is `model` and `created` is `created` (unix seconds), plus its usage.
///
/// The id is `chatcmpl-` + the Anthropic id; `content` is the text blocks joined, or null
/// when the message is only tool calls; `prompt_tokens` counts cached prompt tokens too
/// (`prompt_tokens_details.cached_tokens` tells the cache reads apart).
pub fn messages_response_to_chat(
    body: &[u8],
    model: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let message: Message<'_> = serde_json::from_slice(body).map_err(|e| {
        TranslateError::new(format!(
            "The upstream response is not an Anthropic message: {e}."
        ))
    })?;
    if message.kind.as_deref() != Some("message") {
        return Err(TranslateError::new(format!(
            "The upstream response is not an Anthropic message (its `type` is {}).",
            message
                .kind
                .map_or_else(|| "missing".to_owned(), |k| format!("`{k}`"))
        )));
    }
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in message.content.iter().flatten() {
        match block.kind.as_ref() {
            "text" => text
                .get_or_insert_with(String::new)
                .push_str(block.text.as_deref().unwrap_or_default()),
            "tool_use" => tool_calls.push(json!({
                "id": block.id.as_deref().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.name.as_deref().unwrap_or_default(),
                    "arguments": block.input.map_or("{}", |raw| raw.get()),
                },
            })),
            _ => {}
        }
    }
    let content = match text {
        Some(text) => Value::String(text),
        None if tool_calls.is_empty() => Value::String(String::new()),
        None => Value::Null,
    };
    let mut reply = json!({"role": "assistant", "content": content, "refusal": null});
    if let (false, Some(reply)) = (tool_calls.is_empty(), reply.as_object_mut()) {
        reply.insert("tool_calls".to_owned(), Value::Array(tool_calls));
    }
    let counts = message
        .usage
        .as_ref()
        .map(TokenCounts::from_anthropic)
        .unwrap_or_default();
    let completion = json!({
        "id": format!("chatcmpl-{}", message.id.as_deref().unwrap_or_default()),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": reply,
            "logprobs": null,
            "finish_reason": finish_reason(message.stop_reason.as_deref()),
        }],
        "usage": counts.openai_json(),
    });
    Ok((json::to_vec(&completion), counts.to_usage()))
}
