//! `GET /admin/api/models`: the model table as configured — provider, upstream name,
//! prices, capabilities, context window, aliases, fallbacks and downgrade target.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{json_response, AdminError};
use crate::app::AppState;

/// A model clients may ask for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// The name clients send.
    pub name: String,
    /// The provider that serves it.
    pub provider: String,
    /// The name the provider knows it by.
    pub upstream_model: String,
    /// Price per million prompt tokens, in `currency`.
    pub input_per_1m: f64,
    /// Price per million completion tokens, in `currency`.
    pub output_per_1m: f64,
    /// The configured currency.
    pub currency: String,
    pub context_window: Option<u32>,
    /// `chat`, `completions`, `embeddings`, `tools`, `vision`.
    pub capabilities: Vec<&'static str>,
    /// Other names clients may send.
    pub aliases: Vec<String>,
    /// Models tried, in order, when this one fails.
    pub fallbacks: Vec<String>,
    /// The model that serves callers past their budget's soft threshold.
    pub downgrade_to: Option<String>,
}

/// The model table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Every configured model, in configuration order.
    pub data: Vec<ModelView>,
    /// Always `null`: every model is in one page.
    pub next_cursor: Option<String>,
}

/// List models.
///
/// The model table with prices, capabilities, fallbacks and downgrade targets.
#[utoipa::path(
    get,
    operation_id = "list_models",
    path = "/admin/api/models",
    tag = "models",
    responses(
        (status = 200, description = "The model table", body = ModelList),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Response, AdminError> {
    let currency = &state.config.budgets.currency;
    let data = state
        .config
        .models
        .iter()
        .map(|m| ModelView {
            name: m.name.clone(),
            provider: m.provider.clone(),
            upstream_model: m.upstream_model.clone(),
            input_per_1m: m.input_per_1m,
            output_per_1m: m.output_per_1m,
            currency: currency.clone(),
            context_window: m.context_window,
            capabilities: m.capabilities.iter().map(|c| c.as_str()).collect(),
            aliases: m.aliases.clone(),
            fallbacks: m.fallbacks.clone(),
            downgrade_to: m.downgrade_to.clone(),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ModelList {
            data,
            next_cursor: None,
        },
    ))
}
