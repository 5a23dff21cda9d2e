//! Anthropic both ways: an Anthropic-backed model behind the OpenAI API, and the
//! Anthropic Messages API in front of any model.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::{error_of, Setup, TestGateway};

const CLAUDE: &str = r#"
[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{mock_root}"
keys = [ { id = "an-1", key_env = "ANTHROPIC_TEST_KEY" } ]
[[models]]
name = "claude-test"
provider = "claude"
upstream_model = "claude-mock-1"
input_per_1m = 3.0
output_per_1m = 15.0
"#;

async fn gateway(anthropic_key: &'static str) -> TestGateway {
    TestGateway::start_with(Setup {
        extra: CLAUDE,
        env: vec![("ANTHROPIC_TEST_KEY", anthropic_key)],
        ..Default::default()
    })
    .await
}

fn claude(content: &str) -> Value {
    json!({"model": "claude-test", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": content}]})
}

#[tokio::test]
async fn openai_clients_reach_an_anthropic_model() {
    let mut gw = gateway("sk-ant-test").await;
    let response = gw
        .post("/v1/chat/completions", claude("Hello Claude"))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-test");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello Claude"));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // What Anthropic received.
    let seen = gw.mock.last_request("/v1/messages").unwrap();
    let header = |name: &str| {
        seen.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-test"));
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(header("authorization"), None);
    assert_eq!(seen.body["model"], "claude-mock-1");
    assert_eq!(seen.body["system"], "Be brief.");
    assert_eq!(seen.body["max_tokens"], 4096);

    gw.stop().await;
    let rows = gw.usage_rows().await;
    assert_eq!(rows[0].provider.as_deref(), Some("claude"));
    assert_eq!(
        rows[0].prompt_tokens,
        body["usage"]["prompt_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        rows[0].cost_nanos,
        rows[0].prompt_tokens * 3000 + rows[0].completion_tokens * 15000
    );
}

#[tokio::test]
async fn an_anthropic_stream_is_translated_as_it_arrives() {
    let mut gw = gateway("sk-ant-test").await;
    let mut body = claude("stream please [[mock:chunk-delay=100]]");
    body["stream"] = json!(true);
    let started = Instant::now();
    let response = gw.post("/v1/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut first = None;
    while let Some(piece) = stream.next().await {
        first.get_or_insert_with(|| started.elapsed());
        text.push_str(std::str::from_utf8(&piece.unwrap()).unwrap());
    }
    let total = started.elapsed();
    let first = first.unwrap();
    assert!(
        total >= Duration::from_millis(1000),
        "pacing not applied: {total:?}"
    );
    assert!(
        first + Duration::from_millis(700) < total,
        "first chunk {first:?} not well before the end {total:?}"
    );

    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(
        chunks
            .iter()
            .all(|c| !c["choices"].as_array().unwrap().is_empty()),
        "usage chunk not asked for"
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.contains("stream please"), "{content}");
    gw.stop().await;
    let rows = gw.usage_rows().await;
    assert!(
        rows[0].completion_tokens > 0 && rows[0].prompt_tokens > 0,
        "{:?}",
        rows[0]
    );
}

#[tokio::test]
async fn tool_calls_round_trip_through_anthropic() {
    let gw = gateway("sk-ant-test").await;
    let body = json!({"model": "claude-test", "messages": [{"role": "user", "content": "weather in Lisbon?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required"});
    let response: Value = gw
        .post("/v1/chat/completions", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["choices"][0]["finish_reason"], "tool_calls");
    let call = &response["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments.get("city").is_some());
    assert_eq!(
        gw.mock.last_request("/v1/messages").unwrap().body["tool_choice"]["type"],
        "any"
    );
}

#[tokio::test]
async fn anthropic_errors_come_back_in_openai_shape() {
    let gw = gateway("mock-529-overloaded").await;
    let (status, error) = error_of(gw.post("/v1/chat/completions", claude("hi")).await).await;
    assert_eq!(status, 502);
    assert!(
        error["message"].as_str().unwrap().contains("529"),
        "{error}"
    );
    assert!(
        !error["message"]
            .as_str()
            .unwrap()
            .contains("mock-529-overloaded"),
        "secret echoed"
    );

    let gw = gateway("sk-ant-test").await;
    let (status, error) = error_of(
        gw.post(
            "/v1/chat/completions",
            claude("long [[mock:context-length]]"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("context_length_exceeded"))
    );
}

async fn messages(gw: &TestGateway, body: Value) -> reqwest::Response {
    gw.client
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &gw.key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn anthropic_clients_reach_an_openai_model() {
    let gw = gateway("sk-ant-test").await;
    let response = messages(
        &gw,
        json!({"model": "mock-gpt", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello from Anthropic"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "mock-gpt");
    assert!(body["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Hello from Anthropic"));
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let seen = gw.mock.last_request("/v1/chat/completions").unwrap();
    assert_eq!(seen.body["messages"][0]["role"], "system");
    let rows = gw.wait_for_rows(1).await;
    assert_eq!(rows[0].endpoint, "/v1/messages");

    // Streaming: Anthropic's event sequence.
    let response = messages(
        &gw,
        json!({"model": "mock-gpt", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Stream from Anthropic"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"content_block_delta") && events.contains(&"message_delta"));

    // And to an Anthropic-backed model: translated both ways.
    let response = messages(
        &gw,
        json!({"model": "claude-test", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Round trip"}]}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Round trip"),
        "{body}"
    );
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_errors() {
    let gw = gateway("sk-ant-test").await;
    let no_key = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .json(&json!({"model": "mock-gpt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );

    let unknown = messages(&gw, json!({"model": "ghost", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error");

    let invalid = messages(
        &gw,
        json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(invalid.status(), 400);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"),
        "{body}"
    );
}
