//! The admin REST API under `/admin/api/` (SPEC §8): JSON in and out, errors in
//! OpenAI's envelope (mapped in `http/error.rs`), one file per resource.
//!
//! Every route is in [`ADMIN_ROUTES`] (or [`reports::ROUTES`]); the router is built from
//! those tables, every route but login and the OpenAPI document passes
//! [`auth::require_admin`], and tests walk the tables against the router and the
//! OpenAPI document. A write that changes what clients may do (keys, upstream keys)
//! reloads the in-memory key index or pools before it answers, so it applies to the
//! very next client request, not after the next poll.

pub mod alerts;
pub mod auth;
pub mod keys;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod reports;
pub mod upstreams;
pub mod users;

use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::app::AppState;
use crate::store::StoreError;

pub use auth::LoginLimiter;

/// Largest admin request body, in bytes.
const MAX_BODY_BYTES: usize = 1 << 20;

/// An admin route.
#[derive(Debug, Clone, Copy)]
pub struct AdminRoute {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{id}` for a path parameter (axum's and OpenAPI's syntax).
    pub path: &'static str,
    /// True for the routes that need no session: login and the OpenAPI document.
    pub public: bool,
    /// The handler, as a method router.
    pub handler: fn() -> MethodRouter<AppState>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    handler: fn() -> MethodRouter<AppState>,
) -> AdminRoute {
    AdminRoute {
        method,
        path,
        public: false,
        handler,
    }
}

/// Every admin route but the reports (usage, costs, logs: [`reports::ROUTES`]) and
/// alerts ([`alerts::ROUTES`]).
pub const ADMIN_ROUTES: &[AdminRoute] = &[
    AdminRoute {
        public: true,
        ..route("POST", "/admin/api/login", || post(auth::login))
    },
    AdminRoute {
        public: true,
        ..route("GET", "/admin/api/openapi.json", || get(openapi::document))
    },
    route("POST", "/admin/api/logout", || post(auth::logout)),
    route("GET", "/admin/api/keys", || get(keys::list)),
    route("POST", "/admin/api/keys", || post(keys::create)),
    route("GET", "/admin/api/keys/{id}", || get(keys::show)),
    route("PATCH", "/admin/api/keys/{id}", || patch(keys::update)),
    route("DELETE", "/admin/api/keys/{id}", || delete(keys::remove)),
    route("POST", "/admin/api/keys/{id}/suspend", || {
        post(keys::suspend)
    }),
    route("POST", "/admin/api/keys/{id}/resume", || post(keys::resume)),
    route("POST", "/admin/api/keys/{id}/revoke", || post(keys::revoke)),
    route("POST", "/admin/api/keys/{id}/regenerate", || {
        post(keys::regenerate)
    }),
    route("GET", "/admin/api/upstreams", || get(upstreams::list)),
    route("POST", "/admin/api/upstreams", || post(upstreams::create)),
    route("GET", "/admin/api/upstreams/{id}", || get(upstreams::show)),
    route("PATCH", "/admin/api/upstreams/{id}", || {
        patch(upstreams::update)
    }),
    route("DELETE", "/admin/api/upstreams/{id}", || {
        delete(upstreams::remove)
    }),
    route("POST", "/admin/api/upstreams/{id}/enable", || {
        post(upstreams::enable)
    }),
    route("POST", "/admin/api/upstreams/{id}/disable", || {
        post(upstreams::disable)
    }),
    route("GET", "/admin/api/users", || get(users::list)),
    route("GET", "/admin/api/models", || get(models::list)),
    route("GET", "/admin/api/metrics", || get(metrics::live)),
];

/// Every admin route: [`ADMIN_ROUTES`], then [`reports::ROUTES`] and [`alerts::ROUTES`].
pub fn all_routes() -> impl Iterator<Item = &'static AdminRoute> {
    ADMIN_ROUTES
        .iter()
        .chain(reports::ROUTES.iter())
        .chain(alerts::ROUTES.iter())
}

/// The admin routes, to merge into the gateway's router: the public ones as they are,
/// the others behind [`auth::require_admin`].
pub fn routes(state: AppState) -> Router<AppState> {
    let mut public = Router::new();
    let mut protected = Router::new();
    for r in all_routes() {
        if r.public {
            public = public.route(r.path, (r.handler)());
        } else {
            protected = protected.route(r.path, (r.handler)());
        }
    }
    protected
        .route_layer(from_fn_with_state(state, auth::require_admin))
        .merge(public)
}

/// Why an admin request was refused or failed; `http/error.rs` maps each to its
/// status and envelope.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No valid session token or cookie (also after logout or expiry): 401.
    #[error("admin session required")]
    Unauthenticated,
    /// Login with a wrong username or password: 401.
    #[error("incorrect username or password")]
    BadCredentials,
    /// Too many failed logins from the address or for the user: 429.
    #[error("too many failed logins; retry after {retry_after_s} s")]
    LoginThrottled { retry_after_s: u64 },
    /// A request that cannot be done as given: 400, `param` naming the field.
    #[error("{message}")]
    Invalid {
        param: Option<String>,
        message: String,
    },
    /// No such resource: 404.
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    /// The request contradicts the resource's state (duplicate id, revoked key,
    /// configured upstream key): 409.
    #[error("{0}")]
    Conflict(String),
    /// The database failed: 500.
    #[error(transparent)]
    Store(StoreError),
    /// Something else failed: 500.
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// A 400 naming `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            param: Some(param.into()),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => AdminError::NotFound { what, id },
            StoreError::Duplicate { .. } => AdminError::Conflict(e.to_string()),
            StoreError::Invalid(message) => AdminError::Invalid {
                param: param_of(&message),
                message,
            },
            other => AdminError::Store(other),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        ApiError::Admin(self).into_response()
    }
}

