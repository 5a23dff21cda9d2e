//! Anthropic Messages response → OpenAI `chat.completion`.

use wire::anthropic::messages_response_to_chat;
use wire::openai::Usage;

use crate::support::{assert_json_eq, json, openai_schema, parse, read};

const CREATED: u64 = 1_736_900_000;

/// Translates `anthropic/responses/<case>.json` for `model`, compares the body with
/// `openai/responses/<case>.json` and the returned usage with the body's usage.
fn check(case: &str, model: &str) {
    let input = read(&format!("anthropic/responses/{case}.json"));
    let (out, usage) =
        messages_response_to_chat(&input, model, CREATED).unwrap_or_else(|e| panic!("{case}: {e}"));
    let out = parse(&out, case);
    openai_schema::chat_completion(&out);
    let expected = json(&format!("openai/responses/{case}.json"));
    assert_json_eq(&out, &expected, case);
    let body_usage: Usage = serde_json::from_value(expected["usage"].clone()).expect("usage");
    assert_eq!(usage, body_usage, "{case}: returned usage");
}

#[test]
fn text_answer() {
    check("text", "claude-sonnet");
}

#[test]
fn text_and_tool_use() {
    check("tool_use", "claude-sonnet");
}

#[test]
fn tool_calls_only_have_null_content_and_cached_prompt_tokens_count() {
    check("parallel_tool_use_only", "claude-sonnet");
}

#[test]
fn max_tokens_is_length_and_text_blocks_join() {
    check("max_tokens", "claude-haiku");
}

#[test]
fn stop_sequence_is_stop() {
    check("stop_sequence", "claude-haiku");
}

#[test]
fn refusal_is_content_filter_and_empty_content_is_an_empty_string() {
    let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":"refusal","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":0}}"#;
    let (out, _) = messages_response_to_chat(body, "m", CREATED).expect("ok");
    let out = parse(&out, "refusal");
    openai_schema::chat_completion(&out);
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(out["choices"][0]["message"]["content"], "");
}

#[test]
fn bodies_that_are_not_messages_are_refused() {
    for body in [
        &b"<html>bad gateway</html>"[..],
        br#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
        br#"{"id":"msg_01","role":"assistant","content":[]}"#,
        br#"{"type":"message","content":"text"}"#,
    ] {
        let e = messages_response_to_chat(body, "m", CREATED).expect_err("refused");
        assert!(e.message.contains("not an Anthropic message"), "{e}");
    }
}
