//! Embeddings.

use serde_json::{json, Value};

use crate::common::{post_json, start};

fn vector(reply: &Value, index: usize) -> Vec<f64> {
    reply["data"][index]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn vectors_have_the_asked_dimensions_and_are_deterministic() {
    let server = start().await;
    let body =
        json!({ "model": "mock-embedding", "input": ["alpha", "beta", "alpha"], "dimensions": 8 });
    let (status, reply) = post_json(&server, "/embeddings", "k", &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["object"], "list");
    assert_eq!(reply["model"], "mock-embedding");
    assert_eq!(reply["data"].as_array().unwrap().len(), 3);
    for index in 0..3 {
        assert_eq!(reply["data"][index]["object"], "embedding");
        assert_eq!(reply["data"][index]["index"], index);
        let v = vector(&reply, index);
        assert_eq!(v.len(), 8);
        let norm: f64 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }
    assert_eq!(vector(&reply, 0), vector(&reply, 2));
    assert_ne!(vector(&reply, 0), vector(&reply, 1));
    let tokens = wire::tokens::count("alpha") * 2 + wire::tokens::count("beta");
    assert_eq!(
        reply["usage"],
        json!({ "prompt_tokens": tokens, "total_tokens": tokens })
    );

    let (_, again) = post_json(
        &server,
        "/embeddings",
        "k",
        &json!({ "model": "m", "input": "alpha", "dimensions": 8 }),
    )
    .await;
    assert_eq!(vector(&again, 0), vector(&reply, 0));
}

#[tokio::test]
async fn token_inputs_and_default_dimensions() {
    let server = start().await;
    let body = json!({ "model": "m", "input": [[1, 2, 3], [4]] });
    let (_, reply) = post_json(&server, "/embeddings", "k", &body).await;
    assert_eq!(vector(&reply, 0).len(), 16);
    assert_eq!(vector(&reply, 1).len(), 16);
    assert_eq!(reply["usage"]["prompt_tokens"], 4);
}
