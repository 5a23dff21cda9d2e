//! `/admin/api/keys`: client keys (SPEC §4) — create, list, show, update, suspend,
//! resume, revoke, regenerate, delete. Bodies use §4's field names; a key's secret
//! (and HMAC signing secret) is answered once, at creation or regeneration. Every
//! write reloads the key index before answering, so the next client request sees it.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, json_response, nullable, query_params, time, AdminError, Page};
use crate::admission::hmac::HmacSecret;
use crate::admission::KeyPolicy;
use crate::app::AppState;
use crate::auth::secret;
use crate::store::{
    check_origin, dedup, parse_cidr, parse_endpoint, parse_expiry, KeyFilter, KeyRecord, KeyStatus,
    KeyUpdate, NewKey, PolicyPatch,
};

/// Keys per page unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 50;
/// The largest page.
const MAX_PAGE: usize = 500;

/// A client key as the admin API shows it: every field of SPEC §4, the secret only
/// masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Public id (`key_…`).
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tier: String,
    /// `live` or `test`.
    pub env: String,
    /// `active`, `suspended` or `revoked`.
    pub status: &'static str,
    /// The secret, masked: `tg-live-AbCd…wXyZ`.
    pub masked: String,
    /// RFC 3339; `null`: never expires.
    pub expires_at: Option<String>,
    /// The upstream key only this client uses.
    pub dedicated_upstream: Option<String>,
    /// Preferred upstream key region.
    pub region: Option<String>,
    /// True when requests must be HMAC-signed.
    pub hmac: bool,
    pub permissions: PermissionsView,
    pub limits: LimitsView,
    pub budgets: BudgetsView,
    /// Networks the key may be used from; empty: anywhere.
    pub ip_allowlist: Vec<String>,
    /// Browser origins the key may be used from.
    pub cors_origins: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// What a key may call.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionsView {
    /// Models (names or aliases) it may use; `null`: every model of its tier.
    pub models: Option<Vec<String>>,
    /// Client routes it may call; `null`: all.
    pub endpoints: Option<Vec<String>>,
    /// The largest `max_tokens` a call may ask for; `null`: no cap.
    pub max_tokens: Option<u64>,
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
}

/// The key's own limits; `null`: the tier's value applies.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    pub rpm: Option<u64>,
    pub rph: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
    pub tokens_per_month: Option<u64>,
}

/// The key's budgets in the configured currency; `null`: none.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetsView {
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
}

/// A key with its secret, answered once (creation, regeneration).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    pub record: KeyView,
    /// The secret: shown only this once.
    pub key: String,
    /// The HMAC signing secret (keys created with `"hmac": true`): shown only once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        let p = &k.policy;
        let l = &p.limits;
        KeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            owner: k.owner.clone(),
            team: k.team.clone(),
            tier: k.tier.clone(),
            env: k.env.clone(),
            status: k.status.as_str(),
            masked: k.masked.clone(),
            expires_at: k.expires_at.map(time),
            dedicated_upstream: k.dedicated_upstream.clone(),
            region: k.region.clone(),
            hmac: k.hmac_secret.is_some(),
            permissions: PermissionsView {
                models: p.permissions.models.clone(),
                endpoints: p.permissions.endpoints.clone(),
                max_tokens: p.permissions.max_tokens,
                streaming: p.permissions.streaming,
                tools: p.permissions.tools,
                vision: p.permissions.vision,
            },
            limits: LimitsView {
                rpm: l.rpm,
                rph: l.rph,
                rpd: l.rpd,
                tpm: l.tpm,
                tpd: l.tpd,
                tokens_per_month: l.tokens_per_month,
            },
            budgets: BudgetsView {
                daily: p.budgets.daily,
                monthly: p.budgets.monthly,
            },
            ip_allowlist: p.ip_allowlist.iter().map(ToString::to_string).collect(),
            cors_origins: p.cors_origins.clone(),
            metadata: k.metadata.clone(),
            created_at: time(k.created_at),
            updated_at: time(k.updated_at),
        }
    }
}

