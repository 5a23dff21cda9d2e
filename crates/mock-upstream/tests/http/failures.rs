//! Behaviour keys, per-request directives, hangs and shutdown.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{assert_error, chat_body, client, post, post_json, start};

#[tokio::test]
async fn missing_key_is_401() {
    let server = start().await;
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = response.json().await.unwrap();
    assert_error(&body, "invalid_request_error", None);
}

#[tokio::test]
async fn behaviour_keys_fail_as_their_prefix_says() {
    let server = start().await;
    let body = chat_body("hi");
    let (status, reply) = post_json(&server, "/chat/completions", "mock-401-a", &body).await;
    assert_eq!(status, 401);
    assert_error(&reply, "invalid_request_error", Some("invalid_api_key"));

    let (status, _) = post_json(&server, "/chat/completions", "mock-403", &body).await;
    assert_eq!(status, 403);

    let response = post(&server, "/chat/completions", "mock-429", &body).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_error(
        &response.json().await.unwrap(),
        "requests",
        Some("rate_limit_exceeded"),
    );

    let response = post(
        &server,
        "/embeddings",
        "mock-429-retry-7",
        &json!({ "model": "m", "input": "x" }),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    let (status, reply) = post_json(
        &server,
        "/completions",
        "mock-500-x",
        &json!({ "model": "m", "prompt": "x" }),
    )
    .await;
    assert_eq!(status, 500);
    assert_error(&reply, "server_error", None);
}

#[tokio::test]
async fn hang_key_never_answers_until_shutdown() {
    let server = start().await;
    let url = format!("{}/chat/completions", server.base_url());
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = quick
        .post(&url)
        .bearer_auth("mock-hang")
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout());

    let waiting = tokio::spawn(async move {
        client()
            .post(&url)
            .bearer_auth("mock-hang-2")
            .json(&chat_body("hi"))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.shutdown();
    let outcome = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("hang ends on shutdown");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(outcome);
}

#[tokio::test]
async fn directives_pick_the_failure() {
    let server = start().await;
    for (directive, status) in [
        ("[[mock:500]]", 500),
        ("[[mock:401]]", 401),
        ("[[mock:503]]", 503),
    ] {
        let (got, reply) = post_json(
            &server,
            "/chat/completions",
            "k",
            &chat_body(&format!("hi {directive}")),
        )
        .await;
        assert_eq!(got, status, "{directive}");
        assert!(reply["error"]["message"].is_string());
    }
    let response = post(
        &server,
        "/chat/completions",
        "k",
        &chat_body("[[mock:429]]"),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");

    // Only the last message counts.
    let body = json!({ "model": "m", "messages": [
        { "role": "user", "content": "[[mock:500]]" }, { "role": "user", "content": "fine" } ] });
    let (status, _) = post_json(&server, "/chat/completions", "k", &body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn garbage_is_200_json_that_does_not_parse() {
    let server = start().await;
    let response = post(
        &server,
        "/chat/completions",
        "k",
        &chat_body("[[mock:garbage]]"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
}

#[tokio::test]
async fn hang_directive_and_first_byte_delay() {
    let server = start().await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let url = format!("{}/chat/completions", server.base_url());
    let error = quick
        .post(&url)
        .bearer_auth("k")
        .json(&chat_body("[[mock:hang]]"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout());

    let started = Instant::now();
    let response = post(
        &server,
        "/chat/completions",
        "k",
        &chat_body("[[mock:first-byte-delay=250]]"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.shutdown();
}

#[tokio::test]
async fn hang_after_first_chunk_sends_one_event() {
    let server = start().await;
    let mut body = chat_body("[[mock:hang-after-first-chunk]]");
    body["stream"] = json!(true);
    let mut response = post(&server, "/chat/completions", "k", &body).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("first event");
    assert!(first.starts_with(b"data: {"));
    let next = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await;
    assert!(next.is_err(), "nothing after the first event");
    server.shutdown();
    // After shutdown the stream is cut, not completed.
    let end = tokio::time::timeout(Duration::from_secs(3), response.chunk())
        .await
        .expect("ends");
    assert!(end.is_err(), "a cut stream is an error: {end:?}");
}

#[tokio::test]
async fn shutdown_frees_the_port() {
    let server = start().await;
    let url = format!("{}/models", server.base_url());
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth("k")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        if fresh.get(&url).bearer_auth("k").send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still serving after shutdown");
}

#[tokio::test]
async fn context_length_directive_is_openai_s_400() {
    let server = start().await;
    let (status, reply) = post_json(
        &server,
        "/chat/completions",
        "k",
        &chat_body("a long story [[mock:context-length]]"),
    )
    .await;
    assert_eq!(status, 400);
    assert_error(
        &reply,
        "invalid_request_error",
        Some("context_length_exceeded"),
    );
    assert_eq!(reply["error"]["param"], "messages");
    assert_eq!(
        reply["error"]["message"],
        "This model's maximum context length is 128000 tokens. However, your messages \
         resulted in 250000 tokens. Please reduce the length of the messages."
    );
}

#[tokio::test]
async fn mock_529_key_fails_with_529() {
    let server = start().await;
    let (status, reply) =
        post_json(&server, "/chat/completions", "mock-529", &chat_body("hi")).await;
    assert_eq!(status, 529);
    assert_error(&reply, "server_error", None);
}
