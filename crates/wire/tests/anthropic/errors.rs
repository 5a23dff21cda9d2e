//! Error bodies, both ways.

use wire::anthropic::{messages_error_to_openai, openai_error_to_messages};
use wire::openai::ErrorEnvelope;

use crate::support::{anthropic_shape, assert_json_eq, json, openai_schema, parse, read};

/// Egress: `anthropic/errors/<case>.json` answered with `status` → `openai/errors/<case>.json`.
fn check_egress(case: &str, status: u16) {
    let envelope =
        messages_error_to_openai(status, &read(&format!("anthropic/errors/{case}.json")));
    let out = parse(&envelope.to_vec(), case);
    openai_schema::error_envelope(&out);
    assert_json_eq(&out, &json(&format!("openai/errors/{case}.json")), case);
}

/// Ingress: `openai/errors/ingress_<case>.json` with `status` → `anthropic/errors/ingress_<case>.json`.
fn check_ingress(case: &str, status: u16) {
    let name = format!("ingress_{case}");
    let envelope: ErrorEnvelope =
        serde_json::from_slice(&read(&format!("openai/errors/{name}.json"))).expect("envelope");
    let out = parse(&openai_error_to_messages(status, &envelope), &name);
    anthropic_shape::error_body(&out);
    assert_json_eq(&out, &json(&format!("anthropic/errors/{name}.json")), &name);
}

#[test]
fn anthropic_errors_of_each_type_become_openai_envelopes() {
    for (case, status) in [
        ("invalid_request_error", 400),
        ("prompt_too_long", 400),
        ("authentication_error", 401),
        ("permission_error", 403),
        ("not_found_error", 404),
        ("request_too_large", 413),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("overloaded_error", 529),
    ] {
        check_egress(case, status);
    }
}

#[test]
fn bodies_that_are_not_anthropic_errors_map_from_the_status() {
    for (status, kind, code) in [
        (401, "invalid_request_error", Some("invalid_api_key")),
        (404, "invalid_request_error", Some("model_not_found")),
        (429, "requests", Some("rate_limit_exceeded")),
        (500, "server_error", None),
        (502, "server_error", None),
        (529, "server_error", Some("overloaded")),
    ] {
        let envelope = messages_error_to_openai(
            status,
            b"upstream connect error or disconnect/reset before headers",
        );
        assert_eq!(envelope.error.kind, kind, "type for {status}");
        assert_eq!(envelope.error.code.as_deref(), code, "code for {status}");
        assert!(
            envelope.error.message.contains(&format!("HTTP {status}")),
            "{}",
            envelope.error.message
        );
        assert!(
            envelope.error.message.contains("upstream connect error"),
            "{}",
            envelope.error.message
        );
        openai_schema::error_envelope(&parse(&envelope.to_vec(), "envelope"));
    }
    let envelope = messages_error_to_openai(400, br#"{"detail":"odd"}"#);
    assert_eq!(envelope.error.kind, "invalid_request_error");
    assert!(
        envelope.error.message.contains("unrecognised JSON body"),
        "{}",
        envelope.error.message
    );
}

#[test]
fn openai_errors_become_anthropic_error_bodies() {
    for (case, status) in [
        ("context_length_exceeded", 400),
        ("invalid_api_key", 401),
        ("key_not_allowed", 403),
        ("model_not_found", 404),
        ("body_too_large", 413),
        ("rate_limit_exceeded", 429),
        ("server_error", 500),
        ("upstream_failed", 502),
        ("no_upstream_key", 503),
    ] {
        check_ingress(case, status);
    }
}

#[test]
fn every_status_gets_a_documented_anthropic_type() {
    let envelope = ErrorEnvelope::new("x", "invalid_request_error", None, None);
    for status in [
        400, 401, 402, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503, 504, 529,
    ] {
        let out = parse(&openai_error_to_messages(status, &envelope), "body");
        anthropic_shape::error_body(&out);
    }
    let kind = |status| {
        parse(&openai_error_to_messages(status, &envelope), "body")["error"]["type"].clone()
    };
    assert_eq!(kind(529), "overloaded_error");
    assert_eq!(kind(422), "invalid_request_error");
    assert_eq!(kind(504), "api_error");
}
