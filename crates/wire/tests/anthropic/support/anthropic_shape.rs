//! The shapes Anthropic's SDKs parse, for every body and event the ingress produces: a
//! `Message`, and the stream events the official Python SDK accumulates.

use serde_json::Value;

fn string<'a>(value: &'a Value, key: &str, what: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: `{key}` must be a string in {value}"))
}

fn integer(value: &Value, key: &str, what: &str) -> u64 {
    value
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{what}: `{key}` must be an integer in {value}"))
}

fn content_block(block: &Value, what: &str) {
    match string(block, "type", what) {
        "text" => {
            string(block, "text", what);
        }
        "tool_use" => {
            string(block, "id", what);
            string(block, "name", what);
            assert!(
                block.get("input").is_some_and(Value::is_object),
                "{what}: tool_use input must be an object"
            );
        }
        other => panic!("{what}: unexpected block type {other}"),
    }
}

/// A `Message` (the non-streaming response, and `message_start.message`).
pub fn message(value: &Value, what: &str) {
    assert!(
        string(value, "id", what).starts_with("msg_"),
        "{what}: id starts with msg_"
    );
    assert_eq!(string(value, "type", what), "message");
    assert_eq!(string(value, "role", what), "assistant");
    string(value, "model", what);
    let content = value
        .get("content")
        .and_then(Value::as_array)
        .expect("content array");
    for block in content {
        content_block(block, what);
    }
    let reason = value.get("stop_reason").expect("stop_reason present");
    assert!(
        reason.is_null()
            || [
                "end_turn",
                "max_tokens",
                "stop_sequence",
                "tool_use",
                "pause_turn",
                "refusal"
            ]
            .contains(&reason.as_str().unwrap_or_default()),
        "{what}: stop_reason {reason}"
    );
    assert!(
        value.get("stop_sequence").is_some(),
        "{what}: stop_sequence present"
    );
    let usage = value.get("usage").expect("usage");
    integer(usage, "input_tokens", what);
    integer(usage, "output_tokens", what);
}

/// One stream event: its `event:` name equals `data.type`, and the payload has what the
/// SDK reads for that type.
pub fn event(name: Option<&str>, data: &Value) {
    let kind = string(data, "type", "event");
    assert_eq!(name, Some(kind), "the event: name must equal data.type");
    let what = kind;
    match kind {
        "message_start" => message(data.get("message").expect("message"), what),
        "content_block_start" => {
            integer(data, "index", what);
            content_block(data.get("content_block").expect("content_block"), what);
        }
        "content_block_delta" => {
            integer(data, "index", what);
            let delta = data.get("delta").expect("delta");
            match string(delta, "type", what) {
                "text_delta" => {
                    string(delta, "text", what);
                }
                "input_json_delta" => {
                    string(delta, "partial_json", what);
                }
                other => panic!("{what}: unexpected delta type {other}"),
            }
        }
        "content_block_stop" => {
            integer(data, "index", what);
        }
        "message_delta" => {
            let delta = data.get("delta").expect("delta");
            string(delta, "stop_reason", what);
            assert!(
                delta.get("stop_sequence").is_some(),
                "{what}: stop_sequence present"
            );
            integer(data.get("usage").expect("usage"), "output_tokens", what);
        }
        "message_stop" => {}
        "error" => {
            let error = data.get("error").expect("error");
            string(error, "type", what);
            string(error, "message", what);
        }
        other => panic!("unexpected event type {other}"),
    }
}

/// An error body: `{"type": "error", "error": {"type", "message"}}` with a documented type.
pub fn error_body(value: &Value) {
    let what = "error body";
    assert_eq!(string(value, "type", what), "error");
    let error = value.get("error").expect("error");
    let kind = string(error, "type", what);
    assert!(
        [
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "api_error",
            "overloaded_error"
        ]
        .contains(&kind),
        "{what}: undocumented type {kind}"
    );
    string(error, "message", what);
}
