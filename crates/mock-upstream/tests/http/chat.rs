//! Non-stream chat completions.

use serde_json::json;

use crate::common::{chat_body, post_json, start};

#[tokio::test]
async fn reply_has_the_openai_shape_and_real_counts() {
    let server = start().await;
    let body = json!({
        "model": "any-model",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": [{ "type": "text", "text": "Hello there, friend" }] },
        ],
    });
    let (status, reply) = post_json(&server, "/chat/completions", "sk-test", &body).await;
    assert_eq!(status, 200);
    assert!(reply["id"].as_str().unwrap().starts_with("chatcmpl-mock"));
    assert_eq!(reply["object"], "chat.completion");
    assert!(reply["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(reply["model"], "any-model");
    let choice = &reply["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["logprobs"].is_null() && choice.get("logprobs").is_some());
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert!(message["refusal"].is_null() && message.get("refusal").is_some());
    let content = message["content"].as_str().unwrap();
    assert_eq!(
        content,
        "Mock reply to: Hello there, friend lorem ipsum dolor sit amet, consectetur"
    );
    assert_eq!(content.split(' ').count(), 12);

    let prompt = wire::tokens::count("Be brief.") + wire::tokens::count("Hello there, friend") + 6;
    let completion = wire::tokens::count(content);
    assert_eq!(reply["usage"]["prompt_tokens"], prompt);
    assert_eq!(reply["usage"]["completion_tokens"], completion);
    assert_eq!(reply["usage"]["total_tokens"], prompt + completion);
}

#[tokio::test]
async fn replies_are_deterministic() {
    let server = start().await;
    let (_, first) = post_json(
        &server,
        "/chat/completions",
        "k",
        &chat_body("Same question"),
    )
    .await;
    let (_, second) = post_json(
        &server,
        "/chat/completions",
        "k",
        &chat_body("Same question"),
    )
    .await;
    assert_eq!(first["choices"], second["choices"]);
    assert_eq!(first["usage"], second["usage"]);
    assert_ne!(first["id"], second["id"]);
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let server = start().await;
    for cap in ["max_tokens", "max_completion_tokens"] {
        let mut body = chat_body("Hello");
        body[cap] = json!(3);
        let (_, reply) = post_json(&server, "/chat/completions", "k", &body).await;
        assert_eq!(reply["choices"][0]["finish_reason"], "length");
        assert_eq!(reply["choices"][0]["message"]["content"], "Mock reply");
        assert_eq!(reply["usage"]["completion_tokens"], 3);
    }
}

#[tokio::test]
async fn tool_choice_required_returns_a_tool_call() {
    let server = start().await;
    let mut body = chat_body("Weather in Paris?");
    body["tools"] = json!([{ "type": "function", "function": { "name": "get_weather",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } }]);
    body["tool_choice"] = json!("required");
    let (_, reply) = post_json(&server, "/chat/completions", "k", &body).await;
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"mock"}"#);
}

#[tokio::test]
async fn bad_bodies_get_400_in_openai_shape() {
    let server = start().await;
    let (status, body) = post_json(
        &server,
        "/chat/completions",
        "k",
        &json!({ "messages": [] }),
    )
    .await;
    assert_eq!(status, 400);
    crate::common::assert_error(&body, "invalid_request_error", None);
    assert_eq!(body["error"]["param"], "model");
}
