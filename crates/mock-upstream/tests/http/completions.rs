//! Legacy text completions.

use serde_json::json;

use crate::common::{post, post_json, sse_data, start};

#[tokio::test]
async fn completion_has_the_openai_shape() {
    let server = start().await;
    let body = json!({ "model": "mock-gpt", "prompt": ["Once upon", "a time"] });
    let (status, reply) = post_json(&server, "/completions", "k", &body).await;
    assert_eq!(status, 200);
    assert!(reply["id"].as_str().unwrap().starts_with("cmpl-mock"));
    assert_eq!(reply["object"], "text_completion");
    assert_eq!(reply["model"], "mock-gpt");
    let choice = &reply["choices"][0];
    let text = choice["text"].as_str().unwrap();
    assert!(text.starts_with("Mock completion of: Once upon"), "{text}");
    assert_eq!(choice["index"], 0);
    assert!(choice["logprobs"].is_null() && choice.get("logprobs").is_some());
    assert_eq!(choice["finish_reason"], "stop");
    let prompt = wire::tokens::count("Once upon") + wire::tokens::count("a time");
    assert_eq!(reply["usage"]["prompt_tokens"], prompt);
    assert_eq!(
        reply["usage"]["completion_tokens"],
        wire::tokens::count(text)
    );
}

#[tokio::test]
async fn completion_streams_words_then_usage_then_done() {
    let server = start().await;
    let body = json!({ "model": "mock-gpt", "prompt": "Tell me", "stream": true,
        "stream_options": { "include_usage": true }, "max_tokens": 100 });
    let text = post(&server, "/completions", "k", &body)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    // 12 words, the finishing chunk, the usage chunk.
    assert_eq!(chunks.len(), 14);
    assert!(chunks
        .iter()
        .all(|chunk| chunk["object"] == "text_completion"));
    assert_eq!(chunks[0]["choices"][0]["text"], "Mock ");
    assert_eq!(chunks[12]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[13]["choices"], json!([]));
    assert_eq!(
        chunks[13]["usage"]["prompt_tokens"],
        wire::tokens::count("Tell me")
    );
}
