//! Anthropic Messages request → OpenAI chat request (the `/v1/messages` ingress).
//!
//! Carried over: `model`, `max_tokens` (as `max_completion_tokens`), `system` and
//! `messages` (see `ingress_messages`), `stop_sequences`, `temperature`, `top_p`,
//! `stream` (with `stream_options.include_usage`), `metadata.user_id`, `tools` and
//! `tool_choice`. Dropped: `top_k`, `thinking`, `service_tier` and fields added later.

use serde_json::{json, Value};

use super::ingress_messages::{convert_messages, system_message};
use super::json::{
    self, child, get, item, missing, object, opt_array, opt_bool, opt_number, opt_object, opt_str,
    opt_u64, parse_object, req_str, Object,
};
use super::TranslateError;

/// The fields of an Anthropic Messages request that routing and metering need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesPeek {
    /// The model the client asked for.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The client's output cap (required by Anthropic, so always present after a
    /// successful translation).
    pub max_tokens: Option<u64>,
}

/// Ingress: an Anthropic Messages request body → (an OpenAI chat request body, its peek).
///
/// Missing `model`, `max_tokens` or `messages` is an error naming the parameter. The
/// OpenAI body keeps the client's `model`; `max_tokens` becomes `max_completion_tokens`.
pub fn messages_request_to_chat(body: &[u8]) -> Result<(Vec<u8>, MessagesPeek), TranslateError> {
    let request = parse_object(body, "request body")?;
    let model = req_str(&request, "model", "")?;
    let max_tokens = opt_u64(&request, "max_tokens", "")?
        .ok_or_else(|| missing("", "max_tokens", "a positive integer"))?;
    let messages = opt_array(&request, "messages", "")?
        .ok_or_else(|| missing("", "messages", "an array of messages"))?;
    let stream = opt_bool(&request, "stream", "")?.unwrap_or(false);

    let mut chat_messages = Vec::new();
    if let Some(system) = get(&request, "system")
        .map(system_message)
        .transpose()?
        .flatten()
    {
        chat_messages.push(system);
    }
    convert_messages(messages, &mut chat_messages)?;

    let mut out = Object::new();
    out.insert("model".to_owned(), Value::from(model));
    out.insert("messages".to_owned(), Value::Array(chat_messages));
    out.insert("max_completion_tokens".to_owned(), Value::from(max_tokens));
    if let Some(stop) = stop(&request)? {
        out.insert("stop".to_owned(), stop);
    }
    for key in ["temperature", "top_p"] {
        if let Some(value) = opt_number(&request, key, "")? {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if stream {
        out.insert("stream".to_owned(), Value::Bool(true));
        out.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    if let Some(metadata) = opt_object(&request, "metadata", "")? {
        if let Some(user) = opt_str(metadata, "user_id", "metadata")? {
            out.insert("user".to_owned(), Value::from(user));
        }
    }
    insert_tools(&request, &mut out)?;
    let peek = MessagesPeek {
        model: model.to_owned(),
        stream,
        max_tokens: Some(max_tokens),
    };
    Ok((json::to_vec(&Value::Object(out)), peek))
}

fn stop(request: &Object) -> Result<Option<Value>, TranslateError> {
    let Some(sequences) = opt_array(request, "stop_sequences", "")? else {
        return Ok(None);
    };
    let sequences = sequences
        .iter()
        .enumerate()
        .map(|(i, s)| json::string(s, &item("stop_sequences", i)).map(Value::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!sequences.is_empty()).then_some(Value::Array(sequences)))
}

fn insert_tools(request: &Object, out: &mut Object) -> Result<(), TranslateError> {
    let tools = match opt_array(request, "tools", "")? {
        Some(tools) if !tools.is_empty() => tools,
        _ => return Ok(()),
    };
    let tools = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| function_tool(tool, &item("tools", i)))
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("tools".to_owned(), Value::Array(tools));
    let Some(choice) = opt_object(request, "tool_choice", "")? else {
        return Ok(());
    };
    let path = "tool_choice";
    let openai_choice = match req_str(choice, "type", path)? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => json!({"type": "function", "function": {"name": req_str(choice, "name", path)?}}),
        other => {
            return Err(TranslateError::at(
                child(path, "type"),
                format!("`tool_choice.type` is `{other}`; use auto, any, tool or none."),
            ))
        }
    };
    out.insert("tool_choice".to_owned(), openai_choice);
    if opt_bool(choice, "disable_parallel_tool_use", path)? == Some(true) {
        out.insert("parallel_tool_calls".to_owned(), Value::Bool(false));
    }
    Ok(())
}

/// An Anthropic client tool → an OpenAI function tool. Server tools (`web_search_…`,
/// `bash_…`, …) run inside Anthropic's API and cannot be offered to another model.
fn function_tool(tool: &Value, path: &str) -> Result<Value, TranslateError> {
    let tool = object(tool, path)?;
    if let Some(kind) = opt_str(tool, "type", path)?.filter(|k| *k != "custom") {
        return Err(TranslateError::at(
            child(path, "type"),
            format!("`{path}` is Anthropic's `{kind}` server tool, which only Anthropic runs; remove it or define it as a client tool with `input_schema`."),
        ));
    }
    let mut function = Object::new();
    function.insert("name".to_owned(), Value::from(req_str(tool, "name", path)?));
    if let Some(description) = opt_str(tool, "description", path)? {
        function.insert("description".to_owned(), Value::from(description));
    }
    let schema = get(tool, "input_schema")
        .ok_or_else(|| missing(path, "input_schema", "a JSON schema object"))?;
    function.insert(
        "parameters".to_owned(),
        Value::Object(object(schema, &child(path, "input_schema"))?.clone()),
    );
    Ok(json!({"type": "function", "function": function}))
}
