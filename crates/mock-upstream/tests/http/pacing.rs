//! Streams are sent event by event, paced by `chunk_delay`.

use std::time::{Duration, Instant};

use mock_upstream::MockOptions;
use serde_json::json;

use crate::common::{chat_body, post, start_with};

#[tokio::test]
async fn first_event_arrives_before_the_last_is_sent() {
    let options = MockOptions {
        chunk_delay: Duration::from_millis(200),
        reply_words: 3,
        ..MockOptions::default()
    };
    let server = start_with(options).await;
    let mut body = chat_body("pace me");
    body["stream"] = json!(true);
    let started = Instant::now();
    let mut response = post(&server, "/chat/completions", "k", &body).await;
    let first = response.chunk().await.unwrap().expect("first event");
    let first_at = started.elapsed();
    assert!(first.starts_with(b"data: {"));
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let done_at = started.elapsed();
    assert!(rest.ends_with(b"data: [DONE]\n\n"));
    // role, 3 words, finish, [DONE]: 5 gaps of 200 ms.
    assert!(
        first_at < Duration::from_millis(150),
        "first event after {first_at:?}"
    );
    assert!(
        done_at >= Duration::from_millis(1000),
        "stream took {done_at:?}"
    );
    server.shutdown();
}

#[tokio::test]
async fn a_directive_overrides_the_chunk_delay() {
    let server = start_with(MockOptions {
        reply_words: 2,
        ..MockOptions::default()
    })
    .await;
    let mut body = chat_body("slow [[mock:chunk-delay=100]]");
    body["stream"] = json!(true);
    let started = Instant::now();
    let text = post(&server, "/chat/completions", "k", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    // role, 2 words, finish, [DONE]: 4 gaps of 100 ms.
    assert!(started.elapsed() >= Duration::from_millis(400));
}
