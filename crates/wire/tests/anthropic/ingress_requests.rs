//! Anthropic Messages request → OpenAI chat request (`/v1/messages` ingress).

use serde_json::{json, Value};
use wire::anthropic::{messages_request_to_chat, MessagesPeek, TranslateError};

use crate::support::{assert_json_eq, json, parse, read};

/// Translates `anthropic/requests/<case>.json`, compares the body with
/// `openai/requests/<case>.json` and returns the peek.
fn check(case: &str) -> MessagesPeek {
    let input = read(&format!("anthropic/requests/{case}.json"));
    let (out, peek) = messages_request_to_chat(&input).unwrap_or_else(|e| panic!("{case}: {e}"));
    let expected = json(&format!("openai/requests/{case}.json"));
    assert_json_eq(&parse(&out, case), &expected, case);
    // What the gateway's OpenAI peek reads from the body agrees with the peek.
    let openai_peek = wire::openai::peek_request(&out).expect("peekable");
    assert_eq!(openai_peek.model.as_deref(), Some(peek.model.as_str()));
    assert_eq!(openai_peek.is_stream(), peek.stream);
    assert_eq!(openai_peek.max_completion_tokens, peek.max_tokens);
    peek
}

fn translate(body: Value) -> Result<Value, TranslateError> {
    let bytes = serde_json::to_vec(&body).expect("encode");
    messages_request_to_chat(&bytes).map(|(out, _)| parse(&out, "output"))
}

fn base(messages: Value) -> Value {
    json!({"model": "gpt-4o", "max_tokens": 100, "messages": messages})
}

#[test]
fn system_blocks_turns_images_sampling_and_stream() {
    let peek = check("ingress_chat");
    assert_eq!(
        peek,
        MessagesPeek {
            model: "claude-sonnet-4-5".to_owned(),
            stream: true,
            max_tokens: Some(1024)
        }
    );
}

#[test]
fn tools_tool_use_and_tool_results() {
    let peek = check("ingress_tools");
    assert_eq!(
        peek,
        MessagesPeek {
            model: "gpt-4o".to_owned(),
            stream: false,
            max_tokens: Some(2048)
        }
    );
}

#[test]
fn tool_choice_modes() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": "f"}),
            json!({"type": "function", "function": {"name": "f"}}),
        ),
    ] {
        let mut body = base(json!([{"role": "user", "content": "hi"}]));
        body["tools"] = tools.clone();
        body["tool_choice"] = choice.clone();
        let out = translate(body).expect("ok");
        assert_eq!(out["tool_choice"], expected, "for {choice}");
        assert!(out.get("parallel_tool_calls").is_none());
    }
}

#[test]
fn plain_string_system_and_a_document() {
    let mut body = base(json!([{"role": "user", "content": [
        {"type": "document", "title": "receipt.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
        {"type": "text", "text": "Summarise both."},
    ]}]));
    body["system"] = json!("Be brief.");
    let out = translate(body).expect("ok");
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        out["messages"][1]["content"],
        json!([
            {"type": "file", "file": {"filename": "receipt.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
            {"type": "text", "text": "Plain notes."},
            {"type": "text", "text": "Summarise both."},
        ])
    );
}

#[test]
fn assistant_tool_use_without_text_has_null_content() {
    let out = translate(base(json!([
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "now", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01"}]},
    ])))
    .expect("ok");
    assert_eq!(out["messages"][1]["content"], Value::Null);
    assert_eq!(
        out["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    assert_eq!(
        out["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_01", "content": ""})
    );
    assert_eq!(
        out["messages"].as_array().map(Vec::len),
        Some(3),
        "no empty user message after the tool result"
    );
}

#[test]
fn missing_required_fields_name_the_param() {
    let cases = [
        (json!({"max_tokens": 10, "messages": []}), "model"),
        (json!({"model": "m", "messages": []}), "max_tokens"),
        (json!({"model": "m", "max_tokens": 10}), "messages"),
        (
            json!({"model": "m", "max_tokens": -1, "messages": []}),
            "max_tokens",
        ),
        (
            json!({"model": 7, "max_tokens": 10, "messages": []}),
            "model",
        ),
    ];
    for (body, param) in cases {
        let e = translate(body.clone()).expect_err("refused");
        assert_eq!(e.param.as_deref(), Some(param), "for {body}: {e}");
        assert!(e.message.contains(param), "{e}");
    }
}

#[test]
fn what_other_models_cannot_take_is_refused_with_the_param() {
    let cases = [
        (
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            "tools[0].type",
            "server tool",
        ),
        (
            json!({"tools": [{"name": "f"}]}),
            "tools[0].input_schema",
            "is required",
        ),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
            "top-level `system`",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "file_011"}}]}]}),
            "messages[0].content[0].source",
            "source type `file`",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "x", "title": "t", "content": []}]}]}),
            "messages[0].content[0].type",
            "`search_result` block",
        ),
        (
            json!({"system": [{"type": "image"}]}),
            "system[0].type",
            "text blocks only",
        ),
        (
            json!({"tool_choice": {"type": "sometimes"}, "tools": [{"name": "f", "input_schema": {}}]}),
            "tool_choice.type",
            "auto, any, tool or none",
        ),
    ];
    for (extra, param, words) in cases {
        let mut body = base(json!([{"role": "user", "content": "hi"}]));
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let e = translate(body).expect_err("refused");
        assert_eq!(e.param.as_deref(), Some(param), "{e}");
        assert!(e.message.contains(words), "{e}");
    }
}
