//! Request counters and the last request per path.

use serde_json::json;

use crate::common::{chat_body, client, post, start};

#[tokio::test]
async fn counts_per_key_and_path_and_keeps_the_last_request() {
    let server = start().await;
    assert!(server.last_request("/v1/chat/completions").is_none());
    post(&server, "/chat/completions", "key-a", &chat_body("one")).await;
    post(&server, "/chat/completions", "key-a", &chat_body("two")).await;
    post(
        &server,
        "/chat/completions",
        "mock-500",
        &chat_body("three"),
    )
    .await;
    post(
        &server,
        "/embeddings",
        "key-b",
        &json!({ "model": "m", "input": "x" }),
    )
    .await;
    client()
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(server.total_requests(), 5);
    assert_eq!(server.requests_for_key("key-a"), 2);
    assert_eq!(server.requests_for_key("key-b"), 1);
    assert_eq!(server.requests_for_key("mock-500"), 1);
    assert_eq!(server.requests_for_key("never"), 0);
    assert_eq!(server.requests_for_path("/v1/chat/completions"), 3);
    assert_eq!(server.requests_for_path("/v1/embeddings"), 1);
    assert_eq!(server.requests_for_path("/v1/models"), 1);

    let last = server
        .last_request("/v1/chat/completions")
        .expect("recorded");
    assert_eq!(last.body["messages"][0]["content"], "three");
    let header = |name: &str| {
        last.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Bearer mock-500"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
}

#[tokio::test]
async fn unknown_paths_are_counted_and_answer_404() {
    let server = start().await;
    let response = post(&server, "/v1/chat/completions", "k", &chat_body("oops")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(server.requests_for_path("/v1/v1/chat/completions"), 1);
    assert_eq!(server.total_requests(), 1);
}
