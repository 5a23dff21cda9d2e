//! OpenAI's `x-ratelimit-*` headers on successful answers.

use reqwest::header::HeaderMap;
use serde_json::json;

use crate::common::{chat_body, post, start};

fn header(headers: &HeaderMap, name: &str) -> String {
    headers[name].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn successful_answers_carry_rate_limit_headers() {
    let server = start().await;
    let response = post(&server, "/chat/completions", "sk-rl", &chat_body("hi")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(header(&headers, "x-ratelimit-limit-requests"), "10000");
    assert_eq!(header(&headers, "x-ratelimit-remaining-requests"), "9999");
    assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "2000000");
    let used = reply["usage"]["total_tokens"].as_u64().unwrap();
    assert_eq!(
        header(&headers, "x-ratelimit-remaining-tokens"),
        (2_000_000 - used).to_string()
    );

    // Per key, counting down across endpoints and in streams.
    let mut body = chat_body("hi");
    body["stream"] = json!(true);
    let response = post(&server, "/chat/completions", "sk-rl", &body).await;
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining-requests"),
        "9998"
    );
    let response = post(
        &server,
        "/completions",
        "sk-rl",
        &json!({ "model": "m", "prompt": "x" }),
    )
    .await;
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining-requests"),
        "9997"
    );
    let response = post(
        &server,
        "/embeddings",
        "sk-rl",
        &json!({ "model": "m", "input": "x" }),
    )
    .await;
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining-requests"),
        "9996"
    );
    let response = post(&server, "/chat/completions", "sk-other", &chat_body("hi")).await;
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining-requests"),
        "9999"
    );

    // Errors do not carry them (a 429 has its own).
    let response = post(&server, "/chat/completions", "mock-500", &chat_body("hi")).await;
    assert!(response
        .headers()
        .get("x-ratelimit-limit-requests")
        .is_none());
}
