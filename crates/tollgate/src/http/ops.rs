//! Operations routes (SPEC §9): `/health` (alive), `/ready` (database, Redis, a usable
//! upstream key per provider) and `/metrics` (Prometheus text).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use crate::app::AppState;
use crate::telemetry::{KeyGauge, UsageGauges};

/// GET /health: the process is up.
pub async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// GET /ready: 200 when the database answers, Redis answers (when configured) and
/// every provider has an upstream key that is not invalid or disabled; else 503 with
/// what failed.
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut ready = true;
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            ready = false;
            e.to_string()
        }
    };
    let limits = match state.admission.ping_backend().await {
        None => "in-process".to_owned(),
        Some(Ok(())) => "ok".to_owned(),
        Some(Err(e)) => {
            ready = false;
            e.to_string()
        }
    };
    let mut providers = Map::new();
    for upstream in &state.upstreams {
        let stats = upstream.pool.stats();
        let usable = stats
            .iter()
            .filter(|k| matches!(k.state, "ok" | "cooling_down"))
            .count();
        let verdict = if usable > 0 {
            format!("ok ({usable} usable upstream key(s))")
        } else {
            ready = false;
            "no usable upstream key: every key is invalid or disabled".to_owned()
        };
        providers.insert(upstream.name.to_string(), Value::String(verdict));
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"database": database, "limits": limits, "providers": providers},
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// GET /metrics: Prometheus text; with `server.metrics_token` set, only for
/// `Authorization: Bearer <token>`.
pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let token = &state.config.server.metrics_token;
    if !token.is_empty() {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if presented != Some(token.as_str()) {
            return ApiError::MetricsToken.into_response();
        }
    }
    let stats: Vec<(std::sync::Arc<str>, Vec<crate::pool::KeyStats>)> = state
        .upstreams
        .iter()
        .map(|u| (u.name.clone(), u.pool.stats()))
        .collect();
    let keys = stats.iter().flat_map(|(provider, keys)| {
        keys.iter().map(move |k| KeyGauge {
            provider,
            key: &k.id,
            state: k.state,
            utilization: k.utilization,
        })
    });
    let counters = state.usage.counters();
    let usage = UsageGauges {
        queue_depth: state.usage.depth(),
        dropped: counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
        spooled: counters.spooled.load(std::sync::atomic::Ordering::Relaxed),
        replayed: counters.replayed.load(std::sync::atomic::Ordering::Relaxed),
    };
    let text = state.telemetry.render(keys, usage);
    (
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