/// Permissions in a request; in an update, an absent field stays and `null` resets
/// it (every model of the tier, every endpoint, no cap).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsInput {
    /// Model names or aliases the key may use.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub models: Option<Option<Vec<String>>>,
    /// Endpoints: `chat`, `completions`, `embeddings`, `messages`, `models`, `usage`
    /// or their paths.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub endpoints: Option<Option<Vec<String>>>,
    /// The largest `max_tokens` a call may ask for (positive).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub max_tokens: Option<Option<u64>>,
    pub streaming: Option<bool>,
    pub tools: Option<bool>,
    pub vision: Option<bool>,
}

/// Limits in a request (positive whole numbers); `null` (in an update): the tier's
/// value applies again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    /// Requests per minute (sliding 60 s).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub rpm: Option<Option<u64>>,
    /// Requests per UTC hour.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub rph: Option<Option<u64>>,
    /// Requests per UTC day.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub rpd: Option<Option<u64>>,
    /// Tokens per minute.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub tpm: Option<Option<u64>>,
    /// Tokens per UTC day.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub tpd: Option<Option<u64>>,
    /// Tokens per UTC calendar month.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub tokens_per_month: Option<Option<u64>>,
}

/// Budgets in a request, in the configured currency (positive); `null` (in an
/// update): none.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetsInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub daily: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub monthly: Option<Option<f64>>,
}

/// `POST /admin/api/keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    /// What the key is for.
    pub name: String,
    /// The user the key belongs to (owner budgets and analytics group by it).
    pub owner: Option<String>,
    pub team: Option<String>,
    /// A configured tier; default `standard`.
    pub tier: Option<String>,
    /// `live` (default) or `test`, shown in the key's prefix.
    pub env: Option<String>,
    /// When the key stops working: RFC 3339 time, a date, or a duration from now
    /// (`30d`, `12h`, `90m`, `2w`).
    pub expires_at: Option<String>,
    pub permissions: Option<PermissionsInput>,
    pub limits: Option<LimitsInput>,
    pub budgets: Option<BudgetsInput>,
    /// CIDRs (or single addresses) the key may be used from; default: anywhere.
    pub ip_allowlist: Option<Vec<String>>,
    /// Browser origins (`https://app.example.com`, or `*`).
    pub cors_origins: Option<Vec<String>>,
    /// An upstream key id that then serves only this client.
    pub dedicated_upstream: Option<String>,
    /// Prefer upstream keys of this region.
    pub region: Option<String>,
    /// A JSON object kept with the key.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Require HMAC-signed requests; the signing secret is answered once.
    #[serde(default)]
    pub hmac: bool,
}

/// `PATCH /admin/api/keys/{id}` body: what is absent stays; `null` clears an
/// optional field. Status and secret have their own routes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// A new name (cannot be `null`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub team: Option<Option<String>>,
    /// A configured tier (cannot be `null`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub tier: Option<Option<String>>,
    /// RFC 3339 time, a date, or a duration from now; `null`: never expires.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<String>>,
    pub permissions: Option<PermissionsInput>,
    pub limits: Option<LimitsInput>,
    pub budgets: Option<BudgetsInput>,
    /// Replaces the list; `null` or `[]`: anywhere.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub ip_allowlist: Option<Option<Vec<String>>>,
    /// Replaces the list; `null` or `[]`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub cors_origins: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub dedicated_upstream: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    /// Replaces the metadata; `null`: `{}`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Option<serde_json::Value>>,
}

/// Filters and paging of `GET /admin/api/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Only this owner's keys.
    pub owner: Option<String>,
    /// `active`, `suspended` or `revoked`.
    pub status: Option<String>,
    /// Only keys of this tier.
    pub tier: Option<String>,
    /// A piece of the id, name, owner, team or masked key.
    pub q: Option<String>,
    /// Keys per page, 1 to 500 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The policy change the request's permissions, limits, budgets and lists ask for.
