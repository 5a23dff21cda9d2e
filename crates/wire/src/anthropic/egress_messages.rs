//! OpenAI chat `messages` → Anthropic `system` + alternating user/assistant turns.
//!
//! - `system` and `developer` messages, wherever they stand, become the text blocks of
//!   Anthropic's top-level `system`, in order.
//! - `tool` messages become `tool_result` blocks of a user turn.
//! - Consecutive turns of the same role are merged into one (Anthropic wants the roles to
//!   alternate); inside a merged user turn the `tool_result` blocks come first, as
//!   Anthropic requires.
//! - An assistant message with neither content nor tool calls carries nothing and is left
//!   out (Anthropic refuses empty turns).
//! - `name` on a message has no Anthropic counterpart and is dropped.

use serde_json::{json, Value};

use super::egress_parts::{
    text_block, text_blocks, tool_use_block, user_block, with_cache_control,
};
use super::json::{self, array, child, get, item, object, opt_str, req_str, Object};
use super::TranslateError;

/// The translated conversation.
pub(crate) struct Conversation {
    /// Text blocks for Anthropic's `system` (empty when there is no system prompt).
    pub(crate) system: Vec<Value>,
    /// Anthropic `messages`.
    pub(crate) turns: Vec<Value>,
}

/// One Anthropic turn while it is being built.
struct Turn {
    role: &'static str,
    content: Content,
}

enum Content {
    /// A plain string, kept as one when the turn is not merged with another.
    Text(String),
    Blocks(Vec<Value>),
}

impl Content {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            Content::Text(text) => vec![text_block(&text)],
            Content::Blocks(blocks) => blocks,
        }
    }
}

impl Turn {
    fn into_value(self) -> Value {
        let content = match self.content {
            Content::Text(text) => Value::String(text),
            Content::Blocks(blocks) => Value::Array(blocks),
        };
        json!({"role": self.role, "content": content})
    }
}

fn is_tool_result(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("tool_result")
}

/// Translates the `messages` array of an OpenAI chat request.
pub(crate) fn convert_messages(messages: &[Value]) -> Result<Conversation, TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let path = item("messages", i);
        let message = object(message, &path)?;
        let turn = match req_str(message, "role", &path)? {
            "system" | "developer" => {
                system.extend(system_blocks(message, &path)?);
                continue;
            }
            "user" => user_turn(message, &path)?,
            "assistant" => match assistant_turn(message, &path)? {
                Some(turn) => turn,
                None => continue,
            },
            "tool" => tool_turn(message, &path)?,
            "function" => {
                return Err(TranslateError::at(
                    child(&path, "role"),
                    format!("`{path}` uses the deprecated `function` role; send tool results as `tool` messages with a `tool_call_id`."),
                ))
            }
            other => {
                return Err(TranslateError::at(
                    child(&path, "role"),
                    format!("`{path}.role` is `{other}`; use one of system, developer, user, assistant or tool."),
                ))
            }
        };
        push_turn(&mut turns, turn);
    }
    Ok(Conversation {
        system,
        turns: turns.into_iter().map(Turn::into_value).collect(),
    })
}

/// Appends `turn`, merging it into the last turn when both have the same role.
fn push_turn(turns: &mut Vec<Turn>, turn: Turn) {
    let Some(last) = turns.last_mut().filter(|last| last.role == turn.role) else {
        turns.push(turn);
        return;
    };
    let mut blocks =
        std::mem::replace(&mut last.content, Content::Blocks(Vec::new())).into_blocks();
    for block in turn.content.into_blocks() {
        if is_tool_result(&block) {
            let at = blocks.iter().take_while(|b| is_tool_result(b)).count();
            blocks.insert(at, block);
        } else {
            blocks.push(block);
        }
    }
    last.content = Content::Blocks(blocks);
}

fn required_content<'a>(message: &'a Object, path: &str) -> Result<&'a Value, TranslateError> {
    get(message, "content")
        .ok_or_else(|| json::missing(path, "content", "a string or an array of content parts"))
}

