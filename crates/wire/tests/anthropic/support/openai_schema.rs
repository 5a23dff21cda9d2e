//! The fields OpenAI's OpenAPI schemas require, with their types, for every body the
//! egress produces (`CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse`,
//! `ErrorResponse`). The gateway's e2e suite validates against the full schema; this
//! catches a missing or mistyped field at the unit level.

use serde_json::Value;

const FINISH_REASONS: [&str; 5] = [
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

fn field<'a>(value: &'a Value, key: &str, what: &str) -> &'a Value {
    value
        .get(key)
        .unwrap_or_else(|| panic!("{what}: required `{key}` is missing in {value}"))
}

fn string<'a>(value: &'a Value, key: &str, what: &str) -> &'a str {
    field(value, key, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: `{key}` must be a string in {value}"))
}

fn integer(value: &Value, key: &str, what: &str) -> u64 {
    field(value, key, what)
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: `{key}` must be a non-negative integer in {value}"))
}

fn string_or_null(value: &Value, key: &str, what: &str) {
    let v = field(value, key, what);
    assert!(
        v.is_string() || v.is_null(),
        "{what}: `{key}` must be a string or null in {value}"
    );
}

fn optional_string_or_null(value: &Value, key: &str, what: &str) {
    if value.get(key).is_some() {
        string_or_null(value, key, what);
    }
}

fn array<'a>(value: &'a Value, key: &str, what: &str) -> &'a Vec<Value> {
    field(value, key, what)
        .as_array()
        .unwrap_or_else(|| panic!("{what}: `{key}` must be an array in {value}"))
}

fn head(value: &Value, object: &str, what: &str) {
    string(value, "id", what);
    assert_eq!(string(value, "object", what), object, "{what}: object");
    integer(value, "created", what);
    string(value, "model", what);
}

/// `CompletionUsage`: three integer counts (and consistent ones).
pub fn usage(value: &Value, what: &str) {
    let prompt = integer(value, "prompt_tokens", what);
    let completion = integer(value, "completion_tokens", what);
    assert_eq!(
        integer(value, "total_tokens", what),
        prompt + completion,
        "{what}: total_tokens"
    );
    if let Some(details) = value.get("prompt_tokens_details") {
        integer(details, "cached_tokens", what);
    }
}

/// `CreateChatCompletionResponse`.
pub fn chat_completion(value: &Value) {
    let what = "chat.completion";
    head(value, "chat.completion", what);
    for choice in array(value, "choices", what) {
        integer(choice, "index", what);
        let reason = string(choice, "finish_reason", what);
        assert!(
            FINISH_REASONS.contains(&reason),
            "{what}: finish_reason {reason}"
        );
        let logprobs = field(choice, "logprobs", what);
        assert!(
            logprobs.is_null() || logprobs.is_object(),
            "{what}: logprobs"
        );
        let message = field(choice, "message", what);
        assert_eq!(string(message, "role", what), "assistant");
        string_or_null(message, "content", what);
        string_or_null(message, "refusal", what);
        if let Some(calls) = message.get("tool_calls") {
            let calls = calls.as_array().expect("tool_calls is an array");
            assert!(!calls.is_empty(), "{what}: tool_calls present but empty");
            for call in calls {
                string(call, "id", what);
                assert_eq!(string(call, "type", what), "function");
                let function = field(call, "function", what);
                string(function, "name", what);
                string(function, "arguments", what);
            }
        }
    }
    if let Some(u) = value.get("usage") {
        usage(u, what);
    }
}

/// `CreateChatCompletionStreamResponse`.
pub fn chunk(value: &Value) {
    let what = "chat.completion.chunk";
    head(value, "chat.completion.chunk", what);
    for choice in array(value, "choices", what) {
        integer(choice, "index", what);
        let reason = field(choice, "finish_reason", what);
        assert!(
            reason.is_null() || reason.as_str().is_some_and(|r| FINISH_REASONS.contains(&r)),
            "{what}: finish_reason {reason}"
        );
        let delta = field(choice, "delta", what);
        assert!(delta.is_object(), "{what}: delta must be an object");
        if delta.get("role").is_some() {
            assert_eq!(string(delta, "role", what), "assistant");
        }
        optional_string_or_null(delta, "content", what);
        optional_string_or_null(delta, "refusal", what);
        if let Some(calls) = delta.get("tool_calls") {
            for call in calls.as_array().expect("tool_calls is an array") {
                integer(call, "index", what);
                if call.get("id").is_some() {
                    string(call, "id", what);
                }
                if call.get("type").is_some() {
                    assert_eq!(string(call, "type", what), "function");
                }
                if let Some(function) = call.get("function") {
                    if function.get("name").is_some() {
                        string(function, "name", what);
                    }
                    if function.get("arguments").is_some() {
                        string(function, "arguments", what);
                    }
                }
            }
        }
    }
    match value.get("usage") {
        None | Some(Value::Null) => {}
        Some(u) => usage(u, what),
    }
}

/// `ErrorResponse`: `{"error": {message, type, param, code}}`, all four present.
pub fn error_envelope(value: &Value) {
    let what = "error envelope";
    let error = field(value, "error", what);
    string(error, "message", what);
    string(error, "type", what);
    string_or_null(error, "param", what);
    string_or_null(error, "code", what);
}
