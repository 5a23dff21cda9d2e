//! OpenAI chat request → Anthropic Messages request.

use serde_json::{json, Value};
use wire::anthropic::{chat_request_to_messages, TranslateError};

use crate::support::{assert_json_eq, json, parse, read};

const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Translates `openai/requests/<case>.json` for `upstream_model` and compares it with
/// `anthropic/requests/<case>.json`.
fn check(case: &str, upstream_model: &str) {
    let input = read(&format!("openai/requests/{case}.json"));
    let out = chat_request_to_messages(&input, upstream_model, DEFAULT_MAX_TOKENS)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let expected = json(&format!("anthropic/requests/{case}.json"));
    assert_json_eq(&parse(&out, case), &expected, case);
}

/// Translates an inline OpenAI body.
fn translate(body: Value) -> Result<Value, TranslateError> {
    let bytes = serde_json::to_vec(&body).expect("encode");
    chat_request_to_messages(&bytes, "claude-sonnet-4-5-20250929", DEFAULT_MAX_TOKENS)
        .map(|out| parse(&out, "output"))
}

fn error(body: Value) -> TranslateError {
    translate(body).expect_err("the body must be refused")
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn system_prompts_and_multi_turn_conversation() {
    check("system_multiturn", "claude-sonnet-4-5-20250929");
}

#[test]
fn image_parts_base64_and_url() {
    check("images", "claude-sonnet-4-5-20250929");
}

#[test]
fn tools_tool_choice_and_a_tool_call_round_trip() {
    check("tool_round_trip", "claude-sonnet-4-5-20250929");
}

#[test]
fn consecutive_turns_merge_with_tool_results_first() {
    check("merge_turns", "claude-sonnet-4-5-20250929");
}

#[test]
fn stop_sequences_sampling_stream_and_user() {
    check("sampling", "claude-haiku-4-5-20251001");
}

#[test]
fn max_tokens_default_and_temperature_ceiling() {
    check("default_max_tokens", "claude-haiku-4-5-20251001");
}

#[test]
fn max_completion_tokens_wins_over_max_tokens() {
    let out =
        translate(json!({"messages": [user("hi")], "max_tokens": 10, "max_completion_tokens": 20}))
            .expect("ok");
    assert_eq!(out["max_tokens"], 20);
}

#[test]
fn tool_choice_modes() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let out =
            translate(json!({"messages": [user("hi")], "tools": tools, "tool_choice": choice}))
                .expect("ok");
        assert_eq!(out["tool_choice"], expected, "for {choice}");
    }
}

#[test]
fn parallel_tool_calls_false_without_tool_choice() {
    let out = translate(json!({
        "messages": [user("hi")],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": false,
    }))
    .expect("ok");
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // `none` takes no such flag.
    let out = translate(json!({
        "messages": [user("hi")],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "none",
        "parallel_tool_calls": false,
    }))
    .expect("ok");
    assert_eq!(out["tool_choice"], json!({"type": "none"}));
}

#[test]
fn allowed_tools_narrow_the_tool_list() {
    let out = translate(json!({
        "messages": [user("hi")],
        "tools": [
            {"type": "function", "function": {"name": "a"}},
            {"type": "function", "function": {"name": "b"}},
        ],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "b"}}]}},
    }))
    .expect("ok");
    assert_eq!(out["tools"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["tools"][0]["name"], "b");
    assert_eq!(out["tool_choice"], json!({"type": "any"}));
}

#[test]
fn safety_identifier_is_the_user_when_user_is_absent() {
    let out =
        translate(json!({"messages": [user("hi")], "safety_identifier": "hash-77"})).expect("ok");
    assert_eq!(out["metadata"], json!({"user_id": "hash-77"}));
}

#[test]
fn n_above_one_is_refused() {
    let e = error(json!({"messages": [user("hi")], "n": 3}));
    assert_eq!(e.param.as_deref(), Some("n"));
    assert!(e.message.contains("omit `n`"), "{e}");
    assert!(translate(json!({"messages": [user("hi")], "n": 1})).is_ok());
}

#[test]
fn invalid_tool_arguments_name_the_param() {
    let e = error(json!({"messages": [
        user("hi"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{\"a\": "}},
        ]},
    ]}));
    assert_eq!(
        e.param.as_deref(),
        Some("messages[1].tool_calls[1].function.arguments")
    );
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = error(json!({"messages": [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]},
    ]}));
    assert!(e.message.contains("must encode a JSON object"), "{e}");
}

#[test]
fn empty_arguments_are_an_empty_input() {
    let out = translate(json!({"messages": [
        user("hi"),
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]},
    ]}))
    .expect("ok");
    assert_eq!(out["messages"][1]["content"][0]["input"], json!({}));
}

#[test]
fn bodies_that_cannot_be_translated_say_what_to_fix() {
    let cases = [
        (json!({"model": "x"}), Some("messages"), "is required"),
        (
            json!({"messages": [{"role": "critic", "content": "x"}]}),
            Some("messages[0].role"),
            "use one of",
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}),
            Some("messages[0].role"),
            "deprecated",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
            Some("messages[0].content[0]"),
            "audio",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}),
            Some("messages[0].content[0].image_url.url"),
            "http(s) URL",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            Some("messages[0].content[0].file.file_data"),
            "inline",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            Some("messages[0].content"),
            "must be a string or an array",
        ),
        (
            json!({"messages": [user("x")], "tools": [{"type": "custom", "custom": {"name": "grammar"}}]}),
            Some("tools[0].type"),
            "only `function` tools",
        ),
        (
            json!({"messages": [user("x")], "stop": 5}),
            Some("stop"),
            "string or an array",
        ),
        (
            json!({"messages": [user("x")], "max_tokens": 0}),
            Some("max_tokens"),
            "at least 1",
        ),
        (
            json!({"messages": [user("x")], "max_tokens": "many"}),
            Some("max_tokens"),
            "non-negative integer",
        ),
        (
            json!({"messages": [user("x")], "temperature": "hot"}),
            Some("temperature"),
            "must be a number",
        ),
        (
            json!({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "always"}),
            Some("tool_choice"),
            "use \"auto\"",
        ),
    ];
    for (body, param, words) in cases {
        let e = error(body.clone());
        assert_eq!(e.param.as_deref(), param, "param for {body}: {e}");
        assert!(e.message.contains(words), "message for {body}: {e}");
    }
    let e = chat_request_to_messages(b"{not json", "m", 1).expect_err("garbage");
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = chat_request_to_messages(b"[1]", "m", 1).expect_err("array");
    assert!(e.message.contains("must be a JSON object"), "{e}");
}

#[test]
fn a_tool_message_before_the_user_text_still_comes_first() {
    let out = translate(json!({"messages": [
        user("weather?"),
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        user("(also, hurry)"),
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]}))
    .expect("ok");
    let turn = &out["messages"][2];
    assert_eq!(turn["role"], "user");
    assert_eq!(turn["content"][0]["type"], "tool_result");
    assert_eq!(
        turn["content"][1],
        json!({"type": "text", "text": "(also, hurry)"})
    );
}
