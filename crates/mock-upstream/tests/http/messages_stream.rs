//! Anthropic Messages streams: event sequence, framing, tool input pieces, pacing.

use std::time::{Duration, Instant};

use mock_upstream::MockOptions;
use serde_json::{json, Value};

use crate::common::{
    messages_body, named_events, post_messages, post_messages_json, start, start_with,
};

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn text_stream_has_the_real_event_sequence() {
    let server = start().await;
    let mut body = messages_body("Stream this please");
    let (_, plain) = post_messages_json(&server, "k", &body).await;
    body["stream"] = json!(true);
    let response = post_messages(&server, "k", &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(response.headers().contains_key("request-id"));
    assert!(response
        .headers()
        .contains_key("anthropic-ratelimit-requests-remaining"));
    let text = response.text().await.unwrap();
    let events = named_events(&text);

    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 12]);
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names(&events), expected);

    let start = &events[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_mock"));
    assert_eq!(start["type"], "message");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "mock-claude");
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null() && start.get("stop_reason").is_some());
    assert!(start["stop_sequence"].is_null() && start.get("stop_sequence").is_some());
    assert_eq!(
        start["usage"]["input_tokens"],
        plain["usage"]["input_tokens"]
    );
    assert_eq!(start["usage"]["output_tokens"], 1);

    assert_eq!(
        events[1].1,
        json!({ "type": "content_block_start", "index": 0,
                "content_block": { "type": "text", "text": "" } })
    );
    assert_eq!(events[2].1, json!({ "type": "ping" }));
    let mut streamed = String::new();
    for (_, delta) in &events[3..15] {
        assert_eq!(delta["index"], 0);
        assert_eq!(delta["delta"]["type"], "text_delta");
        streamed.push_str(delta["delta"]["text"].as_str().unwrap());
    }
    assert_eq!(streamed, plain["content"][0]["text"].as_str().unwrap());
    assert_eq!(events[3].1["delta"]["text"], "Mock ");
    assert_eq!(
        events[15].1,
        json!({ "type": "content_block_stop", "index": 0 })
    );
    assert_eq!(
        events[16].1,
        json!({ "type": "message_delta",
                "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                "usage": { "output_tokens": plain["usage"]["output_tokens"] } })
    );
    assert_eq!(events[17].1, json!({ "type": "message_stop" }));
}

#[tokio::test]
async fn truncated_stream_ends_with_max_tokens() {
    let server = start().await;
    let mut body = messages_body("Hello");
    body["max_tokens"] = json!(3);
    body["stream"] = json!(true);
    let text = post_messages(&server, "k", &body)
        .await
        .text()
        .await
        .unwrap();
    let events = named_events(&text);
    // "Mock", "reply": two deltas.
    assert_eq!(events.len(), 3 + 2 + 3);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn tool_stream_sends_input_json_pieces() {
    let server = start().await;
    let mut body = messages_body("Weather?");
    body["tools"] = json!([{ "name": "get_weather", "input_schema": { "type": "object",
        "properties": { "city": { "type": "string" }, "days": { "type": "integer" } },
        "required": ["city", "days"] } }]);
    body["tool_choice"] = json!({ "type": "any" });
    let (_, plain) = post_messages_json(&server, "k", &body).await;
    body["stream"] = json!(true);
    let text = post_messages(&server, "k", &body)
        .await
        .text()
        .await
        .unwrap();
    let events = named_events(&text);
    let names = names(&events);
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );

    let block = &events[1].1["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_mock"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));

    let deltas = &events[3..events.len() - 3];
    assert!(deltas.len() >= 3, "several pieces: {deltas:?}");
    let mut input = String::new();
    for (name, delta) in deltas {
        assert_eq!(name, "content_block_delta");
        assert_eq!(delta["index"], 0);
        assert_eq!(delta["delta"]["type"], "input_json_delta");
        input.push_str(delta["delta"]["partial_json"].as_str().unwrap());
    }
    assert_eq!(deltas[0].1["delta"]["partial_json"], "");
    // No piece but the whole is valid JSON on its own.
    assert!(
        serde_json::from_str::<Value>(deltas[1].1["delta"]["partial_json"].as_str().unwrap())
            .is_err()
    );
    let input: Value = serde_json::from_str(&input).expect("pieces concatenate to JSON");
    assert_eq!(input, plain["content"][0]["input"]);
    assert_eq!(input, json!({ "city": "mock", "days": 1 }));

    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["output_tokens"],
        plain["usage"]["output_tokens"]
    );
}

#[tokio::test]
async fn each_event_is_its_own_body_frame_paced_by_chunk_delay() {
    let server = start_with(MockOptions {
        chunk_delay: Duration::from_millis(40),
        reply_words: 2,
        ..MockOptions::default()
    })
    .await;
    let mut body = messages_body("pace me");
    body["stream"] = json!(true);
    let started = Instant::now();
    let mut response = post_messages(&server, "k", &body).await;
    let mut frames = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        frames.push(String::from_utf8(chunk.to_vec()).unwrap());
    }
    // start, block start, ping, 2 deltas, block stop, message delta, stop: 7 gaps.
    assert!(started.elapsed() >= Duration::from_millis(280));
    assert_eq!(frames.len(), 8, "{frames:?}");
    for frame in &frames {
        assert_eq!(named_events(frame).len(), 1, "{frame:?}");
    }
    server.shutdown();
}

#[tokio::test]
async fn chunk_delay_directive_paces_a_messages_stream() {
    let server = start_with(MockOptions {
        reply_words: 2,
        ..MockOptions::default()
    })
    .await;
    let mut body = messages_body("slow [[mock:chunk-delay=50]]");
    body["stream"] = json!(true);
    let started = Instant::now();
    let text = post_messages(&server, "k", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    assert!(started.elapsed() >= Duration::from_millis(350));
}

#[tokio::test]
async fn hang_after_first_chunk_sends_message_start_only() {
    let server = start().await;
    let mut body = messages_body("[[mock:hang-after-first-chunk]]");
    body["stream"] = json!(true);
    let mut response = post_messages(&server, "k", &body).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("first event");
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert_eq!(names(&named_events(&first)), ["message_start"]);
    let next = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await;
    assert!(next.is_err(), "nothing after message_start");
    server.shutdown();
    let end = tokio::time::timeout(Duration::from_secs(3), response.chunk())
        .await
        .expect("ends");
    assert!(end.is_err(), "a cut stream is an error: {end:?}");
}
