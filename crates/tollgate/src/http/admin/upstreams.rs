//! `/admin/api/upstreams`: upstream (provider) keys (SPEC §5) — the configured ones
//! and those stored sealed in the database, each with its live pool figures. Stored
//! keys can be added, changed, enabled, disabled and removed; configured keys belong
//! to the configuration (only `enable`, which clears an invalid or cooling state,
//! applies to them, on this gateway). The secret is never answered. Every write
//! reloads the pools before answering.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_body, json_response, nullable, time, AdminError, Page};
use crate::app::AppState;
use crate::config::Secret;
use crate::pool::{KeyStats, UpstreamKey};
use crate::store::{NewUpstreamKey, UpstreamKeyRow, UpstreamKeyStatus, UpstreamKeyUpdate};

/// An upstream key: its settings, where it comes from, and its live figures on this
/// gateway. Never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamView {
    /// Stable id, used in stats, logs and metrics.
    pub id: String,
    /// The provider whose pool it is in.
    pub provider: String,
    /// `config` (the configuration file or environment) or `stored` (the database).
    pub source: &'static str,
    /// `enabled` or `disabled` (stored status; configured keys are `enabled`).
    pub status: &'static str,
    /// The live state: `ok`, `cooling_down`, `invalid`, `disabled`, or `not_loaded`
    /// (stored for a provider this gateway does not configure).
    pub state: &'static str,
    /// RFC 3339 end of the cooldown while `cooling_down`.
    pub cooldown_until: Option<String>,
    /// The secret, masked (stored keys).
    pub masked: Option<String>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    /// Spend per UTC day, in the configured currency.
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    pub weight: u32,
    pub tier: Option<String>,
    /// Fingerprint of the master key the secret is sealed under (stored keys).
    pub key_fingerprint: Option<String>,
    /// RFC 3339 (stored keys).
    pub created_at: Option<String>,
    /// RFC 3339 (stored keys).
    pub updated_at: Option<String>,
    /// Counters since this gateway started; `null` when the key is not in a pool here.
    pub stats: Option<UpstreamStats>,
}

/// A key's live figures on this gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamStats {
    pub requests: u64,
    pub errors: u64,
    /// Errors by type (`rate_limited`, `server_error`, …).
    pub errors_by_type: BTreeMap<String, u64>,
    /// Errors per request, 0 to 1.
    pub error_rate: f64,
    pub tokens: u64,
    /// Spend since start, in the configured currency.
    pub spend: f64,
    /// RFC 3339.
    pub last_used: Option<String>,
    /// The used share of the key's tightest quota now, 0 to 1.
    pub utilization: f64,
}

/// `POST /admin/api/upstreams` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamCreate {
    /// A configured provider.
    pub provider: String,
    /// A stable id, unique among all upstream keys.
    pub id: String,
    /// The provider's API key; stored sealed under the master key, never answered.
    pub key: String,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub daily_budget: Option<f64>,
    pub region: Option<String>,
    /// Share of traffic under the weighted strategy (default 1).
    pub weight: Option<u32>,
    /// Tier of client keys it serves (hybrid strategy).
    pub tier: Option<String>,
}

/// `PATCH /admin/api/upstreams/{id}` body (stored keys): what is absent stays;
/// `null` removes a limit or attribute.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPatch {
    /// A new secret for the same key id.
    pub key: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub rpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub tpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub daily_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    pub weight: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub tier: Option<Option<String>>,
}

/// A key in one of this gateway's pools.
struct Live {
    provider: String,
    key: Arc<UpstreamKey>,
    stats: KeyStats,
}

fn live_keys(state: &AppState) -> Vec<Live> {
    let mut out = Vec::new();
    for upstream in &state.upstreams {
        let keys = upstream.pool.keys();
        for stats in upstream.pool.stats() {
            if let Some(key) = keys.iter().find(|k| *k.id == *stats.id) {
                out.push(Live {
                    provider: upstream.name.to_string(),
                    key: key.clone(),
                    stats,
                });
            }
        }
    }
    out
}

