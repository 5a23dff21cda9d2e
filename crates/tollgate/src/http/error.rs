//! The one place errors become HTTP: status, OpenAI's error envelope, headers.
//! Every match here is exhaustive, so a new variant forces a decision.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use wire::openai::ErrorEnvelope;

use super::admin::AdminError;
use crate::admission::check::PolicyError;
use crate::admission::counters::{BudgetPeriod, LimitKind, Refusal, Scope};
use crate::admission::hmac::HmacError;
use crate::admission::{AdmissionError, CountersError};
use crate::auth::AuthError;
use std::borrow::Cow;

use crate::providers::{UpstreamError, UpstreamErrorKind};
use crate::relay::{Attempt, RelayError};
use crate::routing::RouteError;

/// Everything a client route can answer with instead of a relayed response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(String),
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The key's policy refuses where the call comes from.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A signing key's request without a valid signature.
    #[error(transparent)]
    Signature(#[from] HmacError),
    /// A signature that was already used.
    #[error("signature replayed")]
    SignatureReplayed,
    /// `/metrics` without the configured `server.metrics_token`.
    #[error("metrics token required")]
    MetricsToken,
    /// The counters behind `/v1/usage` could not be read.
    #[error(transparent)]
    Counters(#[from] CountersError),
    #[error("unknown path {0}")]
    UnknownPath(String),
    /// A `/v1/messages` request that cannot be read as an Anthropic request.
    #[error("{}", .0.message)]
    AnthropicRequest(wire::anthropic::TranslateError),
    /// An answer that cannot be turned into an Anthropic answer.
    #[error("{}", .0.message)]
    AnthropicAnswer(wire::anthropic::TranslateError),
    /// The admin API refused or failed a request.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

struct Mapped {
    status: StatusCode,
    kind: &'static str,
    code: Option<Cow<'static, str>>,
    param: Option<Cow<'static, str>>,
    message: String,
    retry_after_s: Option<u64>,
}

fn mapped(
    status: u16,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
) -> Mapped {
    Mapped {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        kind,
        code: code.map(Cow::Borrowed),
        param: param.map(Cow::Borrowed),
        message,
        retry_after_s: None,
    }
}

impl ApiError {
    fn map(&self) -> Mapped {
        match self {
            ApiError::Auth(e) => auth(*e),
            ApiError::BodyTooLarge { limit } => mapped(413, "invalid_request_error", Some("request_too_large"), None, format!("The request body is larger than the limit of {limit} bytes. Send a smaller request.")),
            ApiError::BodyUnreadable(why) => mapped(400, "invalid_request_error", None, None, format!("The request body could not be read: {why}")),
            ApiError::Relay(e) => relay(e),
            ApiError::Policy(e) => policy(e),
            ApiError::Counters(e) => limits_unavailable(e),
            ApiError::MetricsToken => mapped(401, "invalid_request_error", Some("invalid_metrics_token"), None, "GET /metrics needs `Authorization: Bearer <server.metrics_token>`.".to_owned()),
            ApiError::Signature(e) => mapped(401, "invalid_request_error", Some("invalid_signature"), None, format!("Invalid request signature: {e}")),
            ApiError::SignatureReplayed => mapped(401, "invalid_request_error", Some("signature_replayed"), None, "This request signature was already used. Sign every request anew with the current time; a signature is accepted once.".to_owned()),
            ApiError::AnthropicRequest(e) => Mapped {
                param: None,
                ..mapped(400, "invalid_request_error", None, None, format!("{}{}", e.param.as_deref().map(|p| format!("{p}: ")).unwrap_or_default(), e.message))
            },
            ApiError::AnthropicAnswer(e) => mapped(502, "api_error", Some("upstream_failed"), None, format!("The upstream answer could not be translated to Anthropic's format: {}", e.message)),
            ApiError::UnknownPath(path) => mapped(404, "invalid_request_error", Some("unknown_url"), None, format!("Unknown request URL: {path}. See the README for the routes Tollgate serves.")),
            ApiError::Admin(e) => admin(e),
        }
    }
}

fn admin(e: &AdminError) -> Mapped {
    match e {
        AdminError::Unauthenticated => mapped(401, "invalid_request_error", Some("invalid_admin_session"), None, "This admin route needs a session: log in with POST /admin/api/login, then send `Authorization: Bearer <access_token>` (or the tollgate_session cookie). Sessions end at logout and after 12 hours.".to_owned()),
        AdminError::BadCredentials => mapped(401, "invalid_request_error", Some("invalid_credentials"), None, "Incorrect username or password.".to_owned()),
        AdminError::LoginThrottled { retry_after_s } => Mapped {
            retry_after_s: Some(*retry_after_s),
            ..mapped(429, "requests", Some("too_many_login_attempts"), None, format!("Too many failed logins from this address or for this user. Retry after {retry_after_s} s."))
        },
        AdminError::Invalid { param, message } => Mapped {
            param: param.clone().map(Cow::Owned),
            ..mapped(400, "invalid_request_error", Some("invalid_value"), None, message.clone())
        },
        AdminError::NotFound { what, id } => mapped(404, "invalid_request_error", Some("not_found"), None, format!("No {what} with id {id:?}. List them with GET on the collection.")),
        AdminError::Conflict(message) => mapped(409, "invalid_request_error", Some("conflict"), None, message.clone()),
        AdminError::Store(e) => {
            tracing::error!(error = %e, "admin request failed in the store");
            mapped(500, "api_error", Some("storage_error"), None, format!("The database failed: {e}. Retry; if it persists, check the gateway's log."))
        }
        AdminError::Internal(why) => mapped(500, "api_error", None, None, format!("The request failed: {why}")),
    }
}

fn auth(e: AuthError) -> Mapped {
    match e {
        AuthError::MissingKey => mapped(401, "invalid_request_error", Some("invalid_api_key"), None, "You didn't provide an API key. Send it as `Authorization: Bearer tg-…` or in the `x-api-key` header.".to_owned()),
        AuthError::UnknownKey => mapped(401, "invalid_request_error", Some("invalid_api_key"), None, "Incorrect API key provided. Use a key issued by this gateway (`tollgate keys create`).".to_owned()),
        AuthError::Revoked => mapped(403, "permission_error", Some("key_revoked"), None, "This API key has been revoked. Ask your administrator for a new key.".to_owned()),
        AuthError::Suspended => mapped(403, "permission_error", Some("key_suspended"), None, "This API key is suspended. Ask your administrator to resume it.".to_owned()),
        AuthError::Expired => mapped(403, "permission_error", Some("key_expired"), None, "This API key has expired. Ask your administrator for a new key.".to_owned()),
    }
}

fn relay(e: &RelayError) -> Mapped {
    match e {
        RelayError::InvalidBody(b) => mapped(
            400,
            "invalid_request_error",
            Some("invalid_json"),
            None,
            b.message.clone(),
        ),
        RelayError::MissingModel => mapped(
            400,
            "invalid_request_error",
            Some("missing_model"),
            Some("model"),
            "You must provide a model parameter.".to_owned(),
        ),
        RelayError::StreamNotSupported(path) => mapped(
            400,
            "invalid_request_error",
            None,
            Some("stream"),
            format!("Streaming is not supported on {path}; remove `stream`."),
        ),
        RelayError::Route(RouteError::UnknownModel(_)) => mapped(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
            e.to_string(),
        ),
        RelayError::Route(RouteError::Unsupported { .. }) => mapped(
            400,
            "invalid_request_error",
            Some("model_not_supported"),
            Some("model"),
            e.to_string(),
        ),
        RelayError::Route(RouteError::NotAllowed { .. }) => mapped(
            403,
            "permission_error",
            Some("model_not_allowed"),
            Some("model"),
            e.to_string(),
        ),
        RelayError::Policy(e) => policy(e),
        RelayError::Admission(AdmissionError::Refused(r)) => refused(r),
        RelayError::Admission(AdmissionError::Backend(e)) => limits_unavailable(e),
        RelayError::Upstream { error, attempts } => upstream(error, attempts),
    }
}

fn policy(e: &PolicyError) -> Mapped {
    match e {
        PolicyError::MaxTokens { .. } => mapped(
            400,
            "invalid_request_error",
            Some(e.code()),
            Some("max_tokens"),
            e.to_string(),
        ),
        PolicyError::Model { .. } => mapped(
            403,
            "permission_error",
            Some(e.code()),
            Some("model"),
            e.to_string(),
        ),
        PolicyError::Endpoint { .. }
        | PolicyError::Streaming
        | PolicyError::Tools
        | PolicyError::Vision
        | PolicyError::Ip { .. }
        | PolicyError::Origin { .. } => {
            mapped(403, "permission_error", Some(e.code()), None, e.to_string())
        }
    }
}

/// A limit or budget refusal: 429 with Retry-After.
fn refused(r: &Refusal) -> Mapped {
    let base = match r {
        Refusal::RateLimited {
            kind,
            limit,
            retry_after_s,
            ..
        } => {
            let (what, window) = match kind {
                LimitKind::Rpm => ("requests", "per minute"),
                LimitKind::Rph => ("requests", "per hour"),
                LimitKind::Rpd => ("requests", "per day"),
                LimitKind::Tpm => ("tokens", "per minute"),
                LimitKind::Tpd => ("tokens", "per day"),
                LimitKind::TokensPerMonth => ("tokens", "per month"),
            };
            // OpenAI's 429s name the exhausted kind as the error type.
            mapped(429, what, Some("rate_limit_exceeded"), None, format!(
                "Rate limit reached for this API key: {limit} {what} {window} ({}). Retry after {retry_after_s} s, or ask your administrator for a higher limit.",
                kind.as_str()
            ))
        }
        Refusal::BudgetExceeded {
            scope,
            period,
            limit_nanos,
            committed_nanos,
            retry_after_s,
            ..
        } => {
            let whose = match scope {
                Scope::Key => "this API key's",
                Scope::Owner => "your owner's",
                Scope::Global => "the gateway's global",
            };
            let window = match period {
                BudgetPeriod::Daily => "daily",
                BudgetPeriod::Monthly => "monthly",
            };
            mapped(429, "insufficient_quota", Some("budget_exceeded"), None, format!(
                "Budget exceeded: {whose} {window} budget of {:.2} is used up ({:.4} spent or reserved). It renews in {retry_after_s} s; ask your administrator to raise it.",
                *limit_nanos as f64 / 1e9,
                *committed_nanos as f64 / 1e9,
            ))
        }
    };
    Mapped {
        retry_after_s: Some(r.retry_after_s()),
        ..base
    }
}

fn limits_unavailable(e: &CountersError) -> Mapped {
    Mapped {
        retry_after_s: Some(1),
        ..mapped(503, "api_error", Some("limits_unavailable"), None, format!("Limits cannot be checked right now, so the call was not admitted: {e}. Retry shortly."))
    }
}

/// The last upstream error, with every model, provider and upstream key tried.
fn upstream(error: &UpstreamError, attempts: &[Attempt]) -> Mapped {
    let tried = attempts
        .iter()
        .map(|a| {
            let keys = a
                .keys
                .iter()
                .map(|k| k.as_ref())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "model `{}` on provider `{}` (upstream keys tried: {keys})",
                a.model, a.provider
            )
        })
        .collect::<Vec<_>>()
        .join("; then ");
    let detail = &error.message;
    match (error.kind, error.status) {
        (UpstreamErrorKind::Timeout, _) => mapped(
            504,
            "api_error",
            Some("upstream_timeout"),
            None,
            format!("The upstream timed out. Tried {tried}. Last error: {detail}"),
        ),
        (UpstreamErrorKind::Status, Some(429 | 503)) => Mapped {
            retry_after_s: Some(error.retry_after.map_or(1, |d| d.as_secs().max(1))),
            ..mapped(
                503,
                "api_error",
                Some("no_usable_upstream_key"),
                None,
                format!("No usable upstream key. Tried {tried}. Last error: {detail}"),
            )
        },
        (UpstreamErrorKind::Status, Some(s @ (400 | 404 | 409 | 413 | 422))) => Mapped {
            code: Some(
                error
                    .code
                    .clone()
                    .map_or(Cow::Borrowed("upstream_rejected_request"), Cow::Owned),
            ),
            ..mapped(
                s,
                "invalid_request_error",
                None,
                None,
                format!("The upstream refused the request. Tried {tried}. Last error: {detail}"),
            )
        },
        (UpstreamErrorKind::Status, _)
        | (UpstreamErrorKind::Connect, _)
        | (UpstreamErrorKind::BadResponse, _) => mapped(
            502,
            "api_error",
            Some("upstream_failed"),
            None,
            format!("The upstream failed. Tried {tried}. Last error: {detail}"),
        ),
    }
}

impl RelayError {
    /// The HTTP status this error is answered with (for the usage row).
    pub fn http_status(&self) -> u16 {
        relay(self).status.as_u16()
    }
}

impl ApiError {
    /// The same answer in Anthropic's error shape, for `/v1/messages`.
    pub fn into_anthropic_response(self) -> Response {
        let m = self.map();
        let envelope = ErrorEnvelope::new(m.message, m.kind, m.param.as_deref(), m.code.as_deref());
        let body = wire::anthropic::openai_error_to_messages(m.status.as_u16(), &envelope);
        let mut response = (
            m.status,
            [(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(s) = m.retry_after_s {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let m = self.map();
        let envelope = ErrorEnvelope::new(m.message, m.kind, m.param.as_deref(), m.code.as_deref());
        let mut response = (
            m.status,
            [(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            envelope.to_vec(),
        )
            .into_response();
        if let Some(s) = m.retry_after_s {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
