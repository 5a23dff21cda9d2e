//! OpenAI `chat.completion` → Anthropic Messages response (the `/v1/messages` ingress).

use serde_json::{json, Value};

use super::json::{
    self, child, get, item, object, opt_array, opt_object, opt_str, parse_object, req_str, Object,
};
use super::reasons::{stop_reason, TokenCounts};
use super::TranslateError;

/// Ingress: an OpenAI `chat.completion` body → an Anthropic Messages response body whose
/// `model` is `model`.
///
/// The id is `msg_` + the OpenAI id; `content` is a text block (the message text, or its
/// refusal) followed by a `tool_use` block per tool call, `input` parsed from the
/// arguments; `stop_reason` is mapped back (`stop` → `end_turn`, `length` → `max_tokens`,
/// `tool_calls` → `tool_use`, `content_filter` → `refusal`); `usage` gives
/// `input_tokens` without the cached prompt tokens, which go in `cache_read_input_tokens`.
pub fn chat_response_to_messages(body: &[u8], model: &str) -> Result<Vec<u8>, TranslateError> {
    let response = parse_object(body, "upstream response")?;
    let choices = opt_array(&response, "choices", "")?
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some((index, choice)) = choices
        .iter()
        .enumerate()
        .find(|(_, c)| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
    else {
        return Err(TranslateError::new(
            "The upstream response has no choices, so there is no message to return.",
        ));
    };
    let path = item("choices", index);
    let choice = object(choice, &path)?;
    let message_path = child(&path, "message");
    let message = opt_object(choice, "message", &path)?
        .ok_or_else(|| json::missing(&path, "message", "an object"))?;

    let mut content = Vec::new();
    let text = message_text(message, &message_path)?;
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    let refusal = opt_str(message, "refusal", &message_path)?;
    if let Some(refusal) = refusal {
        content.push(json!({"type": "text", "text": refusal}));
    }
    let calls_path = child(&message_path, "tool_calls");
    for (j, call) in opt_array(message, "tool_calls", &message_path)?
        .into_iter()
        .flatten()
        .enumerate()
    {
        content.push(tool_use_block(call, &item(&calls_path, j))?);
    }
    let finish = opt_str(choice, "finish_reason", &path)?;
    let reason = if refusal.is_some() && finish != Some("tool_calls") {
        "refusal"
    } else {
        stop_reason(finish)
    };
    let counts = opt_object(&response, "usage", "")?
        .map(TokenCounts::from_openai)
        .unwrap_or_default();
    let id = opt_str(&response, "id", "")?.unwrap_or_default();
    Ok(json::to_vec(&json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": counts.anthropic_json(),
    })))
}

/// `message.content`: a string, text parts joined, or nothing.
fn message_text(message: &Object, path: &str) -> Result<String, TranslateError> {
    let content_path = child(path, "content");
    match get(message, "content") {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()),
        Some(other) => Err(TranslateError::at(
            content_path.clone(),
            format!(
                "`{content_path}` in the upstream response must be a string, not {}.",
                json::kind(other)
            ),
        )),
    }
}

fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let call = object(call, path)?;
    let function_path = child(path, "function");
    let function = opt_object(call, "function", path)?
        .ok_or_else(|| json::missing(path, "function", "an object"))?;
    let arguments_path = child(&function_path, "arguments");
    let arguments = opt_str(function, "arguments", &function_path)?.unwrap_or("");
    let input = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str::<Value>(arguments).map_err(|e| {
            TranslateError::at(
                arguments_path.clone(),
                format!("The upstream model produced tool arguments at `{arguments_path}` that are not valid JSON ({e}), so they cannot be returned as a tool_use `input`."),
            )
        })?
    };
    if !input.is_object() {
        return Err(TranslateError::at(
            arguments_path.clone(),
            format!("The upstream model produced tool arguments at `{arguments_path}` that are {}, not a JSON object.", json::kind(&input)),
        ));
    }
    Ok(json!({
        "type": "tool_use",
        "id": req_str(call, "id", path)?,
        "name": req_str(function, "name", &function_path)?,
        "input": input,
    }))
}
