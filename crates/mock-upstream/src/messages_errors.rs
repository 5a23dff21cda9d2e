//! Error answers in Anthropic's shape:
//! `{"type":"error","error":{"type","message"},"request_id":"req_…"}`, with the same
//! id in the `request-id` header.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Context window claimed by the context-length error.
pub(crate) const CONTEXT_WINDOW: u32 = 200_000;
/// Prompt size claimed by the context-length error.
pub(crate) const CONTEXT_PROMPT: u32 = 250_000;

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Detail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

/// The type and message Anthropic uses for a status.
fn describe(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "invalid_request_error",
            "There was an issue with the format or content of your request (mock upstream).",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => (
            "billing_error",
            "Your credit balance is too low to access the API (mock upstream).",
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource (mock upstream).",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found (mock upstream).",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes (mock upstream).",
        ),
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your per-minute rate limit (mock upstream).",
        ),
        529 => ("overloaded_error", "Overloaded"),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => (
            "invalid_request_error",
            "The request failed (mock upstream).",
        ),
    }
}

/// The request id of error `id`, as in the body and the `request-id` header.
pub(crate) fn request_id(id: u64) -> String {
    format!("req_mock{id}")
}

fn envelope(status: StatusCode, kind: &'static str, message: &str, id: u64) -> Response {
    let request_id = request_id(id);
    let body = serde_json::to_vec(&Envelope {
        kind: "error",
        error: Detail { kind, message },
        request_id: &request_id,
    })
    .unwrap_or_default();
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// The canned error for `status`; with `retry_after_s`, also `retry-after` and
/// `anthropic-ratelimit-requests-remaining: 0`.
pub(crate) fn status(status: u16, retry_after_s: Option<u64>, id: u64) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = describe(code.as_u16());
    let mut response = envelope(code, kind, message, id);
    if let Some(seconds) = retry_after_s {
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        headers.insert(
            "anthropic-ratelimit-requests-limit",
            HeaderValue::from(crate::ratelimit::ANTHROPIC_REQUESTS),
        );
        headers.insert(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from(0u32),
        );
    }
    response
}

/// 401 for a request without `x-api-key`.
pub(crate) fn missing_key(id: u64) -> Response {
    envelope(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "x-api-key header is required",
        id,
    )
}

/// 400 `invalid_request_error` with `message`.
pub(crate) fn invalid_request(message: &str, id: u64) -> Response {
    envelope(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        id,
    )
}

/// 400 for a prompt longer than the context window.
pub(crate) fn context_length(id: u64) -> Response {
    let message = format!("prompt is too long: {CONTEXT_PROMPT} tokens > {CONTEXT_WINDOW} maximum");
    invalid_request(&message, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_has_its_type() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
            (529, "overloaded_error"),
            (418, "invalid_request_error"),
        ] {
            assert_eq!(describe(status).0, kind, "{status}");
        }
    }
}
