//! Chat streams: event order, usage only when asked, `[DONE]`.

use serde_json::{json, Value};

use crate::common::{chat_body, post, post_json, sse_data, start};

async fn stream(body: &Value) -> (String, Vec<String>) {
    let server = start().await;
    let response = post(&server, "/chat/completions", "k", body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    server.shutdown();
    (content_type, sse_data(&text))
}

fn parse_chunks(events: &[String]) -> Vec<Value> {
    events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect()
}

#[tokio::test]
async fn events_come_in_order_and_end_with_done() {
    let mut body = chat_body("Stream this please");
    body["stream"] = json!(true);
    let (content_type, events) = stream(&body).await;
    assert!(content_type.starts_with("text/event-stream"));
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks = parse_chunks(&events);
    // role, 12 words, finish; no usage chunk without include_usage.
    assert_eq!(chunks.len(), 14);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "mock-gpt");
        assert!(chunk.get("usage").is_none(), "{chunk}");
        assert!(chunk["choices"][0]["logprobs"].is_null());
        assert_eq!(chunk["choices"][0]["index"], 0);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({ "role": "assistant", "content": "" })
    );
    for chunk in &chunks[..13] {
        assert!(chunk["choices"][0]["finish_reason"].is_null());
    }
    let last = &chunks[13]["choices"][0];
    assert_eq!(last["delta"], json!({}));
    assert_eq!(last["finish_reason"], "stop");
}

#[tokio::test]
async fn pieces_concatenate_to_the_non_stream_content() {
    let server = start().await;
    let (_, plain) = post_json(&server, "/chat/completions", "k", &chat_body("Same words")).await;
    let mut body = chat_body("Same words");
    body["stream"] = json!(true);
    let text = post(&server, "/chat/completions", "k", &body)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    let streamed: String = parse_chunks(&events)
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        streamed,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(
        parse_chunks(&events)[1]["choices"][0]["delta"]["content"],
        "Mock "
    );
}

#[tokio::test]
async fn usage_chunk_only_when_asked() {
    let mut body = chat_body("Count me");
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let (_, events) = stream(&body).await;
    let chunks = parse_chunks(&events);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let prompt = wire::tokens::count("Count me") + 3;
    assert_eq!(usage["usage"]["prompt_tokens"], prompt);
    let completion = usage["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(
        usage["usage"]["total_tokens"],
        u64::from(prompt) + completion
    );
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(
            chunk["usage"].is_null() && chunk.get("usage").is_some(),
            "{chunk}"
        );
    }

    body["messages"][0]["content"] = json!("Count me [[mock:no-usage]]");
    let (_, events) = stream(&body).await;
    let chunks = parse_chunks(&events);
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn max_tokens_ends_the_stream_with_length() {
    let mut body = chat_body("Hi");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(3);
    let (_, events) = stream(&body).await;
    let chunks = parse_chunks(&events);
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
}
