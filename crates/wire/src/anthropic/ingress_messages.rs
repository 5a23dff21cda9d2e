//! Anthropic `system` + `messages` → OpenAI chat `messages`.
//!
//! - `system` (a string or text blocks, joined by a blank line) → one `system` message.
//! - A user turn's `tool_result` blocks → `tool` messages, placed before the rest of the
//!   turn (a user message with its text, image and document parts). `is_error` results are
//!   prefixed with `Error: `; images inside a result go into that user message.
//! - An assistant turn's text → `content`, its `tool_use` blocks → `tool_calls`; thinking
//!   and server-tool blocks, which other providers cannot take back, are dropped.
//! - `cache_control` marks are dropped.

use serde_json::{json, Value};

use super::json::{self, child, get, item, object, opt_object, req_str, Object};
use super::media::{image_part_from_source, part_from_document};
use super::TranslateError;

/// Anthropic `system` → an OpenAI `system` message; `None` when it is empty.
pub(crate) fn system_message(system: &Value) -> Result<Option<Value>, TranslateError> {
    let text = match system {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let path = item("system", i);
                let block = object(block, &path)?;
                match req_str(block, "type", &path)? {
                    "text" => req_str(block, "text", &path),
                    other => Err(TranslateError::at(
                        child(&path, "type"),
                        format!("`{path}` is a `{other}` block; `system` takes text blocks only."),
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("\n\n"),
        other => {
            return Err(TranslateError::at(
                "system",
                format!(
                    "`system` must be a string or an array of text blocks, not {}.",
                    json::kind(other)
                ),
            ))
        }
    };
    Ok((!text.is_empty()).then(|| json!({"role": "system", "content": text})))
}

/// Translates Anthropic `messages`, appending OpenAI messages to `out`.
pub(crate) fn convert_messages(
    messages: &[Value],
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    for (i, message) in messages.iter().enumerate() {
        let path = item("messages", i);
        let message = object(message, &path)?;
        let role = req_str(message, "role", &path)?;
        let content_path = child(&path, "content");
        let content = get(message, "content").ok_or_else(|| {
            json::missing(&path, "content", "a string or an array of content blocks")
        })?;
        let blocks = match content {
            Value::String(text) => {
                out.push(json!({"role": role_name(role, &path)?, "content": text}));
                continue;
            }
            Value::Array(blocks) => blocks,
            other => {
                return Err(TranslateError::at(
                    content_path.clone(),
                    format!(
                        "`{content_path}` must be a string or an array of content blocks, not {}.",
                        json::kind(other)
                    ),
                ))
            }
        };
        match role_name(role, &path)? {
            "user" => user_turn(blocks, &content_path, out)?,
            _ => out.push(assistant_turn(blocks, &content_path)?),
        }
    }
    Ok(())
}

fn role_name(role: &str, path: &str) -> Result<&'static str, TranslateError> {
    match role {
        "user" => Ok("user"),
        "assistant" => Ok("assistant"),
        other => Err(TranslateError::at(
            child(path, "role"),
            format!("`{path}.role` is `{other}`; use `user` or `assistant` (the system prompt goes in the top-level `system`)."),
        )),
    }
}

fn block_type<'a>(block: &'a Object, path: &str) -> Result<&'a str, TranslateError> {
    req_str(block, "type", path)
}

fn user_turn(blocks: &[Value], path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let block_path = item(path, j);
        let block = object(block, &block_path)?;
        match block_type(block, &block_path)? {
            "tool_result" => out.push(tool_message(block, &block_path, &mut parts)?),
            _ => parts.push(user_part(block, &block_path)?),
        }
    }
    match parts.as_slice() {
        [] if !blocks.is_empty() => {}
        [single] if single.get("type").and_then(Value::as_str) == Some("text") => {
            out.push(
                json!({"role": "user", "content": single.get("text").cloned().unwrap_or_default()}),
            );
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

fn user_part(block: &Object, path: &str) -> Result<Value, TranslateError> {
    match block_type(block, path)? {
        "text" => Ok(json!({"type": "text", "text": req_str(block, "text", path)?})),
        "image" => {
            let source = opt_object(block, "source", path)?
                .ok_or_else(|| json::missing(path, "source", "an object"))?;
            image_part_from_source(source, &child(path, "source"))
        }
        "document" => part_from_document(block, path),
        other => Err(TranslateError::at(
            child(path, "type"),
            format!("`{path}` is a `{other}` block, which cannot be sent to this model; use text, image, document or tool_result blocks."),
        )),
    }
}

/// A `tool_result` block → a `tool` message; images in it are added to `parts`.
fn tool_message(
    block: &Object,
    path: &str,
    parts: &mut Vec<Value>,
) -> Result<Value, TranslateError> {
    let tool_call_id = req_str(block, "tool_use_id", path)?;
    let content_path = child(path, "content");
    let mut texts = Vec::new();
    match get(block, "content") {
        None => {}
        Some(Value::String(text)) => texts.push(text.as_str()),
        Some(Value::Array(items)) => {
            for (k, inner) in items.iter().enumerate() {
                let inner_path = item(&content_path, k);
                let inner = object(inner, &inner_path)?;
                match block_type(inner, &inner_path)? {
                    "text" => texts.push(req_str(inner, "text", &inner_path)?),
                    _ => parts.push(user_part(inner, &inner_path)?),
                }
            }
        }
        Some(other) => {
            return Err(TranslateError::at(
                content_path.clone(),
                format!(
                    "`{content_path}` must be a string or an array of blocks, not {}.",
                    json::kind(other)
                ),
            ))
        }
    }
    let mut content = texts.join("\n");
    if json::opt_bool(block, "is_error", path)? == Some(true) {
        content = format!("Error: {content}");
    }
    Ok(json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}))
}

fn assistant_turn(blocks: &[Value], path: &str) -> Result<Value, TranslateError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let block_path = item(path, j);
        let block = object(block, &block_path)?;
        match block_type(block, &block_path)? {
            "text" => text.push_str(req_str(block, "text", &block_path)?),
            "tool_use" => {
                let input = get(block, "input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": req_str(block, "id", &block_path)?,
                    "type": "function",
                    "function": {
                        "name": req_str(block, "name", &block_path)?,
                        "arguments": String::from_utf8_lossy(&json::to_vec(&input)),
                    },
                }));
            }
            // thinking, redacted_thinking, server tool blocks: nothing another model can use.
            _ => {}
        }
    }
    let mut message = Object::new();
    message.insert("role".to_owned(), Value::from("assistant"));
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".to_owned(), content);
    if !tool_calls.is_empty() {
        message.insert("tool_calls".to_owned(), Value::Array(tool_calls));
    }
    Ok(Value::Object(message))
}
