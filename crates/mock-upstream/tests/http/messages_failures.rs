//! Anthropic Messages failures: auth, `anthropic-version`, behaviour keys,
//! directives, scripts and counters.

use std::time::{Duration, Instant};

use mock_upstream::Step;
use serde_json::{json, Value};

use crate::common::{
    assert_anthropic_error, client, messages_body, post_messages, post_messages_json, start,
    ANTHROPIC_VERSION,
};

#[tokio::test]
async fn a_missing_key_is_401_authentication_error() {
    let server = start().await;
    let url = format!("{}/messages", server.base_url());
    // A bearer token is not an Anthropic API key.
    for bearer in [None, Some("sk-ant")] {
        let mut request = client()
            .post(&url)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&messages_body("hi"));
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let request_id = response.headers()["request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_anthropic_error(&body, "authentication_error");
        assert_eq!(body["error"]["message"], "x-api-key header is required");
        assert_eq!(body["request_id"], request_id);
    }
}

#[tokio::test]
async fn anthropic_version_is_required_and_checked() {
    let server = start().await;
    let url = format!("{}/messages", server.base_url());
    let response = client()
        .post(&url)
        .header("x-api-key", "sk-ant")
        .json(&messages_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_anthropic_error(&body, "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );

    let response = client()
        .post(&url)
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", "2099-01-01")
        .json(&messages_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: \"2099-01-01\" is not a valid version"
    );
    // Both were counted.
    assert_eq!(server.requests_for_key("sk-ant"), 2);
}

#[tokio::test]
async fn behaviour_keys_fail_in_anthropic_shape() {
    let server = start().await;
    let body = messages_body("hi");
    for (key, status, kind) in [
        ("mock-401-a", 401, "authentication_error"),
        ("mock-403", 403, "permission_error"),
        ("mock-500-x", 500, "api_error"),
        ("mock-529", 529, "overloaded_error"),
    ] {
        let response = post_messages(&server, key, &body).await;
        assert_eq!(response.status(), status, "{key}");
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_anthropic_error(&response.json().await.unwrap(), kind);
    }
    let (_, reply) = post_messages_json(&server, "mock-529", &body).await;
    assert_eq!(reply["error"]["message"], "Overloaded");
    let (_, reply) = post_messages_json(&server, "mock-401", &body).await;
    assert_eq!(reply["error"]["message"], "invalid x-api-key");

    let response = post_messages(&server, "mock-429", &body).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );
    assert_anthropic_error(&response.json().await.unwrap(), "rate_limit_error");
    let response = post_messages(&server, "mock-429-retry-5", &body).await;
    assert_eq!(response.headers()["retry-after"], "5");
}

#[tokio::test]
async fn a_hang_key_never_answers() {
    let server = start().await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = quick
        .post(format!("{}/messages", server.base_url()))
        .header("x-api-key", "mock-hang")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&messages_body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout());
    server.shutdown();
}

#[tokio::test]
async fn directives_in_the_last_user_message_pick_the_failure() {
    let server = start().await;
    for (directive, status, kind) in [
        ("[[mock:500]]", 500, "api_error"),
        ("[[mock:529]]", 529, "overloaded_error"),
        ("[[mock:403]]", 403, "permission_error"),
        ("[[mock:context-length]]", 400, "invalid_request_error"),
    ] {
        let body = messages_body(&format!("hi {directive}"));
        let (got, reply) = post_messages_json(&server, "k", &body).await;
        assert_eq!(got, status, "{directive}");
        assert_anthropic_error(&reply, kind);
    }
    let (_, reply) =
        post_messages_json(&server, "k", &messages_body("[[mock:context-length]]")).await;
    assert_eq!(
        reply["error"]["message"],
        "prompt is too long: 250000 tokens > 200000 maximum"
    );

    let response = post_messages(&server, "k", &messages_body("[[mock:429]]")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );

    let response = post_messages(&server, "k", &messages_body("[[mock:garbage]]")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    // In text blocks too, and only in the last user message.
    let body = json!({ "model": "m", "max_tokens": 100, "messages": [
        { "role": "user", "content": "[[mock:500]]" },
        { "role": "assistant", "content": "ok" },
        { "role": "user", "content": [{ "type": "text", "text": "fine" }] } ] });
    let (status, _) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 200);
    let body = json!({ "model": "m", "max_tokens": 100, "messages": [
        { "role": "user", "content": [{ "type": "text", "text": "go [[mock:529]]" }] },
        { "role": "assistant", "content": "Prefill" } ] });
    let (status, _) = post_messages_json(&server, "k", &body).await;
    assert_eq!(status, 529);
}

