//! `GET /v1/models` (`ListModelsResponse`), rendered once at start.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use crate::admit::admit;
use crate::shared::Shared;

/// `created` of every listed model: a fixed date, so bodies are reproducible.
const CREATED: u64 = 1_700_000_000;

/// The list body for `models`.
pub(crate) fn render(models: &[String]) -> Bytes {
    let data: Vec<_> = models
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": CREATED, "owned_by": "mock" }))
        .collect();
    let body = json!({ "object": "list", "data": data });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Handles `GET /v1/models`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Err(response) = admit(&shared, request).await {
        return response;
    }
    if !shared.pause(shared.options.first_byte_delay).await {
        return crate::errors::status(503, None);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        shared.models_body.clone(),
    )
        .into_response()
}
