//! The model list and health.

use mock_upstream::MockOptions;
use serde_json::{json, Value};

use crate::common::{client, start, start_with};

#[tokio::test]
async fn lists_the_configured_models() {
    let server = start().await;
    let reply: Value = client()
        .get(format!("{}/models", server.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["object"], "list");
    let ids: Vec<&str> = reply["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock-gpt", "mock-embedding"]);
    let first = &reply["data"][0];
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "mock");
    assert!(first["created"].is_u64());

    let options = MockOptions {
        models: vec!["only-one".into()],
        ..MockOptions::default()
    };
    let other = start_with(options).await;
    let reply: Value = client()
        .get(format!("{}/models", other.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["data"],
        json!([{ "id": "only-one", "object": "model", "created": 1_700_000_000, "owned_by": "mock" }])
    );
}

#[tokio::test]
async fn health_needs_no_key_and_is_not_counted() {
    let server = start().await;
    let response = client()
        .get(format!("http://{}/health", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.total_requests(), 0);
}
