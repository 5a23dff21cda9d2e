//! Relaying: non-stream, stream (order, timing, usage), embeddings, models, rewriting.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::{chat, chat_stream, error_of, TestGateway};

#[tokio::test]
async fn non_stream_chat_is_relayed_and_metered() {
    let mut gw = TestGateway::start().await;
    let response = gw
        .post("/v1/chat/completions", chat("Hello from the test"))
        .await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(request_id.starts_with("req_"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello from the test"));
    let usage = body["usage"].clone();

    // The upstream saw the upstream key, not the client key.
    let seen = gw.mock.last_request("/v1/chat/completions").unwrap();
    let auth = seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    assert_eq!(auth, "Bearer sk-upstream-one");

    gw.stop().await;
    let rows = gw.usage_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.request_id, request_id);
    assert_eq!(row.key_id.as_deref(), Some(gw.key_id.as_str()));
    assert_eq!(row.owner.as_deref(), Some("owner-1"));
    assert_eq!((row.status, row.stream), (200, false));
    assert_eq!(row.prompt_tokens, usage["prompt_tokens"].as_i64().unwrap());
    assert_eq!(
        row.completion_tokens,
        usage["completion_tokens"].as_i64().unwrap()
    );
    // 1.0 per 1M input, 2.0 per 1M output, in nano-units.
    assert_eq!(
        row.cost_nanos,
        row.prompt_tokens * 1000 + row.completion_tokens * 2000
    );
    assert_eq!(row.upstream_key_id.as_deref(), Some("up-1"));
    assert_eq!(row.provider.as_deref(), Some("local"));
    assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
}

/// Reads an SSE response, returning each `data:` payload and when it arrived.
async fn read_events(response: reqwest::Response, started: Instant) -> Vec<(Duration, String)> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        buffer.push_str(std::str::from_utf8(&piece.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.trim().strip_prefix("data: ") {
                events.push((started.elapsed(), data.to_owned()));
            }
        }
    }
    events
}

#[tokio::test]
async fn stream_is_relayed_chunk_by_chunk_as_the_upstream_sends() {
    let mut gw = TestGateway::start().await;
    let started = Instant::now();
    let response = gw
        .post(
            "/v1/chat/completions",
            chat_stream("pace me [[mock:chunk-delay=150]]"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = read_events(response, started).await;
    let total = started.elapsed();

    // 1 role chunk + 12 words + 1 finish chunk + [DONE]; 150 ms apart upstream.
    assert!(events.len() >= 5, "{events:?}");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let first = events[0].0;
    assert!(
        total >= Duration::from_millis(150 * 10),
        "upstream pacing not applied: {total:?}"
    );
    assert!(
        first < Duration::from_millis(600),
        "first chunk arrived only after {first:?}"
    );
    assert!(
        first + Duration::from_millis(1000) < total,
        "first chunk {first:?} not well before the end {total:?}"
    );
    // Chunks arrive spread out, in order.
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // The client did not ask for usage: the chunk the gateway asked for is not relayed.
    assert!(
        chunks.iter().all(|c| c["choices"]
            .as_array()
            .map(|a| !a.is_empty())
            .unwrap_or(false)),
        "usage-only chunk leaked"
    );

    // But the gateway asked the upstream for it, and metered it.
    let seen = gw.mock.last_request("/v1/chat/completions").unwrap();
    assert_eq!(seen.body["stream_options"]["include_usage"], true);
    gw.stop().await;
    let rows = gw.usage_rows().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].stream);
    assert!(
        rows[0].completion_tokens > 0 && rows[0].prompt_tokens > 0,
        "{:?}",
        rows[0]
    );
    assert!(rows[0].ttfb_ms.unwrap() < 600);
}

#[tokio::test]
async fn stream_usage_chunk_is_relayed_when_the_client_asks() {
    let gw = TestGateway::start().await;
    let mut body = chat_stream("usage please");
    body["stream_options"] = json!({"include_usage": true});
    let response = gw.post("/v1/chat/completions", body).await;
    let events = read_events(response, Instant::now()).await;
    let usage_chunks: Vec<Value> = events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap())
        .filter(|c| c["usage"].is_object())
        .collect();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(usage_chunks[0]["choices"], json!([]));
}

#[tokio::test]
async fn alias_and_upstream_model_name_are_rewritten() {
    let gw = TestGateway::start().await;
    let response = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "renamed", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        gw.mock.last_request("/v1/chat/completions").unwrap().body["model"],
        "mock-gpt"
    );
    let response = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "gpt-alias", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    // An alias reaches the upstream under the model's upstream name.
    assert_eq!(
        gw.mock.last_request("/v1/chat/completions").unwrap().body["model"],
        "mock-gpt"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
}

#[tokio::test]
async fn embeddings_and_completions_are_relayed() {
    let gw = TestGateway::start().await;
    let response = gw
        .post(
            "/v1/embeddings",
            json!({"model": "mock-embedding", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let response = gw
        .post(
            "/v1/completions",
            json!({"model": "mock-gpt", "prompt": "Say this"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
}

#[tokio::test]
async fn models_lists_the_model_table() {
    let gw = TestGateway::start().await;
    let response = gw
        .client
        .get(format!("{}/v1/models", gw.url))
        .header("x-api-key", &gw.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock-gpt", "renamed", "mock-embedding"]);
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["owned_by"], "local");
}

#[tokio::test]
async fn a_failing_upstream_key_fails_over_to_the_next() {
    let gw = TestGateway::start_with(crate::common::Setup {
        upstream_keys: vec![("bad", "mock-500-key"), ("good", "sk-good")],
        ..Default::default()
    })
    .await;
    for _ in 0..4 {
        let response = gw.post("/v1/chat/completions", chat("hi")).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(gw.mock.requests_for_key("sk-good"), 4);
    assert!(gw.mock.requests_for_key("mock-500-key") >= 1);
}

#[tokio::test]
async fn many_concurrent_calls_each_leave_one_usage_row() {
    let mut gw = TestGateway::start().await;
    let calls = (0..60).map(|i| {
        let body = if i % 2 == 0 {
            chat(&format!("call {i}"))
        } else {
            chat_stream(&format!("call {i}"))
        };
        gw.post("/v1/chat/completions", body)
    });
    let responses = futures_util::future::join_all(calls).await;
    for r in responses {
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    gw.stop().await;
    let rows = gw.usage_rows().await;
    assert_eq!(rows.len(), 60);
    assert!(rows
        .iter()
        .all(|r| r.status == 200 && r.completion_tokens > 0));
}

/// POSTs to the relay paths skip the router; everything else on those paths is still
/// the router's: other methods, CORS preflights, and near-miss paths.
#[tokio::test]
async fn other_methods_and_paths_near_the_relay_routes_get_the_routers_answers() {
    let gw = TestGateway::start().await;
    let url = format!("{}/v1/chat/completions", gw.url);

    let get = gw
        .client
        .get(&url)
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405, "GET on a relay route");
    assert!(get.headers().contains_key("x-request-id"));

    let preflight = gw
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204, "CORS preflight");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    let near = gw
        .client
        .post(format!("{url}/"))
        .bearer_auth(&gw.key)
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(near).await;
    assert_eq!(
        (status, error["type"].as_str()),
        (404, Some("invalid_request_error"))
    );
    assert_eq!(gw.mock.total_requests(), 0);
}
