//! OpenAI error envelope → Anthropic error body.

use serde_json::json;

use super::json;
use crate::openai::ErrorEnvelope;

/// An OpenAI error envelope + HTTP status → an Anthropic error body
/// (`{"type":"error","error":{"type","message"}}`), the type chosen from the status:
/// 400 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 503/529
/// `overloaded_error`, other 4xx `invalid_request_error` (as Anthropic does), anything else
/// `api_error`. Only the types Anthropic documents are used, so every SDK knows them.
pub fn openai_error_to_messages(status: u16, envelope: &ErrorEnvelope) -> Vec<u8> {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        402..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json::to_vec(&json!({
        "type": "error",
        "error": {"type": kind, "message": envelope.error.message},
    }))
}