fn policy_patch(
    permissions: Option<&PermissionsInput>,
    limits: Option<&LimitsInput>,
    budgets: Option<&BudgetsInput>,
    ip_allowlist: Option<Option<&[String]>>,
    cors_origins: Option<Option<&[String]>>,
) -> Result<PolicyPatch, AdminError> {
    let empty_p = PermissionsInput::default();
    let p = permissions.unwrap_or(&empty_p);
    let empty_l = LimitsInput::default();
    let l = limits.unwrap_or(&empty_l);
    let empty_b = BudgetsInput::default();
    let b = budgets.unwrap_or(&empty_b);
    let endpoints = match &p.endpoints {
        Some(Some(list)) => {
            let mut paths = Vec::with_capacity(list.len());
            for name in list {
                let path = parse_endpoint(name).map_err(|e| {
                    AdminError::invalid(
                        "permissions.endpoints",
                        format!("permissions.endpoints: {name:?} is {e}"),
                    )
                })?;
                paths.push(path.to_owned());
            }
            Some(Some(dedup(paths)))
        }
        other => other.clone(),
    };
    let ip_allowlist = match ip_allowlist {
        Some(Some(list)) => {
            let mut cidrs = Vec::with_capacity(list.len());
            for text in list {
                cidrs.push(parse_cidr(text).map_err(|e| {
                    AdminError::invalid("ip_allowlist", format!("ip_allowlist: {text:?} is {e}"))
                })?);
            }
            Some(dedup(cidrs))
        }
        Some(None) => Some(Vec::new()),
        None => None,
    };
    let cors_origins = match cors_origins {
        Some(Some(list)) => {
            let mut origins = Vec::with_capacity(list.len());
            for origin in list {
                origins.push(check_origin(origin.trim()).map_err(|e| {
                    AdminError::invalid("cors_origins", format!("cors_origins: {e}"))
                })?);
            }
            Some(dedup(origins))
        }
        Some(None) => Some(Vec::new()),
        None => None,
    };
    Ok(PolicyPatch {
        models: p.models.clone().map(|m| m.map(dedup)),
        endpoints,
        max_tokens: p.max_tokens,
        streaming: p.streaming,
        tools: p.tools,
        vision: p.vision,
        rpm: l.rpm,
        rph: l.rph,
        rpd: l.rpd,
        tpm: l.tpm,
        tpd: l.tpd,
        tokens_per_month: l.tokens_per_month,
        daily_budget: b.daily,
        monthly_budget: b.monthly,
        ip_allowlist,
        cors_origins,
    })
}

/// Refuses a tier, model or upstream key id this gateway does not know: such a key
/// would have no tier limits, or could call nothing, or bind to nothing.
fn check_known_names(
    state: &AppState,
    tier: Option<&str>,
    models: Option<&[String]>,
    dedicated_upstream: Option<&str>,
) -> Result<(), AdminError> {
    let config = &state.config;
    if let Some(tier) = tier {
        if !config.tiers.contains_key(tier) {
            let known: Vec<&str> = config.tiers.keys().map(String::as_str).collect();
            return Err(AdminError::invalid(
                "tier",
                format!(
                    "tier {tier:?} is not configured: use one of {}",
                    known.join(", ")
                ),
            ));
        }
    }
    // A provider without [[models]] entries serves any name, so any name may be allowed.
    let open_provider = config
        .providers
        .iter()
        .any(|p| !config.models.iter().any(|m| m.provider == p.name));
    if !open_provider {
        for model in models.unwrap_or_default() {
            let known = config
                .models
                .iter()
                .any(|m| &m.name == model || m.aliases.contains(model));
            if !known {
                return Err(AdminError::invalid(
                    "permissions.models",
                    format!("permissions.models: no model or alias named {model:?} is configured; GET /admin/api/models lists them"),
                ));
            }
        }
    }
    if let Some(id) = dedicated_upstream {
        let known = state
            .upstreams
            .iter()
            .any(|u| u.pool.keys().iter().any(|k| &*k.id == id));
        if !known {
            return Err(AdminError::invalid(
                "dedicated_upstream",
                format!("dedicated_upstream: no upstream key with id {id:?}; GET /admin/api/upstreams lists them"),
            ));
        }
    }
    Ok(())
}

fn check_metadata(metadata: &serde_json::Value) -> Result<(), AdminError> {
    if metadata.is_object() {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "metadata",
            "metadata must be a JSON object, e.g. {\"project\": \"x\"}",
        ))
    }
}

