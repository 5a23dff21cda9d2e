//! Routing: capabilities checked before the call, tiers, and fallbacks.

use mock_upstream::Step;
use serde_json::{json, Value};

use crate::common::{create_key_in_tier, error_of, Setup, TestGateway};

const PLAIN_MODEL: &str = r#"
[[models]]
name = "plain"
provider = "local"
upstream_model = "mock-gpt"
capabilities = ["chat"]
"#;

#[tokio::test]
async fn tools_and_images_need_a_model_that_supports_them() {
    let gw = TestGateway::start_with(Setup {
        extra: PLAIN_MODEL,
        ..Default::default()
    })
    .await;
    let tools = json!({"model": "plain", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (status, error) = error_of(gw.post("/v1/chat/completions", tools).await).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));
    assert!(
        error["message"].as_str().unwrap().contains("tools"),
        "{error}"
    );

    let image = json!({"model": "plain", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let (status, error) = error_of(gw.post("/v1/chat/completions", image).await).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("vision"),
        "{error}"
    );
    assert_eq!(
        gw.mock.total_requests(),
        0,
        "refused before any upstream call"
    );

    // The same tools request on a model with the capability goes through.
    let tools = json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    assert_eq!(gw.post("/v1/chat/completions", tools).await.status(), 200);
}

const FREE_TIER: &str = r#"
[tiers.free]
models = ["mock-gpt"]
route = { "gpt-4o" = "mock-gpt" }
"#;

#[tokio::test]
async fn a_tier_restricts_and_reroutes_models() {
    let gw = TestGateway::start_with(Setup {
        extra: FREE_TIER,
        ..Default::default()
    })
    .await;
    let (_, free_key) = create_key_in_tier(gw.running(), "free-user", "free").await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let send = |model: &str| {
        gw.client
            .post(&url)
            .bearer_auth(&free_key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let (status, error) = error_of(send("renamed").await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("model_not_allowed"))
    );
    assert!(error["message"].as_str().unwrap().contains("free"));

    let response = send("gpt-4o").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        gw.mock.last_request("/v1/chat/completions").unwrap().body["model"],
        "mock-gpt"
    );

    let models = |key: String| {
        let client = gw.client.clone();
        let url = format!("{}/v1/models", gw.url);
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(models(free_key.clone()).await, ["mock-gpt", "gpt-4o"]);
    assert_eq!(
        models(gw.key.clone()).await,
        ["mock-gpt", "renamed", "mock-embedding"]
    );
}

const FALLBACKS: &str = r#"
[[providers]]
name = "flaky"
kind = "openai_compatible"
base_url = "{mock}"
keys = [ { id = "flaky-1", key_env = "FLAKY_KEY" } ]
[[models]]
name = "primary"
provider = "flaky"
upstream_model = "mock-gpt"
context_window = 8000
fallbacks = ["backup-small", "backup"]
[[models]]
name = "backup-small"
provider = "local"
upstream_model = "mock-gpt"
context_window = 4000
[[models]]
name = "backup"
provider = "local"
upstream_model = "mock-gpt"
context_window = 100000
"#;

fn primary(content: &str) -> Value {
    json!({"model": "primary", "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn a_failing_model_falls_back_in_order() {
    let gw = TestGateway::start_with(Setup {
        extra: FALLBACKS,
        env: vec![("FLAKY_KEY", "mock-500-flaky")],
        ..Default::default()
    })
    .await;
    let response = gw.post("/v1/chat/completions", primary("hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(gw.mock.requests_for_key("mock-500-flaky"), 1);
    assert_eq!(gw.mock.requests_for_key("sk-upstream-one"), 1);
    let rows = gw.wait_for_rows(1).await;
    assert_eq!(rows[0].model_requested.as_deref(), Some("primary"));
    assert_eq!(rows[0].model_served.as_deref(), Some("backup-small"));
    assert_eq!(rows[0].provider.as_deref(), Some("local"));
}

#[tokio::test]
async fn when_every_model_fails_the_502_names_what_was_tried() {
    let gw = TestGateway::start_with(Setup {
        extra: FALLBACKS,
        env: vec![("FLAKY_KEY", "mock-500-flaky")],
        upstream_keys: vec![("local-1", "mock-500-local")],
        ..Default::default()
    })
    .await;
    let (status, error) = error_of(gw.post("/v1/chat/completions", primary("hello")).await).await;
    assert_eq!(status, 502);
    let message = error["message"].as_str().unwrap();
    for expected in [
        "`primary` on provider `flaky`",
        "flaky-1",
        "`backup-small` on provider `local`",
        "`backup` on provider `local`",
        "local-1",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in {message}"
        );
    }
}

#[tokio::test]
async fn a_client_error_is_not_retried_elsewhere() {
    let gw = TestGateway::start_with(Setup {
        extra: FALLBACKS,
        env: vec![("FLAKY_KEY", "sk-flaky")],
        ..Default::default()
    })
    .await;
    gw.mock.script(
        "sk-flaky",
        vec![Step::Status {
            status: 422,
            retry_after_s: None,
        }],
    );
    let (status, _) = error_of(gw.post("/v1/chat/completions", primary("hello")).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        gw.mock.requests_for_key("sk-upstream-one"),
        0,
        "no fallback on a client error"
    );
}

/// An upstream that answers every chat request with OpenAI's context-length error.
async fn context_limited_upstream() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            (
                http::StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {
                    "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_context_length_error_falls_back_to_a_larger_window_only() {
    let url = context_limited_upstream().await;
    let extra: &'static str = Box::leak(
        FALLBACKS
            .replace("base_url = \"{mock}\"", &format!("base_url = \"{url}\""))
            .into_boxed_str(),
    );
    let gw = TestGateway::start_with(Setup {
        extra,
        env: vec![("FLAKY_KEY", "sk-flaky")],
        ..Default::default()
    })
    .await;
    let response = gw
        .post("/v1/chat/completions", primary("a very long prompt"))
        .await;
    assert_eq!(response.status(), 200);
    let rows = gw.wait_for_rows(1).await;
    // backup-small (4,000) is skipped: it is not larger than primary's 8,000.
    assert_eq!(rows[0].model_served.as_deref(), Some("backup"));

    // Without a larger fallback, the client sees the upstream's own 400 and code.
    let only_small: &'static str = Box::leak(
        extra
            .replace(
                "fallbacks = [\"backup-small\", \"backup\"]",
                "fallbacks = [\"backup-small\"]",
            )
            .into_boxed_str(),
    );
    let gw = TestGateway::start_with(Setup {
        extra: only_small,
        env: vec![("FLAKY_KEY", "sk-flaky")],
        ..Default::default()
    })
    .await;
    let (status, error) = error_of(
        gw.post("/v1/chat/completions", primary("a very long prompt"))
            .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("context_length_exceeded"))
    );
    assert_eq!(gw.mock.total_requests(), 0);
}