fn view(live: Option<&Live>, row: Option<&UpstreamKeyRow>) -> Option<UpstreamView> {
    let now = crate::store::now_ms();
    let stats = live.map(|l| UpstreamStats {
        requests: l.stats.requests,
        errors: l.stats.errors,
        errors_by_type: l
            .stats
            .errors_by_type
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        error_rate: l.stats.error_rate,
        tokens: l.stats.tokens,
        spend: l.stats.spend,
        last_used: l.stats.last_used_ms.map(time),
        utilization: l.stats.utilization,
    });
    let state = live.map_or("not_loaded", |l| l.stats.state);
    let cooldown_until = live
        .and_then(|l| l.stats.cooldown_remaining_ms)
        .map(|ms| time(now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))));
    match (live, row) {
        (_, Some(r)) => Some(UpstreamView {
            id: r.id.clone(),
            provider: r.provider.clone(),
            source: "stored",
            status: r.status.as_str(),
            state,
            cooldown_until,
            masked: Some(r.masked.clone()),
            rpm: r.rpm,
            tpm: r.tpm,
            daily_budget: r.daily_budget,
            region: r.region.clone(),
            weight: r.weight,
            tier: r.tier.clone(),
            key_fingerprint: Some(r.key_fingerprint.clone()),
            created_at: Some(time(r.created_at)),
            updated_at: Some(time(r.updated_at)),
            stats,
        }),
        (Some(l), None) => {
            let a = &l.key.attributes;
            Some(UpstreamView {
                id: l.key.id.to_string(),
                provider: l.provider.clone(),
                source: "config",
                status: "enabled",
                state,
                cooldown_until,
                masked: None,
                rpm: a.limits.rpm,
                tpm: a.limits.tpm,
                daily_budget: a.limits.daily_budget_nanos.map(|n| n as f64 / 1e9),
                region: a.region.clone(),
                weight: a.weight,
                tier: a.tier.clone(),
                key_fingerprint: None,
                created_at: None,
                updated_at: None,
                stats,
            })
        }
        (None, None) => None,
    }
}

/// Every upstream key: pool keys in configuration order, then stored keys of
/// providers this gateway does not configure.
async fn all_views(state: &AppState) -> Result<Vec<UpstreamView>, AdminError> {
    let rows = state.store.list_upstream_key_rows().await?;
    let live = live_keys(state);
    let mut views: Vec<UpstreamView> = live
        .iter()
        .filter_map(|l| {
            let row = rows
                .iter()
                .find(|r| r.id == *l.key.id && r.provider == l.provider);
            view(Some(l), row)
        })
        .collect();
    for row in &rows {
        if !views.iter().any(|v| v.id == row.id && v.source == "stored") {
            views.extend(view(None, Some(row)));
        }
    }
    Ok(views)
}

async fn one_view(state: &AppState, id: &str) -> Result<UpstreamView, AdminError> {
    all_views(state)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        what: "upstream key",
        id: id.to_owned(),
    }
}

fn configured(id: &str, what: &str) -> AdminError {
    AdminError::Conflict(format!(
        "Upstream key {id} comes from the configuration, so it cannot be {what} here: change it in the configuration file or environment (or move it to the database with `tollgate upstream add`)."
    ))
}

/// Whether `id` is a stored key (`Some(true)`), a configured one (`Some(false)`), or
/// unknown (`None`).
async fn stored_or_configured(state: &AppState, id: &str) -> Result<Option<bool>, AdminError> {
    let rows = state.store.list_upstream_key_rows().await?;
    if rows.iter().any(|r| r.id == id) {
        return Ok(Some(true));
    }
    Ok(live_keys(state)
        .iter()
        .any(|l| *l.key.id == *id)
        .then_some(false))
}

/// Applies the stored keys to every pool now, so the next request sees the change.
async fn reload_pools(state: &AppState) -> Result<(), AdminError> {
    let stored = state.store.list_upstream_keys(&state.master_key).await?;
    for upstream in &state.upstreams {
        upstream.apply_stored(&stored);
    }
    Ok(())
}

