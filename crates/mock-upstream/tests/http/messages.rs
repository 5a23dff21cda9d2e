//! Non-stream Anthropic Messages: shape, counts, truncation, tool use, validation.

use serde_json::{json, Value};

use crate::common::{
    assert_anthropic_error, chat_body, client, messages_body, post_json, post_messages,
    post_messages_json, start, ANTHROPIC_VERSION,
};

#[tokio::test]
async fn reply_has_the_anthropic_shape_and_real_counts() {
    let server = start().await;
    let body = json!({
        "model": "claude-any",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [
            { "role": "user", "content": "Earlier question" },
            { "role": "assistant", "content": [{ "type": "text", "text": "Earlier answer" }] },
            { "role": "user", "content": [{ "type": "text", "text": "Hello there, friend" }] },
        ],
    });
    let response = post_messages(&server, "sk-ant-test", &body).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_mock"));
    let reply: Value = response.json().await.unwrap();

    let keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "content",
            "id",
            "model",
            "role",
            "stop_reason",
            "stop_sequence",
            "type",
            "usage"
        ]
    );
    assert!(reply["id"].as_str().unwrap().starts_with("msg_mock"));
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["model"], "claude-any");
    assert_eq!(reply["stop_reason"], "end_turn");
    assert!(reply["stop_sequence"].is_null());
    let content = reply["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    assert_eq!(
        text,
        "Mock reply to: Hello there, friend lorem ipsum dolor sit amet, consectetur"
    );

    let count = wire::tokens::count;
    let input = count("Be brief.")
        + count("Earlier question")
        + count("Earlier answer")
        + count("Hello there, friend")
        + 3 * 3;
    assert_eq!(
        reply["usage"],
        json!({ "input_tokens": input, "output_tokens": count(text) })
    );

    // Rate-limit headers of a key's first request.
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "4000");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "3999");
    assert_eq!(headers["anthropic-ratelimit-tokens-limit"], "400000");
    let used = u64::from(input + count(text));
    assert_eq!(
        headers["anthropic-ratelimit-tokens-remaining"],
        (400_000 - used).to_string()
    );
}

#[tokio::test]
async fn the_text_is_the_openai_half_s_text() {
    let server = start().await;
    let question = "What is the capital of France, please?";
    let (_, anthropic) = post_messages_json(&server, "k", &messages_body(question)).await;
    let (_, openai) = post_json(&server, "/chat/completions", "k", &chat_body(question)).await;
    assert_eq!(
        anthropic["content"][0]["text"],
        openai["choices"][0]["message"]["content"]
    );
    assert_eq!(
        anthropic["usage"]["output_tokens"],
        openai["usage"]["completion_tokens"]
    );
    assert_eq!(
        anthropic["usage"]["input_tokens"],
        openai["usage"]["prompt_tokens"]
    );
}

#[tokio::test]
async fn max_tokens_truncates_with_stop_reason_max_tokens() {
    let server = start().await;
    let mut body = messages_body("Hello");
    body["max_tokens"] = json!(3);
    let (status, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["stop_reason"], "max_tokens");
    assert_eq!(reply["content"][0]["text"], "Mock reply");
    assert_eq!(reply["usage"]["output_tokens"], 3);
}

fn weather_tools() -> Value {
    json!([
        { "name": "get_time", "description": "Time now", "input_schema": { "type": "object" } },
        { "name": "get_weather", "description": "Weather in a city",
          "input_schema": { "type": "object",
            "properties": { "city": { "type": "string" }, "days": { "type": "integer" },
                            "note": { "type": "string" } },
            "required": ["city", "days"] } },
    ])
}

#[tokio::test]
async fn tool_choice_any_or_tool_answers_with_tool_use() {
    let server = start().await;
    let mut body = messages_body("Weather in Paris?");
    body["tools"] = weather_tools();

    body["tool_choice"] = json!({ "type": "tool", "name": "get_weather" });
    let (status, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["stop_reason"], "tool_use");
    let content = reply["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    let block = &content[0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_mock"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({ "city": "mock", "days": 1 }));
    let input_json = serde_json::to_string(&block["input"]).unwrap();
    let output = wire::tokens::count("get_weather") + wire::tokens::count(&input_json);
    assert_eq!(reply["usage"]["output_tokens"], output);

    body["tool_choice"] = json!({ "type": "any" });
    let (_, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(reply["content"][0]["name"], "get_time");
    assert_eq!(reply["content"][0]["input"], json!({}));

    body["tool_choice"] = json!({ "type": "auto" });
    let (_, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["content"][0]["type"], "text");
}

#[tokio::test]
async fn the_tool_directive_forces_a_call_unless_the_choice_is_none() {
    let server = start().await;
    let mut body = messages_body("Call something [[mock:tool]]");
    body["tools"] = weather_tools();
    let (_, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(reply["content"][0]["name"], "get_time");

    body["tool_choice"] = json!({ "type": "none" });
    let (_, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(reply["stop_reason"], "end_turn");

    // Without tools the directive has nothing to call.
    let (_, reply) = post_messages_json(&server, "k", &messages_body("[[mock:tool]]")).await;
    assert_eq!(reply["content"][0]["type"], "text");
}

#[tokio::test]
async fn invalid_requests_get_400_naming_the_field() {
    let server = start().await;
    let user = json!([{ "role": "user", "content": "hi" }]);
    for (body, message) in [
        (
            json!({ "max_tokens": 5, "messages": user }),
            "model: Field required",
        ),
        (
            json!({ "model": "m", "messages": user }),
            "max_tokens: Field required",
        ),
        (
            json!({ "model": "m", "max_tokens": 5 }),
            "messages: Field required",
        ),
        (
            json!({ "model": "m", "max_tokens": 5, "messages": [] }),
            "messages: at least one message is required",
        ),
    ] {
        let (status, reply) = post_messages_json(&server, "k", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_anthropic_error(&reply, "invalid_request_error");
        assert_eq!(reply["error"]["message"], message);
    }

    let body = json!({ "model": "m", "max_tokens": 5, "messages": [
        { "role": "system", "content": "Be brief." }, { "role": "user", "content": "hi" } ] });
    let (status, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 400);
    assert_anthropic_error(&reply, "invalid_request_error");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("messages: Unexpected role \"system\""),
        "{message}"
    );
    assert!(
        message.contains("top-level `system` parameter"),
        "{message}"
    );

    // Roles need not alternate, and an assistant message may come last (prefill).
    let body = json!({ "model": "m", "max_tokens": 50, "messages": [
        { "role": "user", "content": "one" }, { "role": "user", "content": "two" },
        { "role": "assistant", "content": "Sure" } ] });
    let (status, reply) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 200);
    assert!(reply["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Mock reply to: two"));

    let response = client()
        .post(format!("{}/messages", server.base_url()))
        .header("x-api-key", "k")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_anthropic_error(&response.json().await.unwrap(), "invalid_request_error");
}
