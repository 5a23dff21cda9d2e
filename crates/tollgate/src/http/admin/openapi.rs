//! `GET /admin/api/openapi.json`: the admin API's OpenAPI 3 document, derived from the
//! handlers' `#[utoipa::path]` attributes and the request and response types. Public,
//! like login.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, keys, metrics, models, reports, upstreams, users};

/// The admin API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate admin API",
        description = "Client keys, upstream keys, users, models, live figures, and usage, cost and log reports of a Tollgate gateway. Log in with POST /admin/api/login, then send `Authorization: Bearer <access_token>` (or the `tollgate_session` cookie). Errors use OpenAI's envelope; `param` names the field at fault."
    ),
    paths(
        auth::login,
        auth::logout,
        document,
        keys::list,
        keys::create,
        keys::show,
        keys::update,
        keys::remove,
        keys::suspend,
        keys::resume,
        keys::revoke,
        keys::regenerate,
        upstreams::list,
        upstreams::create,
        upstreams::show,
        upstreams::update,
        upstreams::remove,
        upstreams::enable,
        upstreams::disable,
        users::list,
        models::list,
        metrics::live,
    ),
    components(schemas(super::ErrorEnvelope, super::ErrorDetail)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session_cookie" = [])),
    tags(
        (name = "session", description = "Login and logout"),
        (name = "keys", description = "Client keys (SPEC §4)"),
        (name = "upstreams", description = "Upstream provider keys (SPEC §5)"),
        (name = "users", description = "Key owners and admin users"),
        (name = "models", description = "The model table"),
        (name = "metrics", description = "Live figures"),
        (name = "openapi", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Declares how requests authenticate: a bearer token or the session cookie.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The access_token from POST /admin/api/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "Set by POST /admin/api/login (HttpOnly, SameSite=Strict)",
            ))),
        );
    }
}

/// The whole document: [`ApiDoc`] with the reports' part merged in.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(reports::ReportsDoc::openapi());
    doc.merge(super::alerts::AlertsDoc::openapi());
    doc
}

/// This API's OpenAPI 3 document.
#[utoipa::path(
    get,
    operation_id = "get_openapi_document",
    path = "/admin/api/openapi.json",
    tag = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn document() -> Response {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(&openapi()).unwrap_or_default());
    (
        StatusCode::OK,
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response()
}
