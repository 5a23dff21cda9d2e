//! OpenAI `chat.completion` → Anthropic Messages response (`/v1/messages` ingress).

use serde_json::json;
use wire::anthropic::chat_response_to_messages;

use crate::support::{anthropic_shape, assert_json_eq, json, parse, read};

/// Translates `openai/responses/ingress_<case>.json` for `model` and compares it with
/// `anthropic/responses/ingress_<case>.json`.
fn check(case: &str, model: &str) {
    let name = format!("ingress_{case}");
    let out = chat_response_to_messages(&read(&format!("openai/responses/{name}.json")), model)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = parse(&out, &name);
    anthropic_shape::message(&out, &name);
    assert_json_eq(
        &out,
        &json(&format!("anthropic/responses/{name}.json")),
        &name,
    );
}

fn translate(message: serde_json::Value, finish: &str) -> serde_json::Value {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    });
    let out = chat_response_to_messages(&serde_json::to_vec(&body).expect("encode"), "gpt-4o")
        .expect("translates");
    let out = parse(&out, "out");
    anthropic_shape::message(&out, "out");
    out
}

#[test]
fn text_answer() {
    check("text", "gpt-4o");
}

#[test]
fn tool_calls_and_cached_prompt_tokens() {
    check("tool_calls", "gpt-4o");
}

#[test]
fn finish_reasons_map_back() {
    let text = json!({"role": "assistant", "content": "Once upon", "refusal": null});
    assert_eq!(
        translate(text.clone(), "length")["stop_reason"],
        "max_tokens"
    );
    assert_eq!(
        translate(text.clone(), "content_filter")["stop_reason"],
        "refusal"
    );
    assert_eq!(translate(text, "stop")["stop_reason"], "end_turn");
}

#[test]
fn a_refusal_is_a_text_block_with_stop_reason_refusal() {
    let out = translate(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        "stop",
    );
    assert_eq!(
        out["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(out["stop_reason"], "refusal");
}

#[test]
fn empty_content_is_an_empty_block_list() {
    let out = translate(json!({"role": "assistant", "content": ""}), "stop");
    assert_eq!(out["content"], json!([]));
    assert_eq!(out["usage"]["input_tokens"], 3);
    assert_eq!(out["usage"]["output_tokens"], 4);
}

#[test]
fn bad_upstream_bodies_are_errors() {
    let e = chat_response_to_messages(br#"{"id":"x","choices":[]}"#, "m").expect_err("no choices");
    assert!(e.message.contains("no choices"), "{e}");
    let e = chat_response_to_messages(b"<html>", "m").expect_err("not JSON");
    assert!(e.message.contains("not valid JSON"), "{e}");
    let body = json!({"id": "x", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1"}}]}}]});
    let e = chat_response_to_messages(&serde_json::to_vec(&body).expect("encode"), "m")
        .expect_err("bad arguments");
    assert_eq!(
        e.param.as_deref(),
        Some("choices[0].message.tool_calls[0].function.arguments")
    );
}
