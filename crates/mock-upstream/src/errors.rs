//! Error answers in OpenAI's shape: `{"error":{"message","type","param","code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The message, type and code OpenAI uses for a status.
fn describe(status: u16) -> (&'static str, &'static str, Option<&'static str>) {
    match status {
        400 => ("Mock upstream: bad request.", "invalid_request_error", None),
        401 => (
            "Incorrect API key provided (mock upstream).",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "You are not allowed to use this key (mock upstream).",
            "permission_error",
            Some("permission_denied"),
        ),
        404 => (
            "The model does not exist or you do not have access to it (mock upstream).",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => (
            "Rate limit reached for requests (mock upstream).",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => (
            "The server had an error while processing your request (mock upstream).",
            "server_error",
            None,
        ),
        503 => (
            "The engine is currently overloaded, please try again later (mock upstream).",
            "server_error",
            Some("overloaded"),
        ),
        s if s >= 500 => ("Mock upstream: server error.", "server_error", None),
        _ => (
            "Mock upstream: request failed.",
            "invalid_request_error",
            None,
        ),
    }
}

fn envelope(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    });
    (status, axum::Json(body)).into_response()
}

/// The canned error for `status`, with `Retry-After` (and OpenAI's reset header)
/// when `retry_after_s` is set.
pub(crate) fn status(status: u16, retry_after_s: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, kind, error_code) = describe(code.as_u16());
    let mut response = envelope(code, message, kind, None, error_code);
    if let Some(seconds) = retry_after_s {
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        if let Ok(reset) = HeaderValue::from_str(&format!("{seconds}s")) {
            headers.insert("x-ratelimit-reset-requests", reset);
        }
        headers.insert("x-ratelimit-remaining-requests", HeaderValue::from(0u32));
    }
    response
}

/// 401 for a request without `Authorization: Bearer …`.
pub(crate) fn missing_key() -> Response {
    envelope(
        StatusCode::UNAUTHORIZED,
        "You didn't provide an API key. Provide it in the Authorization header (Bearer auth).",
        "invalid_request_error",
        None,
        None,
    )
}

/// 400 for a body the mock cannot use.
pub(crate) fn invalid_request(message: &str, param: Option<&str>) -> Response {
    envelope(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

/// 404 for any path the mock does not serve.
pub(crate) fn unknown_route() -> Response {
    envelope(
        StatusCode::NOT_FOUND,
        "Unknown request URL (mock upstream).",
        "invalid_request_error",
        None,
        Some("unknown_url"),
    )
}

/// Context window of the model in the context-length error.
pub(crate) const CONTEXT_WINDOW: u32 = 128_000;
/// Prompt size claimed by the context-length error.
pub(crate) const CONTEXT_PROMPT: u32 = 250_000;

/// 400 `context_length_exceeded`, worded as OpenAI words it for chat.
pub(crate) fn context_length() -> Response {
    let message = format!(
        "This model's maximum context length is {CONTEXT_WINDOW} tokens. However, your \
         messages resulted in {CONTEXT_PROMPT} tokens. Please reduce the length of the messages."
    );
    envelope(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        Some("messages"),
        Some("context_length_exceeded"),
    )
}