/// List upstream keys.
///
/// Configured and stored keys with their live state (cooldown end, utilization,
/// counters) on this gateway.
#[utoipa::path(
    get,
    operation_id = "list_upstreams",
    path = "/admin/api/upstreams",
    tag = "upstreams",
    responses(
        (status = 200, description = "Every upstream key", body = Page<UpstreamView>),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Response, AdminError> {
    Ok(json_response(
        StatusCode::OK,
        &Page::all(all_views(&state).await?),
    ))
}

/// Show an upstream key.
#[utoipa::path(
    get,
    operation_id = "get_upstream",
    path = "/admin/api/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream key's id")),
    responses(
        (status = 200, description = "The key (never its secret)", body = UpstreamView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    Ok(json_response(StatusCode::OK, &one_view(&state, &id).await?))
}

/// Add an upstream key.
///
/// The secret is sealed under the master key (AES-256-GCM) and never answered. The
/// key joins its provider's pool before the answer.
#[utoipa::path(
    post,
    operation_id = "create_upstream",
    path = "/admin/api/upstreams",
    tag = "upstreams",
    request_body = UpstreamCreate,
    responses(
        (status = 201, description = "Added", body = UpstreamView),
        (status = 400, description = "A field is invalid (`param` names it)", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 409, description = "The id is taken", body = super::ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let body: UpstreamCreate = json_body(request).await?;
    if !state
        .config
        .providers
        .iter()
        .any(|p| p.name == body.provider)
    {
        let names: Vec<&str> = state
            .config
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        return Err(AdminError::invalid(
            "provider",
            format!(
                "provider {:?} is not configured: use one of {}",
                body.provider,
                names.join(", ")
            ),
        ));
    }
    if stored_or_configured(&state, &body.id).await? == Some(false) {
        return Err(AdminError::Conflict(format!(
            "An upstream key with id {} is in the configuration already: choose another id.",
            body.id
        )));
    }
    let key = NewUpstreamKey {
        id: body.id.clone(),
        provider: body.provider,
        secret: Secret::new(body.key),
        rpm: body.rpm,
        tpm: body.tpm,
        daily_budget: body.daily_budget,
        region: body.region,
        weight: body.weight.unwrap_or(1),
        tier: body.tier,
    };
    key.validate().map_err(crate::store::StoreError::Invalid)?;
    state
        .store
        .insert_upstream_key(&key, &state.master_key)
        .await?;
    reload_pools(&state).await?;
    tracing::info!(upstream_key = %key.id, provider = %key.provider, "upstream key added through the admin API");
    let mut response = json_response(StatusCode::CREATED, &one_view(&state, &key.id).await?);
    if let Ok(location) = http::HeaderValue::from_str(&format!("/admin/api/upstreams/{}", key.id)) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

/// Update a stored upstream key.
///
/// Limits, weight, region, tier, or a new secret; `null` removes a limit or
/// attribute. Configured keys answer 409.
#[utoipa::path(
    patch,
    operation_id = "update_upstream",
    path = "/admin/api/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream key's id")),
    request_body = UpstreamPatch,
    responses(
        (status = 200, description = "The updated key", body = UpstreamView),
        (status = 400, description = "A field is invalid (`param` names it)", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "A configured key", body = super::ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AdminError> {
    let body: UpstreamPatch = json_body(request).await?;
    match stored_or_configured(&state, &id).await? {
        None => return Err(not_found(&id)),
        Some(false) => return Err(configured(&id, "changed")),
        Some(true) => {}
    }
    let update = UpstreamKeyUpdate {
        secret: body.key.map(Secret::new),
        rpm: body.rpm,
        tpm: body.tpm,
        daily_budget: body.daily_budget,
        region: body.region,
        weight: body.weight,
        tier: body.tier,
    };
    if update.is_empty() {
        return Err(AdminError::Invalid {
            param: None,
            message: "Nothing to change: give at least one field (key, rpm, tpm, daily_budget, region, weight, tier).".to_owned(),
        });
    }
    state
        .store
        .update_upstream_key(&id, &update, &state.master_key)
        .await?;
    reload_pools(&state).await?;
    Ok(json_response(StatusCode::OK, &one_view(&state, &id).await?))
}

/// Remove a stored upstream key.
#[utoipa::path(
    delete,
    operation_id = "delete_upstream",
    path = "/admin/api/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream key's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "A configured key", body = super::ErrorEnvelope),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    match stored_or_configured(&state, &id).await? {
        None => return Err(not_found(&id)),
        Some(false) => return Err(configured(&id, "removed")),
        Some(true) => {}
    }
    state.store.delete_upstream_key(&id).await?;
    reload_pools(&state).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Put an upstream key back into rotation.
///
/// Also clears an invalid (401/403) or cooling-down state. For a configured key this
/// acts on this gateway's pool only.
#[utoipa::path(
    post,
    operation_id = "enable_upstream",
    path = "/admin/api/upstreams/{id}/enable",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream key's id")),
    responses(
        (status = 200, description = "The key, in rotation", body = UpstreamView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    match stored_or_configured(&state, &id).await? {
        None => return Err(not_found(&id)),
        Some(true) => {
            state
                .store
                .set_upstream_key_status(&id, UpstreamKeyStatus::Enabled)
                .await?;
            reload_pools(&state).await?;
        }
        Some(false) => {}
    }
    for live in live_keys(&state).iter().filter(|l| *l.key.id == *id) {
        live.key.set_enabled(true);
    }
    tracing::info!(upstream_key = %id, "upstream key enabled through the admin API");
    Ok(json_response(StatusCode::OK, &one_view(&state, &id).await?))
}

/// Take a stored upstream key out of rotation.
///
/// Applies before the answer; configured keys answer 409.
#[utoipa::path(
    post,
    operation_id = "disable_upstream",
    path = "/admin/api/upstreams/{id}/disable",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream key's id")),
    responses(
        (status = 200, description = "The key, out of rotation", body = UpstreamView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "A configured key", body = super::ErrorEnvelope),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    match stored_or_configured(&state, &id).await? {
        None => return Err(not_found(&id)),
        Some(false) => return Err(configured(&id, "disabled")),
        Some(true) => {}
    }
    state
        .store
        .set_upstream_key_status(&id, UpstreamKeyStatus::Disabled)
        .await?;
    reload_pools(&state).await?;
    tracing::info!(upstream_key = %id, "upstream key disabled through the admin API");
    Ok(json_response(StatusCode::OK, &one_view(&state, &id).await?))
}