/// The fields the store's validation messages start with (`"limits.rpm is 0: …"`,
/// `"tier \"x\" is not valid: …"`): the message names the field first, so the field
/// becomes the error's `param`.
const FIELDS: &[&str] = &[
    "name",
    "owner",
    "team",
    "tier",
    "env",
    "dedicated_upstream",
    "region",
    "metadata",
    "permissions.models",
    "permissions.endpoints",
    "permissions.max_tokens",
    "limits.rpm",
    "limits.rph",
    "limits.rpd",
    "limits.tpm",
    "limits.tpd",
    "limits.tokens_per_month",
    "budgets.daily",
    "budgets.monthly",
    "cors_origins",
    "ip_allowlist",
    "id",
    "provider",
    "rpm",
    "tpm",
    "weight",
    "username",
    "password",
];

/// The field a validation message is about, when it starts with one.
fn param_of(message: &str) -> Option<String> {
    let first = message.split([' ', ':']).next().unwrap_or_default();
    if FIELDS.contains(&first) {
        return Some(first.to_owned());
    }
    // Messages about an upstream key's secret and daily budget.
    if message.starts_with("the upstream key") {
        return Some("key".to_owned());
    }
    if message.starts_with("daily budget") {
        return Some("daily_budget".to_owned());
    }
    None
}

/// A list answer: `{"data": […], "next_cursor": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A complete list: one page, no cursor.
    pub fn all(data: Vec<T>) -> Page<T> {
        Page {
            data,
            next_cursor: None,
        }
    }
}

/// OpenAI's error envelope, as every admin error answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong and how to fix it.
    pub message: String,
    /// `invalid_request_error`, `api_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, e.g. `limits.rpm`.
    pub param: Option<String>,
    /// A machine-readable code, e.g. `invalid_value`, `not_found`.
    pub code: Option<String>,
}

/// Reads the request body as JSON into `T`. A problem becomes a 400 whose `param` is
/// the field at fault (`limits.rpm`) and whose message says what to fix; unknown
/// fields are refused (`T` denies them).
pub async fn json_body<T: DeserializeOwned>(request: Request) -> Result<T, AdminError> {
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| AdminError::Invalid {
            param: None,
            message: format!(
                "The request body could not be read or is larger than {MAX_BODY_BYTES} bytes."
            ),
        })?;
    parse_json(&bytes)
}

