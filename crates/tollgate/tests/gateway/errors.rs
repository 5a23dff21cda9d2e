//! Bad input and upstream failures get OpenAI-shaped errors with the right status.

use serde_json::json;

use crate::common::{chat, error_of, Setup, TestGateway};

#[tokio::test]
async fn malformed_json_is_400_and_says_so() {
    let gw = TestGateway::start().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&gw.key)
        .header("content-type", "application/json")
        .body("{\"model\": \"mock-gpt\", \"messages\": [")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"].as_str().unwrap().contains("JSON"),
        "{error}"
    );
    assert_eq!(gw.wait_for_rows(1).await[0].status, 400);
}

#[tokio::test]
async fn missing_model_and_unknown_model_and_wrong_capability() {
    let gw = TestGateway::start().await;
    let (status, error) = error_of(
        gw.post("/v1/chat/completions", json!({"messages": []}))
            .await,
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));

    let (status, error) = error_of(
        gw.post(
            "/v1/chat/completions",
            json!({"model": "gpt-9", "messages": []}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "model_not_found");
    assert!(error["message"].as_str().unwrap().contains("gpt-9"));

    let (status, error) = error_of(
        gw.post("/v1/embeddings", json!({"model": "mock-gpt", "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("embeddings"),
        "{error}"
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let gw = TestGateway::start_with(Setup {
        server: "max_body_bytes = 1024",
        ..Default::default()
    })
    .await;
    let big = "x".repeat(4096);
    let (status, error) = error_of(gw.post("/v1/chat/completions", chat(&big)).await).await;
    assert_eq!(status, 413);
    assert!(error["message"].as_str().unwrap().contains("1024"));
    // Without a content-length (chunked), the limit still holds.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&gw.key)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn upstream_500_becomes_502_naming_what_was_tried() {
    let gw = TestGateway::start().await;
    let (status, error) = error_of(
        gw.post("/v1/chat/completions", chat("fail [[mock:500]]"))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("mock-gpt") && message.contains("local") && message.contains("up-1"),
        "{message}"
    );
    let rows = gw.wait_for_rows(1).await;
    assert_eq!(
        (rows[0].status, rows[0].error_type.as_deref()),
        (502, Some("upstream_server_error"))
    );
}

#[tokio::test]
async fn upstream_hang_becomes_504() {
    let gw = TestGateway::start_with(Setup {
        server: "upstream_first_byte_timeout_ms = 300\nmax_retries = 0",
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (status, error) =
        error_of(gw.post("/v1/chat/completions", chat("[[mock:hang]]")).await).await;
    assert_eq!(status, 504);
    assert_eq!(error["code"], "upstream_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn upstream_garbage_becomes_502() {
    let gw = TestGateway::start_with(Setup {
        server: "max_retries = 0",
        ..Default::default()
    })
    .await;
    let (status, error) = error_of(
        gw.post("/v1/chat/completions", chat("[[mock:garbage]]"))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{error}"
    );
}

#[tokio::test]
async fn upstream_401_message_never_shows_the_upstream_secret() {
    let gw = TestGateway::start_with(Setup {
        upstream_keys: vec![("only", "mock-401-secret-value")],
        ..Default::default()
    })
    .await;
    let response = gw.post("/v1/chat/completions", chat("hi")).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("mock-401-secret-value"), "{text}");
}

#[tokio::test]
async fn unknown_path_is_404_in_openai_shape() {
    let gw = TestGateway::start().await;
    let response = gw
        .client
        .get(format!("{}/v1/nothing", gw.url))
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(response).await;
    assert_eq!(status, 404);
}