fn expiry(text: &str) -> Result<i64, AdminError> {
    parse_expiry(text, chrono::Utc::now())
        .map_err(|e| AdminError::invalid("expires_at", format!("expires_at {text:?}: {e}")))
}

/// Applies a write to the in-memory index now, so the next client request sees it.
/// The write is committed either way; if the reload fails, the refresher retries.
pub(super) async fn reload_keys(state: &AppState) {
    if let Err(e) = state.keys.reload(&state.store, &state.master_key).await {
        tracing::warn!(error = %e, "client key index reload after an admin write failed; the refresher retries");
    }
}

/// Create a key.
///
/// Answers 201 with the key and, only this once, its secret `key` (and
/// `hmac_secret` with `"hmac": true`).
#[utoipa::path(
    post,
    operation_id = "create_key",
    path = "/admin/api/keys",
    tag = "keys",
    request_body = KeyCreate,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = KeyWithSecret),
        (status = 400, description = "A field is invalid (`param` names it)", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminError> {
    let body: KeyCreate = json_body(request).await?;
    let tier = body.tier.clone().unwrap_or_else(|| "standard".to_owned());
    let models = body
        .permissions
        .as_ref()
        .and_then(|p| p.models.clone().flatten());
    check_known_names(
        &state,
        Some(&tier),
        models.as_deref(),
        body.dedicated_upstream.as_deref(),
    )?;
    let patch = policy_patch(
        body.permissions.as_ref(),
        body.limits.as_ref(),
        body.budgets.as_ref(),
        body.ip_allowlist.as_deref().map(Some),
        body.cors_origins.as_deref().map(Some),
    )?;
    let mut policy = KeyPolicy::default();
    patch.apply(&mut policy);
    if let Some(metadata) = &body.metadata {
        check_metadata(metadata)?;
    }
    let expires_at = body.expires_at.as_deref().map(expiry).transpose()?;
    let env = body.env.clone().unwrap_or_else(|| "live".to_owned());
    let hmac = body.hmac.then(|| {
        let secret = HmacSecret::generate();
        let sealed = secret.seal(&state.master_key);
        (secret, sealed)
    });
    let secret = secret::generate(&env);
    let new = NewKey {
        id: secret::new_key_id(),
        name: body.name,
        owner: body.owner,
        team: body.team,
        tier,
        env,
        secret_hash: secret::hash_hex(&secret::hash(&secret)),
        masked: secret::mask(&secret),
        expires_at,
        dedicated_upstream: body.dedicated_upstream,
        region: body.region,
        policy,
        hmac_secret: hmac.as_ref().map(|(_, sealed)| sealed.clone()),
    };
    new.validate().map_err(crate::store::StoreError::Invalid)?;
    let mut record = state.store.insert_key(&new).await?;
    if let Some(metadata) = body.metadata {
        let update = KeyUpdate {
            metadata: Some(metadata),
            ..KeyUpdate::default()
        };
        record = state.store.update_key(&record.id, &update).await?;
    }
    reload_keys(&state).await;
    let mut response = json_response(
        StatusCode::CREATED,
        &KeyWithSecret {
            record: KeyView::from(&record),
            key: secret,
            hmac_secret: hmac.map(|(s, _)| s.expose().to_owned()),
        },
    );
    if let Ok(location) = http::HeaderValue::from_str(&format!("/admin/api/keys/{}", record.id)) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

/// List keys.
///
/// Newest first, filtered by owner, status, tier and a search text, in pages:
/// pass `next_cursor` as `cursor` for the next one.
#[utoipa::path(
    get,
    operation_id = "list_keys",
    path = "/admin/api/keys",
    tag = "keys",
    params(KeyListQuery),
    responses(
        (status = 200, description = "A page of keys", body = Page<KeyView>),
        (status = 400, description = "A parameter is invalid", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn list(State(state): State<AppState>, request: Request) -> Result<Response, AdminError> {
    let params = query_params(
        &request,
        &["owner", "status", "tier", "q", "limit", "cursor"],
    )?;
    let status = params
        .get("status")
        .map(|s| {
            KeyStatus::from_name(s).ok_or_else(|| {
                AdminError::invalid(
                    "status",
                    format!("status {s:?} is not a key status: use active, suspended or revoked"),
                )
            })
        })
        .transpose()?;
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                AdminError::invalid(
                    "limit",
                    format!("limit {text:?}: give a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let cursor = params
        .get("cursor")
        .map(|c| {
            decode_cursor(c).ok_or_else(|| {
                AdminError::invalid("cursor", "cursor is not one this API gave: pass `next_cursor` of the previous page as it is")
            })
        })
        .transpose()?;
    let filter = KeyFilter {
        owner: params.get("owner").cloned(),
        status,
        tier: params.get("tier").cloned(),
        query: params.get("q").cloned(),
    };
    let mut records = state
        .store
        .list_keys_page(
            &filter,
            cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
        )
        .await?;
    let next_cursor = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|r| encode_cursor(r.created_at, &r.id))
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        &Page {
            data: records.iter().map(KeyView::from).collect::<Vec<_>>(),
            next_cursor,
        },
    ))
}

fn encode_cursor(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (created_at, id) = text.split_once(':')?;
    Some((created_at.parse().ok()?, id.to_owned()))
}

/// Show a key.
#[utoipa::path(
    get,
    operation_id = "get_key",
    path = "/admin/api/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The key (masked)", body = KeyView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let record = state.store.find_key(&id).await?;
    Ok(json_response(StatusCode::OK, &KeyView::from(&record)))
}

/// Update a key.
///
/// Changes the fields given; `null` clears an optional one (limits fall back to the
/// tier's). Applies to the very next client request.
#[utoipa::path(
    patch,
    operation_id = "update_key",
    path = "/admin/api/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    request_body = KeyPatch,
    responses(
        (status = 200, description = "The updated key", body = KeyView),
        (status = 400, description = "A field is invalid (`param` names it)", body = super::ErrorEnvelope),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AdminError> {
    let body: KeyPatch = json_body(request).await?;
    let required = |field: &str, value: Option<Option<String>>| match value {
        Some(None) => Err(AdminError::invalid(
            field,
            format!("{field} cannot be null: give a new value, or leave the field out to keep it"),
        )),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    };
    let name = required("name", body.name)?;
    let tier = required("tier", body.tier)?;
    let models = body
        .permissions
        .as_ref()
        .and_then(|p| p.models.clone().flatten());
    check_known_names(
        &state,
        tier.as_deref(),
        models.as_deref(),
        body.dedicated_upstream.clone().flatten().as_deref(),
    )?;
    let policy = policy_patch(
        body.permissions.as_ref(),
        body.limits.as_ref(),
        body.budgets.as_ref(),
        body.ip_allowlist.as_ref().map(|l| l.as_deref()),
        body.cors_origins.as_ref().map(|l| l.as_deref()),
    )?;
    let metadata = match body.metadata {
        Some(Some(m)) => {
            check_metadata(&m)?;
            Some(m)
        }
        Some(None) => Some(serde_json::json!({})),
        None => None,
    };
    let expires_at = match body.expires_at {
        Some(Some(text)) => Some(Some(expiry(&text)?)),
        Some(None) => Some(None),
        None => None,
    };
    let update = KeyUpdate {
        name,
        owner: body.owner,
        team: body.team,
        tier,
        expires_at,
        dedicated_upstream: body.dedicated_upstream,
        region: body.region,
        metadata,
        policy,
    };
    if update.is_empty() {
        return Err(AdminError::Invalid {
            param: None,
            message: "Nothing to change: give at least one field (see KeyPatch in /admin/api/openapi.json).".to_owned(),
        });
    }
    let record = state.store.update_key(&id, &update).await?;
    reload_keys(&state).await;
    Ok(json_response(StatusCode::OK, &KeyView::from(&record)))
}

/// Delete a key.
///
/// For good; its usage history stays in the request log.
#[utoipa::path(
    delete,
    operation_id = "delete_key",
    path = "/admin/api/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    state.store.delete_key(&id).await?;
    reload_keys(&state).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sets a key's status; a revoked key stays revoked (409 for suspend and resume).
async fn set_status(state: &AppState, id: &str, status: KeyStatus) -> Result<Response, AdminError> {
    let current = state.store.find_key(id).await?;
    if current.status == KeyStatus::Revoked && status != KeyStatus::Revoked {
        return Err(revoked(id));
    }
    let record = state.store.set_key_status(id, status).await?;
    reload_keys(state).await;
    Ok(json_response(StatusCode::OK, &KeyView::from(&record)))
}

fn revoked(id: &str) -> AdminError {
    AdminError::Conflict(format!(
        "Key {id} is revoked, which is for good: create a new key instead."
    ))
}

/// Suspend a key.
///
/// Its requests are refused (403 `key_suspended`) from the next one on, until resumed.
#[utoipa::path(
    post,
    operation_id = "suspend_key",
    path = "/admin/api/keys/{id}/suspend",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The suspended key", body = KeyView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "The key is revoked", body = super::ErrorEnvelope),
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    set_status(&state, &id, KeyStatus::Suspended).await
}

/// Resume a suspended key.
#[utoipa::path(
    post,
    operation_id = "resume_key",
    path = "/admin/api/keys/{id}/resume",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The active key", body = KeyView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "The key is revoked", body = super::ErrorEnvelope),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    set_status(&state, &id, KeyStatus::Active).await
}

/// Revoke a key for good.
///
/// Its requests are refused (403 `key_revoked`) from the very next one on.
#[utoipa::path(
    post,
    operation_id = "revoke_key",
    path = "/admin/api/keys/{id}/revoke",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    set_status(&state, &id, KeyStatus::Revoked).await
}