/// [`json_body`] on bytes already read.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AdminError::Invalid {
            param: None,
            message: "The request body is empty: send a JSON object.".to_owned(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_position(&inner.to_string());
        match inner.classify() {
            serde_json::error::Category::Data => {
                let param = if path == "." || path.is_empty() {
                    backticked(&message)
                } else {
                    Some(path)
                };
                let message = match &param {
                    Some(p) => format!("Invalid `{p}`: {message}."),
                    None => format!("Invalid request body: {message}."),
                };
                AdminError::Invalid { param, message }
            }
            _ => AdminError::Invalid {
                param: None,
                message: format!(
                    "The request body is not valid JSON ({message}): send a JSON object."
                ),
            },
        }
    })?;
    de.end().map_err(|_| AdminError::Invalid {
        param: None,
        message: "The request body has trailing characters after the JSON object.".to_owned(),
    })?;
    Ok(value)
}

/// serde_json's message without its ` at line L column C`.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The first `name` in backticks (`missing field `name``, `unknown field `x``).
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent → `None` (leave as
/// it is), `null` → `Some(None)` (clear), a value → `Some(Some(value))`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Unix milliseconds as RFC 3339 (UTC, seconds).
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// A JSON answer with `status`.
pub fn json_response<T: Serialize>(status: http::StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The query string's parameters; a parameter not in `known` is refused, naming it.
pub fn query_params(
    request: &Request,
    known: &[&str],
) -> Result<std::collections::HashMap<String, String>, AdminError> {
    let params: std::collections::HashMap<String, String> =
        axum::extract::Query::try_from_uri(request.uri())
            .map(|q: axum::extract::Query<_>| q.0)
            .map_err(|e| AdminError::Invalid {
                param: None,
                message: format!("The query string cannot be read: {}", e.body_text()),
            })?;
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(AdminError::invalid(
            unknown.clone(),
            format!(
                "Unknown query parameter `{unknown}`; this route takes {}.",
                known.join(", ")
            ),
        ));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        limits: Option<Limits>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        rpm: Option<u64>,
    }

    fn param(body: &str) -> (Option<String>, String) {
        match parse_json::<Body>(body.as_bytes()) {
            Err(AdminError::Invalid { param, message }) => (param, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn body_problems_name_the_field() {
        assert_eq!(
            param(r#"{"name":"x","limits":{"rpm":-1}}"#).0.as_deref(),
            Some("limits.rpm")
        );
        assert_eq!(
            param(r#"{"name":"x","limits":{"rpx":1}}"#).0.as_deref(),
            Some("limits.rpx")
        );
        let (p, m) = param(r#"{"name":"x","colour":1}"#);
        assert_eq!(p.as_deref(), Some("colour"), "{m}");
        assert!(m.contains("unknown field"), "{m}");
        assert_eq!(param(r#"{}"#).0.as_deref(), Some("name"));
        assert_eq!(param(r#"{"name":"#).0, None);
        assert_eq!(param(r#"{"name":"x"} 1"#).0, None);
        assert_eq!(param("").0, None);
        assert!(parse_json::<Body>(br#"{"name":"x","limits":{"rpm":5}}"#).is_ok());
    }

    #[test]
    fn store_messages_become_params() {
        assert_eq!(
            param_of("limits.tpm is 0: give …").as_deref(),
            Some("limits.tpm")
        );
        assert_eq!(
            param_of("tier \"a b\" is not valid").as_deref(),
            Some("tier")
        );
        assert_eq!(
            param_of("cors_origins: \"x\" is not").as_deref(),
            Some("cors_origins")
        );
        assert_eq!(
            param_of("the upstream key is empty").as_deref(),
            Some("key")
        );
        assert_eq!(param_of("something else"), None);
    }
}