fn system_blocks(message: &Object, path: &str) -> Result<Vec<Value>, TranslateError> {
    let content_path = child(path, "content");
    let blocks = text_blocks(required_content(message, path)?, &content_path)?;
    // Anthropic refuses empty text blocks; an empty system message says nothing.
    Ok(blocks
        .into_iter()
        .filter(|b| {
            b.get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
        })
        .collect())
}

fn user_turn(message: &Object, path: &str) -> Result<Turn, TranslateError> {
    let content_path = child(path, "content");
    let content = match required_content(message, path)? {
        Value::String(text) => Content::Text(text.clone()),
        Value::Array(parts) => Content::Blocks(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| user_block(part, &item(&content_path, j)))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(TranslateError::at(
                content_path.clone(),
                format!(
                    "`{content_path}` must be a string or an array of content parts, not {}.",
                    json::kind(other)
                ),
            ))
        }
    };
    Ok(Turn {
        role: "user",
        content,
    })
}

/// `None` when the message carries nothing (no text, no tool calls).
fn assistant_turn(message: &Object, path: &str) -> Result<Option<Turn>, TranslateError> {
    let content_path = child(path, "content");
    let mut blocks = Vec::new();
    match get(message, "content") {
        None => {}
        Some(Value::String(text)) => blocks.push(text_block(text)),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let part_path = item(&content_path, j);
                let part = object(part, &part_path)?;
                let text = match req_str(part, "type", &part_path)? {
                    "text" => req_str(part, "text", &part_path)?,
                    "refusal" => req_str(part, "refusal", &part_path)?,
                    other => {
                        return Err(TranslateError::at(
                            child(&part_path, "type"),
                            format!("`{part_path}` is a `{other}` part; assistant messages take `text` and `refusal` parts."),
                        ))
                    }
                };
                blocks.push(with_cache_control(text_block(text), part));
            }
        }
        Some(other) => {
            return Err(TranslateError::at(
                content_path.clone(),
                format!(
                    "`{content_path}` must be a string, an array of text parts or null, not {}.",
                    json::kind(other)
                ),
            ))
        }
    }
    if let Some(refusal) = opt_str(message, "refusal", path)? {
        blocks.push(text_block(refusal));
    }
    // Anthropic refuses empty text blocks.
    blocks.retain(|b| b.get("text").and_then(Value::as_str) != Some(""));
    if get(message, "function_call").is_some() {
        return Err(TranslateError::at(
            child(path, "function_call"),
            format!("`{path}.function_call` is deprecated and cannot be translated; send `tool_calls` instead."),
        ));
    }
    let mut tool_uses = Vec::new();
    if let Some(calls) = get(message, "tool_calls") {
        let calls_path = child(path, "tool_calls");
        for (j, call) in array(calls, &calls_path)?.iter().enumerate() {
            tool_uses.push(tool_use_block(call, &item(&calls_path, j))?);
        }
    }
    let content = match (blocks.as_slice(), tool_uses.is_empty()) {
        ([], true) => return Ok(None),
        // A single plain text block stays a plain string.
        ([single], true) if single.as_object().is_some_and(|b| b.len() == 2) => {
            let text = single
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Content::Text(text.to_owned())
        }
        _ => {
            blocks.extend(tool_uses);
            Content::Blocks(blocks)
        }
    };
    Ok(Some(Turn {
        role: "assistant",
        content,
    }))
}

fn tool_turn(message: &Object, path: &str) -> Result<Turn, TranslateError> {
    let tool_use_id = req_str(message, "tool_call_id", path)?;
    let content_path = child(path, "content");
    let content = match required_content(message, path)? {
        Value::String(text) => Value::String(text.clone()),
        other => Value::Array(text_blocks(other, &content_path)?),
    };
    Ok(Turn {
        role: "user",
        content: Content::Blocks(vec![json!({
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": content,
        })]),
    })
}
