//! Scripted answers per key.

use mock_upstream::Step;

use crate::common::{chat_body, post, start};

#[tokio::test]
async fn a_script_is_consumed_in_order_then_replies_resume() {
    let server = start().await;
    server.script(
        "sk-scripted",
        vec![
            Step::Status {
                status: 429,
                retry_after_s: Some(3),
            },
            Step::Status {
                status: 500,
                retry_after_s: None,
            },
            Step::Garbage,
            Step::Reply,
        ],
    );
    let body = chat_body("hi");
    // Another key is not affected.
    assert_eq!(
        post(&server, "/chat/completions", "sk-other", &body)
            .await
            .status(),
        200
    );

    let first = post(&server, "/chat/completions", "sk-scripted", &body).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    let second = post(&server, "/chat/completions", "sk-scripted", &body).await;
    assert_eq!(second.status(), 500);
    assert!(second.headers().get("retry-after").is_none());
    let third = post(&server, "/chat/completions", "sk-scripted", &body).await;
    assert_eq!(third.status(), 200);
    assert!(third.json::<serde_json::Value>().await.is_err());
    for _ in 0..2 {
        let reply: serde_json::Value = post(&server, "/chat/completions", "sk-scripted", &body)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(reply["object"], "chat.completion");
    }
    assert_eq!(server.requests_for_key("sk-scripted"), 5);
}

#[tokio::test]
async fn a_script_overrides_a_behaviour_key() {
    let server = start().await;
    server.script("mock-401", vec![Step::Reply]);
    let body = chat_body("hi");
    assert_eq!(
        post(&server, "/chat/completions", "mock-401", &body)
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&server, "/chat/completions", "mock-401", &body)
            .await
            .status(),
        401
    );
}