/// Give a key a new secret.
///
/// Same id, settings and history; the old secret stops working at once. The new
/// secret is answered only this once.
#[utoipa::path(
    post,
    operation_id = "regenerate_key",
    path = "/admin/api/keys/{id}/regenerate",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key with its new secret, shown only now", body = KeyWithSecret),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
        (status = 404, description = "No such key", body = super::ErrorEnvelope),
        (status = 409, description = "The key is revoked", body = super::ErrorEnvelope),
    )
)]
pub async fn regenerate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let current = state.store.find_key(&id).await?;
    if current.status == KeyStatus::Revoked {
        return Err(revoked(&id));
    }
    let secret = secret::generate(&current.env);
    let record = state
        .store
        .regenerate_key(
            &id,
            &secret::hash_hex(&secret::hash(&secret)),
            &secret::mask(&secret),
        )
        .await?;
    reload_keys(&state).await;
    Ok(json_response(
        StatusCode::OK,
        &KeyWithSecret {
            record: KeyView::from(&record),
            key: secret,
            hmac_secret: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = encode_cursor(1_700_000_000_000, "key_abc");
        assert_eq!(
            decode_cursor(&c),
            Some((1_700_000_000_000, "key_abc".to_owned()))
        );
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("x:y")), None);
    }

    #[test]
    fn lists_are_normalized_and_bad_entries_named() {
        let p = PermissionsInput {
            endpoints: Some(Some(vec!["chat".into(), "/v1/chat/completions".into()])),
            ..PermissionsInput::default()
        };
        let ips = vec!["10.0.0.0/8".to_owned()];
        let patch =
            policy_patch(Some(&p), None, None, Some(Some(&ips)), Some(None)).expect("patch");
        assert_eq!(
            patch.endpoints,
            Some(Some(vec!["/v1/chat/completions".to_owned()]))
        );
        assert_eq!(patch.ip_allowlist.map(|l| l.len()), Some(1));
        assert_eq!(patch.cors_origins, Some(Vec::new()));
        let bad = vec!["10.0.0.0/99".to_owned()];
        match policy_patch(None, None, None, Some(Some(&bad)), None) {
            Err(AdminError::Invalid { param, .. }) => {
                assert_eq!(param.as_deref(), Some("ip_allowlist"))
            }
            other => panic!("{other:?}"),
        }
        let bad = PermissionsInput {
            endpoints: Some(Some(vec!["files".into()])),
            ..PermissionsInput::default()
        };
        match policy_patch(Some(&bad), None, None, None, None) {
            Err(AdminError::Invalid { param, message }) => {
                assert_eq!(param.as_deref(), Some("permissions.endpoints"));
                assert!(message.contains("chat (/v1/chat/completions)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