#[tokio::test]
async fn hang_and_first_byte_delay_directives() {
    let server = start().await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = quick
        .post(format!("{}/messages", server.base_url()))
        .header("x-api-key", "k")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&messages_body("[[mock:hang]]"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout());

    let started = Instant::now();
    let response = post_messages(
        &server,
        "k",
        &messages_body("[[mock:first-byte-delay=250]]"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.shutdown();
}

#[tokio::test]
async fn scripts_apply_to_the_x_api_key() {
    let server = start().await;
    server.script(
        "sk-ant-scripted",
        vec![
            Step::Status {
                status: 429,
                retry_after_s: Some(3),
            },
            Step::Status {
                status: 529,
                retry_after_s: None,
            },
            Step::Garbage,
            Step::Reply,
        ],
    );
    let body = messages_body("hi");
    assert_eq!(
        post_messages(&server, "sk-other", &body).await.status(),
        200
    );

    let first = post_messages(&server, "sk-ant-scripted", &body).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    assert_anthropic_error(&first.json().await.unwrap(), "rate_limit_error");
    let second = post_messages(&server, "sk-ant-scripted", &body).await;
    assert_eq!(second.status(), 529);
    assert_anthropic_error(&second.json().await.unwrap(), "overloaded_error");
    let third = post_messages(&server, "sk-ant-scripted", &body).await;
    assert_eq!(third.status(), 200);
    assert!(third.json::<Value>().await.is_err());
    for _ in 0..2 {
        let (status, reply) = post_messages_json(&server, "sk-ant-scripted", &body).await;
        assert_eq!(status, 200);
        assert_eq!(reply["type"], "message");
    }
    assert_eq!(server.requests_for_key("sk-ant-scripted"), 5);

    // A script overrides a behaviour key here too.
    server.script("mock-529", vec![Step::Reply]);
    assert_eq!(
        post_messages(&server, "mock-529", &body).await.status(),
        200
    );
    assert_eq!(
        post_messages(&server, "mock-529", &body).await.status(),
        529
    );
}

#[tokio::test]
async fn counters_and_the_last_request() {
    let server = start().await;
    assert!(server.last_request("/v1/messages").is_none());
    post_messages(&server, "sk-ant-a", &messages_body("one")).await;
    let mut body = messages_body("two");
    body["max_tokens"] = json!(777);
    body["system"] = json!("Be brief.");
    post_messages(&server, "sk-ant-a", &body).await;
    post_messages(&server, "mock-500", &messages_body("three")).await;

    assert_eq!(server.total_requests(), 3);
    assert_eq!(server.requests_for_path("/v1/messages"), 3);
    assert_eq!(server.requests_for_path("/v1/chat/completions"), 0);
    assert_eq!(server.requests_for_key("sk-ant-a"), 2);
    assert_eq!(server.requests_for_key("mock-500"), 1);

    let last = server.last_request("/v1/messages").expect("recorded");
    assert_eq!(last.body["messages"][0]["content"], "three");
    let header = |name: &str| {
        last.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-api-key").as_deref(), Some("mock-500"));
    assert_eq!(
        header("anthropic-version").as_deref(),
        Some(ANTHROPIC_VERSION)
    );
    assert_eq!(header("authorization"), None);

    // The second request of a key counts down its rate-limit window.
    let response = post_messages(&server, "sk-ant-a", &messages_body("four")).await;
    assert_eq!(
        response.headers()["anthropic-ratelimit-requests-remaining"],
        "3997"
    );
}

#[tokio::test]
async fn an_unknown_path_asked_the_anthropic_way_is_404_not_found_error() {
    let server = start().await;
    let response = client()
        .post(format!("{}/message", server.base_url()))
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&messages_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_anthropic_error(&response.json().await.unwrap(), "not_found_error");
    assert_eq!(server.requests_for_path("/v1/message"), 1);
    assert_eq!(server.requests_for_key("sk-ant"), 1);
}
