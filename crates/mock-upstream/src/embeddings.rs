//! `POST /v1/embeddings`: deterministic unit vectors derived from each input.
//!
//! Vectors are always float arrays: `encoding_format: "base64"` is ignored, because
//! `CreateEmbeddingResponse` only allows arrays (OpenAI's SDKs accept both).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;

use crate::admit::{admit, Admitted};
use crate::chat_body::json_response;
use crate::directives::Directives;
use crate::errors;
use crate::outcome::{self, Dialect};
use crate::ratelimit;
use crate::request::{EmbeddingRequest, Input};
use crate::shared::Shared;

/// Vector length when the request gives no `dimensions`.
const DEFAULT_DIMENSIONS: u32 = 16;
/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: u32 = 8192;

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vec<f32>,
}

/// Handles one embeddings request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Admitted { body, key_requests } = match admit(&shared, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let parsed: EmbeddingRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => return errors::invalid_request(&format!("Invalid JSON body: {error}"), None),
    };
    let Some(model) = parsed.model.as_deref() else {
        return errors::invalid_request("You must provide a model parameter.", Some("model"));
    };
    let items = parsed.input.as_ref().map(|i| i.items()).unwrap_or_default();
    if items.is_empty() {
        return errors::invalid_request("'input' must not be empty.", Some("input"));
    }
    let dimensions = parsed.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if dimensions == 0 || dimensions > MAX_DIMENSIONS {
        let message = format!("'dimensions' must be between 1 and {MAX_DIMENSIONS}.");
        return errors::invalid_request(&message, Some("dimensions"));
    }
    let mut directives = Directives::default();
    items.iter().for_each(|item| directives.scan(item.text()));
    let first_byte_delay = directives
        .first_byte_delay
        .unwrap_or(shared.options.first_byte_delay);
    if let Some(outcome) = directives.outcome {
        return outcome::answer(&shared, outcome, first_byte_delay, Dialect::OpenAi).await;
    }

    let data = items
        .iter()
        .enumerate()
        .map(|(index, item)| Embedding {
            object: "embedding",
            index,
            embedding: vector(item, dimensions as usize),
        })
        .collect();
    let prompt_tokens = items.iter().map(Input::tokens).fold(0, u32::saturating_add);
    if !shared.pause(first_byte_delay).await {
        return errors::status(503, None);
    }
    let mut response = json_response(&EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    });
    ratelimit::openai(response.headers_mut(), key_requests, prompt_tokens);
    response
}

/// A unit vector of `dimensions` floats seeded by the item's content.
fn vector(item: &Input<'_>, dimensions: usize) -> Vec<f32> {
    let mut state = match item {
        Input::Text(text) => fnv1a(text.as_bytes()),
        Input::Tokens(tokens) => tokens.iter().fold(FNV_OFFSET, |hash, token| {
            fnv1a_from(hash, &token.to_le_bytes())
        }),
    };
    let mut floats: Vec<f32> = (0..dimensions)
        .map(|_| {
            let bits = splitmix64(&mut state) >> 40; // 24 random bits
            (bits as f32 / (1u64 << 23) as f32) - 1.0 // in [-1, 1)
        })
        .collect();
    let norm = floats.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        floats.iter_mut().for_each(|x| *x /= norm);
    }
    floats
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

fn fnv1a_from(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = vector(&Input::Text("hello"), 16);
        assert_eq!(a, vector(&Input::Text("hello"), 16));
        assert_ne!(a, vector(&Input::Text("hellp"), 16));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(vector(&Input::Tokens(&[1, 2]), 5).len(), 5);
    }
}
