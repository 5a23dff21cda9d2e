//! The only module that knows axum: routes, layers, handlers and the error mapping.
//!
//! Layer order, outermost first: request id → (on `/v1`) authentication → handler.

pub mod anthropic_api;
pub mod client_api;
pub mod error;
pub mod layers;
pub mod server;

use axum::extract::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use error::ApiError;

/// Every route the gateway serves.
pub fn router(state: AppState) -> Router {
    let client_api = Router::new()
        .route("/v1/chat/completions", post(client_api::chat_completions))
        .route("/v1/completions", post(client_api::completions))
        .route("/v1/embeddings", post(client_api::embeddings))
        .route("/v1/models", get(client_api::models))
        .route_layer(from_fn_with_state(state.clone(), layers::authenticate));
    let anthropic_api = Router::new()
        .route("/v1/messages", post(anthropic_api::messages))
        .route_layer(from_fn_with_state(
            state.clone(),
            layers::authenticate_anthropic,
        ));
    Router::new()
        .merge(client_api)
        .merge(anthropic_api)
        .route("/health", get(health))
        .fallback(unknown_path)
        .layer(from_fn(layers::request_id))
        .with_state(state)
}

/// GET /health: the process is up.
async fn health() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn unknown_path(request: Request) -> Response {
    ApiError::UnknownPath(request.uri().path().to_owned()).into_response()
}
