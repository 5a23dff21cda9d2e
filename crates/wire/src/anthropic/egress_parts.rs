//! OpenAI content parts and tool calls → Anthropic content blocks.

use serde_json::{json, Value};

use super::json::{self, child, get, item, object, opt_object, opt_str, req_str, Object};
use super::media::{document_block_from_file, image_block_from_url};
use super::TranslateError;

/// A text block.
pub(crate) fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Copies an OpenAI part's `cache_control` (the convention OpenAI-compatible gateways use
/// to mark Anthropic prompt-cache breakpoints) onto the Anthropic block.
pub(crate) fn with_cache_control(mut block: Value, part: &Object) -> Value {
    if let (Some(cache_control), Some(block)) = (get(part, "cache_control"), block.as_object_mut())
    {
        block.insert("cache_control".to_owned(), cache_control.clone());
    }
    block
}

/// Text blocks of a message whose content may only be text (system, developer, tool).
pub(crate) fn text_blocks(content: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::String(text) => Ok(vec![text_block(text)]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let part_path = item(path, j);
                let part = object(part, &part_path)?;
                match req_str(part, "type", &part_path)? {
                    "text" => Ok(with_cache_control(
                        text_block(req_str(part, "text", &part_path)?),
                        part,
                    )),
                    other => Err(TranslateError::at(
                        child(&part_path, "type"),
                        format!("`{part_path}` is a `{other}` part; only `text` parts are allowed here."),
                    )),
                }
            })
            .collect(),
        other => Err(TranslateError::at(
            path,
            format!("`{path}` must be a string or an array of text parts, not {}.", json::kind(other)),
        )),
    }
}

/// A user content part (`text`, `image_url`, `file`) → an Anthropic block.
pub(crate) fn user_block(part: &Value, path: &str) -> Result<Value, TranslateError> {
    let part = object(part, path)?;
    let block = match req_str(part, "type", path)? {
        "text" => text_block(req_str(part, "text", path)?),
        "image_url" => {
            let image_path = child(path, "image_url");
            let url = match get(part, "image_url") {
                Some(Value::String(url)) => url.as_str(),
                Some(Value::Object(image)) => req_str(image, "url", &image_path)?,
                _ => return Err(json::missing(path, "image_url", "an object with a `url`")),
            };
            image_block_from_url(url, &child(&image_path, "url"))?
        }
        "file" => {
            let file = opt_object(part, "file", path)?
                .ok_or_else(|| json::missing(path, "file", "an object"))?;
            document_block_from_file(file, &child(path, "file"))?
        }
        "input_audio" => {
            return Err(TranslateError::at(
                path,
                format!("`{path}` is audio, which Anthropic models cannot take; remove the `input_audio` part or use another model."),
            ))
        }
        other => {
            return Err(TranslateError::at(
                child(path, "type"),
                format!("`{path}` is a `{other}` part; use `text`, `image_url` or `file` parts."),
            ))
        }
    };
    Ok(with_cache_control(block, part))
}

/// An assistant `tool_calls` entry → a `tool_use` block; `arguments` must encode a JSON object.
pub(crate) fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let call = object(call, path)?;
    if let Some(kind) = opt_str(call, "type", path)?.filter(|k| *k != "function") {
        return Err(TranslateError::at(
            child(path, "type"),
            format!("`{path}` is a `{kind}` tool call; only `function` tool calls can be sent to an Anthropic model."),
        ));
    }
    let id = req_str(call, "id", path)?;
    let function_path = child(path, "function");
    let function = opt_object(call, "function", path)?
        .ok_or_else(|| json::missing(path, "function", "an object with `name` and `arguments`"))?;
    let name = req_str(function, "name", &function_path)?;
    let arguments_path = child(&function_path, "arguments");
    let arguments = opt_str(function, "arguments", &function_path)?.unwrap_or("");
    let input = if arguments.trim().is_empty() {
        Value::Object(Object::new())
    } else {
        serde_json::from_str::<Value>(arguments).map_err(|e| {
            TranslateError::at(
                arguments_path.clone(),
                format!("`{arguments_path}` is not valid JSON ({e}); send the arguments the model produced, a JSON object encoded as a string."),
            )
        })?
    };
    if !input.is_object() {
        return Err(TranslateError::at(
            arguments_path.clone(),
            format!(
                "`{arguments_path}` must encode a JSON object, not {}.",
                json::kind(&input)
            ),
        ));
    }
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}
