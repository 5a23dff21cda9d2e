//! Helpers shared by the HTTP tests.

use std::time::Duration;

use mock_upstream::{MockOptions, MockServer};
use serde_json::{json, Value};

/// A mock with default options.
pub async fn start() -> MockServer {
    start_with(MockOptions::default()).await
}

/// A mock with these options.
pub async fn start_with(options: MockOptions) -> MockServer {
    MockServer::start_local(options).await.expect("mock starts")
}

/// A client with a short overall timeout so a bug cannot hang the suite.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A one-message chat request.
pub fn chat_body(text: &str) -> Value {
    json!({ "model": "mock-gpt", "messages": [{ "role": "user", "content": text }] })
}

/// POSTs `body` to `path` (relative to `/v1`) with `key` as bearer.
pub async fn post(server: &MockServer, path: &str, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", server.base_url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// POSTs and returns status and JSON body.
pub async fn post_json(server: &MockServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = post(server, path, key, body).await;
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// Asserts the OpenAI error envelope with this type and code.
pub fn assert_error(body: &Value, kind: &str, code: Option<&str>) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
    assert!(error.get("param").is_some(), "{body}");
}

/// The `anthropic-version` the tests send.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A one-message Messages request.
pub fn messages_body(text: &str) -> Value {
    json!({
        "model": "mock-claude",
        "max_tokens": 1024,
        "messages": [{ "role": "user", "content": text }],
    })
}

/// POSTs `body` to `/v1/messages` with `key` as `x-api-key` and `anthropic-version`.
pub async fn post_messages(server: &MockServer, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/messages", server.base_url()))
        .header("x-api-key", key)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// POSTs to `/v1/messages` and returns status and JSON body.
pub async fn post_messages_json(server: &MockServer, key: &str, body: &Value) -> (u16, Value) {
    let response = post_messages(server, key, body).await;
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// The events of an Anthropic SSE body: `(event name, data)`, checking the framing
/// (`event: NAME\ndata: JSON\n\n`) and that the data's `type` is the event name.
pub fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "{body:?}");
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event
                .split_once('\n')
                .unwrap_or_else(|| panic!("not two lines: {event:?}"));
            let name = name
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("no event line: {event:?}"));
            let data = data
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("no data line: {event:?}"));
            assert!(!data.contains('\n'), "{event:?}");
            let data: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(data["type"], name, "{event}");
            (name.to_owned(), data)
        })
        .collect()
}

/// Asserts Anthropic's error envelope with this type.
pub fn assert_anthropic_error(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(
        body["request_id"].as_str().unwrap().starts_with("req_"),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
}
