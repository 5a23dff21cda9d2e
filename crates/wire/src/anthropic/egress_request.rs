//! OpenAI chat request → Anthropic Messages request.
//!
//! Carried over: `messages` (see `egress_messages`), `max_completion_tokens` /
//! `max_tokens`, `stop`, `temperature`, `top_p`, `stream`, `user` (or
//! `safety_identifier`), `tools`, `tool_choice` and `parallel_tool_calls`.
//! Everything else (`response_format`, `seed`, penalties, `logprobs`, `logit_bias`,
//! `stream_options`, `metadata`, `reasoning_effort`, …) has no Anthropic counterpart and is
//! dropped; `n` above 1 is refused.

use serde_json::{json, Value};

use super::egress_messages::convert_messages;
use super::json::{
    self, child, get, item, missing, object, opt_array, opt_bool, opt_number, opt_object, opt_str,
    opt_u64, parse_object, req_str, Object,
};
use super::TranslateError;

/// Anthropic's largest accepted `temperature`; OpenAI allows up to 2.
const MAX_TEMPERATURE: f64 = 1.0;

/// Egress: an OpenAI chat request body → an Anthropic Messages request body for
/// `upstream_model`.
///
/// `default_max_tokens` is used when the request has neither `max_tokens` nor
/// `max_completion_tokens` (Anthropic requires one). A `temperature` above 1 (valid for
/// OpenAI, not for Anthropic) is lowered to 1. Invalid tool-call arguments, `n` above 1 and
/// parts Anthropic cannot take (audio, uploaded file ids) are errors naming the parameter.
pub fn chat_request_to_messages(
    body: &[u8],
    upstream_model: &str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, TranslateError> {
    let request = parse_object(body, "request body")?;
    if let Some(n) = opt_u64(&request, "n", "")?.filter(|n| *n > 1) {
        return Err(TranslateError::at(
            "n",
            format!("`n` is {n}, but Anthropic models return one choice per request; omit `n` or send {n} requests."),
        ));
    }
    let messages = opt_array(&request, "messages", "")?
        .ok_or_else(|| missing("", "messages", "an array of messages"))?;
    let conversation = convert_messages(messages)?;

    let mut out = Object::new();
    out.insert("model".to_owned(), Value::from(upstream_model));
    out.insert(
        "max_tokens".to_owned(),
        Value::from(max_tokens(&request, default_max_tokens)?),
    );
    match conversation.system.as_slice() {
        [] => {}
        [single] if single.as_object().is_some_and(|b| b.len() == 2) => {
            out.insert(
                "system".to_owned(),
                single.get("text").cloned().unwrap_or_default(),
            );
        }
        blocks => {
            out.insert("system".to_owned(), Value::Array(blocks.to_vec()));
        }
    }
    out.insert("messages".to_owned(), Value::Array(conversation.turns));
    if let Some(stop) = stop_sequences(&request)? {
        out.insert("stop_sequences".to_owned(), stop);
    }
    if let Some(temperature) = opt_number(&request, "temperature", "")? {
        let lowered = temperature
            .as_f64()
            .filter(|t| *t > MAX_TEMPERATURE)
            .map(|_| json!(MAX_TEMPERATURE));
        out.insert(
            "temperature".to_owned(),
            lowered.unwrap_or_else(|| temperature.clone()),
        );
    }
    if let Some(top_p) = opt_number(&request, "top_p", "")? {
        out.insert("top_p".to_owned(), top_p.clone());
    }
    if let Some(stream) = opt_bool(&request, "stream", "")? {
        out.insert("stream".to_owned(), Value::Bool(stream));
    }
    let user = match opt_str(&request, "user", "")? {
        Some(user) => Some(user),
        None => opt_str(&request, "safety_identifier", "")?,
    };
    if let Some(user) = user {
        out.insert("metadata".to_owned(), json!({"user_id": user}));
    }
    insert_tools(&request, &mut out)?;
    Ok(json::to_vec(&Value::Object(out)))
}

fn max_tokens(request: &Object, default: u32) -> Result<u64, TranslateError> {
    let (key, value) = match opt_u64(request, "max_completion_tokens", "")? {
        Some(n) => ("max_completion_tokens", n),
        None => match opt_u64(request, "max_tokens", "")? {
            Some(n) => ("max_tokens", n),
            None => return Ok(u64::from(default)),
        },
    };
    if value == 0 {
        return Err(TranslateError::at(
            key,
            format!("`{key}` must be at least 1."),
        ));
    }
    Ok(value)
}

/// `stop` (a string or an array of strings) → `stop_sequences`; `None` when there are none.
fn stop_sequences(request: &Object) -> Result<Option<Value>, TranslateError> {
    let sequences = match get(request, "stop") {
        None => return Ok(None),
        Some(Value::String(s)) => vec![Value::from(s.as_str())],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| json::string(s, &item("stop", i)).map(Value::from))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(TranslateError::at(
                "stop",
                format!(
                    "`stop` must be a string or an array of strings, not {}.",
                    json::kind(other)
                ),
            ))
        }
    };
    Ok((!sequences.is_empty()).then_some(Value::Array(sequences)))
}

