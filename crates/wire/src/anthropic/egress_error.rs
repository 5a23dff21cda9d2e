//! Anthropic error body → OpenAI error envelope.

use serde_json::Value;

use crate::openai::ErrorEnvelope;

/// The most of a non-JSON body quoted in a message.
const QUOTE_LIMIT: usize = 200;

/// Anthropic error body + HTTP status → OpenAI error envelope.
///
/// | Anthropic `error.type` | OpenAI `type` / `code` |
/// | --- | --- |
/// | `invalid_request_error` | `invalid_request_error` / null (`context_length_exceeded` for "prompt is too long") |
/// | `authentication_error` | `invalid_request_error` / `invalid_api_key` |
/// | `permission_error` | `invalid_request_error` / `permission_denied` |
/// | `not_found_error` | `invalid_request_error` / `model_not_found` |
/// | `request_too_large` | `invalid_request_error` / `request_too_large` |
/// | `rate_limit_error` | `requests` / `rate_limit_exceeded` |
/// | `billing_error` | `insufficient_quota` / `insufficient_quota` |
/// | `timeout_error` | `server_error` / `timeout` |
/// | `api_error` | `server_error` / null |
/// | `overloaded_error` | `server_error` / `overloaded` |
///
/// Unknown types and bodies that are not Anthropic errors (a proxy's HTML page, say) are
/// mapped from `status` the same way, with a message saying what came back.
pub fn messages_error_to_openai(status: u16, body: &[u8]) -> ErrorEnvelope {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str);
    let message = match field("message") {
        Some(message) => message.to_owned(),
        None => describe_body(status, body, parsed.is_some()),
    };
    let kind = field("type").unwrap_or_else(|| type_for_status(status));
    let (openai_type, code) = match kind {
        "invalid_request_error" if is_context_overflow(&message) => {
            ("invalid_request_error", Some("context_length_exceeded"))
        }
        "invalid_request_error" => ("invalid_request_error", None),
        "authentication_error" => ("invalid_request_error", Some("invalid_api_key")),
        "permission_error" => ("invalid_request_error", Some("permission_denied")),
        "not_found_error" => ("invalid_request_error", Some("model_not_found")),
        "request_too_large" => ("invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => ("requests", Some("rate_limit_exceeded")),
        "billing_error" => ("insufficient_quota", Some("insufficient_quota")),
        "timeout_error" => ("server_error", Some("timeout")),
        "overloaded_error" => ("server_error", Some("overloaded")),
        "api_error" => ("server_error", None),
        _ if status < 500 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    ErrorEnvelope::new(message, openai_type, None, code)
}

/// The Anthropic error type a status stands for (Anthropic's documented table).
fn type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn is_context_overflow(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("prompt is too long")
        || lower.contains("context window")
        || lower.contains("context length")
}

/// A message for an error body without an Anthropic `error.message`.
fn describe_body(status: u16, body: &[u8], is_json: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return format!("The upstream answered HTTP {status} with an empty body.");
    }
    let quoted = match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    let what = if is_json {
        "an unrecognised JSON body"
    } else {
        "a body that is not JSON"
    };
    format!("The upstream answered HTTP {status} with {what}: {quoted}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_get_a_status_derived_envelope() {
        let e = messages_error_to_openai(
            413,
            b"<html>\n<head><title>413 Request Entity Too Large</title></head></html>",
        );
        assert_eq!(e.error.kind, "invalid_request_error");
        assert_eq!(e.error.code.as_deref(), Some("request_too_large"));
        assert!(
            e.error
                .message
                .starts_with("The upstream answered HTTP 413 with a body that is not JSON: <html>"),
            "{}",
            e.error.message
        );
        let e = messages_error_to_openai(502, b"");
        assert_eq!(e.error.kind, "server_error");
        assert_eq!(
            e.error.message,
            "The upstream answered HTTP 502 with an empty body."
        );
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let e = messages_error_to_openai(500, body.as_bytes());
        assert!(e.error.message.ends_with('…'));
        assert!(e.error.message.len() < 300);
    }
}
