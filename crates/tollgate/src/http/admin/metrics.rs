//! `GET /admin/api/metrics`: live figures of this gateway since it started — requests,
//! errors, tokens and spend from the upstream key pools, key counts, the usage queue.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{json_response, AdminError};
use crate::app::AppState;

/// Live figures of this gateway (each replica answers its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsView {
    /// Seconds since start.
    pub uptime_s: u64,
    /// Unix seconds at start.
    pub started_at_s: u64,
    /// Upstream calls since start (every attempt, retries included).
    pub requests: u64,
    /// Failed upstream calls since start.
    pub errors: u64,
    /// `errors / requests`, 0 to 1.
    pub error_rate: f64,
    /// Tokens served since start.
    pub tokens: u64,
    /// Spend since start, in `currency`.
    pub spend: f64,
    /// The configured currency.
    pub currency: String,
    /// Client keys in the in-memory index (every status).
    pub client_keys: usize,
    /// Usage rows waiting to be written.
    pub usage_queue_depth: usize,
    /// Per provider.
    pub providers: Vec<ProviderMetrics>,
}

/// One provider's pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderMetrics {
    pub name: String,
    /// `openai`, `anthropic`, `openai_compatible` or `mock`.
    pub kind: &'static str,
    /// Upstream keys in the pool.
    pub keys: usize,
    /// Keys in state `ok` now.
    pub usable_keys: usize,
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub spend: f64,
}

/// Live figures.
///
/// Requests, errors, tokens and spend since start from the upstream key pools,
/// per provider and in total; key count; usage queue depth; uptime.
#[utoipa::path(
    get,
    operation_id = "get_metrics",
    path = "/admin/api/metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "This gateway's live figures", body = MetricsView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn live(State(state): State<AppState>) -> Result<Response, AdminError> {
    let providers: Vec<ProviderMetrics> = state
        .upstreams
        .iter()
        .map(|u| {
            let stats = u.pool.stats();
            ProviderMetrics {
                name: u.name.to_string(),
                kind: u.kind.as_str(),
                keys: stats.len(),
                usable_keys: stats.iter().filter(|s| s.state == "ok").count(),
                requests: stats.iter().map(|s| s.requests).sum(),
                errors: stats.iter().map(|s| s.errors).sum(),
                tokens: stats.iter().map(|s| s.tokens).sum(),
                spend: stats.iter().map(|s| s.spend).sum(),
            }
        })
        .collect();
    let requests: u64 = providers.iter().map(|p| p.requests).sum();
    let errors: u64 = providers.iter().map(|p| p.errors).sum();
    let now_s = chrono::Utc::now().timestamp().max(0) as u64;
    Ok(json_response(
        StatusCode::OK,
        &MetricsView {
            uptime_s: now_s.saturating_sub(state.started_at_s),
            started_at_s: state.started_at_s,
            requests,
            errors,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            tokens: providers.iter().map(|p| p.tokens).sum(),
            spend: providers.iter().map(|p| p.spend).sum(),
            currency: state.config.budgets.currency.clone(),
            client_keys: state.keys.len(),
            usage_queue_depth: state.usage.depth(),
            providers,
        },
    ))
}