/// `tools`, `tool_choice` and `parallel_tool_calls` → Anthropic `tools` and `tool_choice`.
///
/// `allowed_tools` choices are honoured by sending only the allowed tools.
fn insert_tools(request: &Object, out: &mut Object) -> Result<(), TranslateError> {
    let mut tools = match opt_array(request, "tools", "")? {
        Some(tools) => tools
            .iter()
            .enumerate()
            .map(|(i, tool)| tool_definition(tool, &item("tools", i)))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut choice = match get(request, "tool_choice") {
        None => None,
        Some(choice) => Some(tool_choice(choice, &mut tools)?),
    };
    if tools.is_empty() {
        return Ok(());
    }
    if opt_bool(request, "parallel_tool_calls", "")? == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(choice) = choice
            .as_object_mut()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("none"))
        {
            choice.insert("disable_parallel_tool_use".to_owned(), Value::Bool(true));
        }
    }
    out.insert("tools".to_owned(), Value::Array(tools));
    if let Some(choice) = choice {
        out.insert("tool_choice".to_owned(), choice);
    }
    Ok(())
}

fn tool_definition(tool: &Value, path: &str) -> Result<Value, TranslateError> {
    let tool = object(tool, path)?;
    let kind = opt_str(tool, "type", path)?.unwrap_or("function");
    if kind != "function" {
        return Err(TranslateError::at(
            child(path, "type"),
            format!("`{path}` is a `{kind}` tool; only `function` tools can be sent to an Anthropic model."),
        ));
    }
    let function_path = child(path, "function");
    let function = opt_object(tool, "function", path)?
        .ok_or_else(|| missing(path, "function", "an object with a `name`"))?;
    let mut definition = Object::new();
    definition.insert(
        "name".to_owned(),
        Value::from(req_str(function, "name", &function_path)?),
    );
    if let Some(description) = opt_str(function, "description", &function_path)? {
        definition.insert("description".to_owned(), Value::from(description));
    }
    let schema = match get(function, "parameters") {
        Some(parameters) => {
            Value::Object(object(parameters, &child(&function_path, "parameters"))?.clone())
        }
        // OpenAI allows a function without parameters; Anthropic wants a schema.
        None => json!({"type": "object", "properties": {}}),
    };
    definition.insert("input_schema".to_owned(), schema);
    Ok(Value::Object(definition))
}

/// `tool_choice` → Anthropic's; an `allowed_tools` choice narrows `tools` to the allowed ones.
fn tool_choice(choice: &Value, tools: &mut Vec<Value>) -> Result<Value, TranslateError> {
    let path = "tool_choice";
    let unknown = |what: &str| {
        TranslateError::at(
            path,
            format!("`tool_choice` is `{what}`; use \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}."),
        )
    };
    let mode = |mode: &str| match mode {
        "auto" => Ok(json!({"type": "auto"})),
        "none" => Ok(json!({"type": "none"})),
        "required" => Ok(json!({"type": "any"})),
        other => Err(unknown(other)),
    };
    let choice = match choice {
        Value::String(m) => return mode(m),
        other => object(other, path)?,
    };
    match req_str(choice, "type", path)? {
        "function" => {
            let function = opt_object(choice, "function", path)?
                .ok_or_else(|| missing(path, "function", "an object with a `name`"))?;
            let name = req_str(function, "name", &child(path, "function"))?;
            Ok(json!({"type": "tool", "name": name}))
        }
        "allowed_tools" => {
            let allowed_path = child(path, "allowed_tools");
            let allowed = opt_object(choice, "allowed_tools", path)?.ok_or_else(|| {
                missing(path, "allowed_tools", "an object with `mode` and `tools`")
            })?;
            let names = opt_array(allowed, "tools", &allowed_path)?
                .ok_or_else(|| missing(&allowed_path, "tools", "an array of tools"))?
                .iter()
                .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                .collect::<Vec<_>>();
            tools.retain(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.contains(&n))
            });
            mode(opt_str(allowed, "mode", &allowed_path)?.unwrap_or("auto"))
        }
        other => Err(unknown(other)),
    }
}
