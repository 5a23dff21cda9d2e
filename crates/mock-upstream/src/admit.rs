//! The common start of every `/v1` request: read the body, decide the outcome from
//! the script or the key, record the request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;

use crate::errors;
use crate::messages_errors;
use crate::outcome::{self, Dialect, Outcome};
use crate::shared::Shared;

/// Largest request body the mock reads.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The `anthropic-version` values the Messages API accepts.
const ANTHROPIC_VERSIONS: [&str; 2] = ["2023-06-01", "2023-01-01"];

/// Where a request carries its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer <key>` (OpenAI).
    Bearer,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
    /// Either, the bearer first (unknown paths).
    Any,
}

impl KeyHeader {
    /// The key found in `headers`, if any.
    pub(crate) fn key(self, headers: &HeaderMap) -> Option<&str> {
        match self {
            KeyHeader::Bearer => bearer(headers),
            KeyHeader::XApiKey => x_api_key(headers),
            KeyHeader::Any => bearer(headers).or_else(|| x_api_key(headers)),
        }
    }
}

/// The bearer key of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    (!key.is_empty()).then_some(key)
}

/// The `x-api-key` of a request, if it has one.
fn x_api_key(headers: &HeaderMap) -> Option<&str> {
    let key = headers.get("x-api-key")?.to_str().ok()?.trim();
    (!key.is_empty()).then_some(key)
}

/// What is wrong with a request's `anthropic-version` header, in the API's words.
fn version_problem(headers: &HeaderMap) -> Option<String> {
    let Some(value) = headers.get("anthropic-version") else {
        return Some("anthropic-version: header is required".to_owned());
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    if ANTHROPIC_VERSIONS.contains(&value.trim()) {
        None
    } else {
        Some(format!(
            "anthropic-version: {value:?} is not a valid version"
        ))
    }
}

/// The behaviour a key asks for by its prefix (`mock-401…`, `mock-429-retry-N…`).
fn key_behaviour(key: &str) -> Outcome {
    let Some(rest) = key.strip_prefix("mock-") else {
        return Outcome::Serve;
    };
    let fail = |status, retry_after_s| Outcome::Fail {
        status,
        retry_after_s,
    };
    if rest.starts_with("401") {
        fail(401, None)
    } else if rest.starts_with("403") {
        fail(403, None)
    } else if let Some(after) = rest.strip_prefix("429") {
        let seconds = after
            .strip_prefix("-retry-")
            .and_then(|tail| tail.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(1);
        fail(429, Some(seconds))
    } else if rest.starts_with("500") {
        fail(500, None)
    } else if rest.starts_with("529") {
        fail(529, None)
    } else if rest.starts_with("hang") {
        Outcome::Hang
    } else {
        Outcome::Serve
    }
}

/// The outcome fixed before the body is looked at: a scripted step first, then
/// a missing key, then the key's behaviour prefix.
fn decide(shared: &Shared, key: Option<&str>) -> Outcome {
    let Some(key) = key else {
        return Outcome::MissingKey;
    };
    if let Some(step) = shared.scripts.pop(key) {
        return step.into();
    }
    key_behaviour(key)
}

/// A request that passed admission.
pub(crate) struct Admitted {
    /// The request body.
    pub(crate) body: Bytes,
    /// Requests seen with this request's key so far, this one included.
    pub(crate) key_requests: u64,
}

/// Reads and records an OpenAI request (key in `Authorization: Bearer`).
pub(crate) async fn admit(shared: &Arc<Shared>, request: Request) -> Result<Admitted, Response> {
    admit_as(shared, request, Dialect::OpenAi).await
}

/// Reads and records the request. `Ok` means: go on and serve it; `Err(response)`
/// is the answer already decided (script, key, `anthropic-version`, unreadable
/// body), in the dialect's error shape.
pub(crate) async fn admit_as(
    shared: &Arc<Shared>,
    request: Request,
    dialect: Dialect,
) -> Result<Admitted, Response> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await;
    let key_header = dialect.key_header();
    let outcome = decide(shared, key_header.key(&parts.headers));
    let version = match (dialect, outcome) {
        (Dialect::Anthropic, Outcome::Serve) => version_problem(&parts.headers),
        _ => None,
    };
    let key_requests = shared.recorder.record(
        parts.uri.path(),
        key_header,
        parts.headers,
        body.clone().unwrap_or_default(),
    );
    if outcome != Outcome::Serve {
        let delay = shared.options.first_byte_delay;
        return Err(outcome::answer(shared, outcome, delay, dialect).await);
    }
    if let Some(message) = version {
        return Err(messages_errors::invalid_request(&message, shared.next_id()));
    }
    match (body, dialect) {
        (Ok(body), _) => Ok(Admitted { body, key_requests }),
        (Err(()), Dialect::OpenAi) => Err(errors::invalid_request(
            "Could not read the request body.",
            None,
        )),
        (Err(()), Dialect::Anthropic) => Err(messages_errors::invalid_request(
            "Could not read the request body.",
            shared.next_id(),
        )),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ()> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_keys() {
        assert_eq!(key_behaviour("sk-anything"), Outcome::Serve);
        assert_eq!(
            key_behaviour("mock-429-retry-7-abc"),
            Outcome::Fail {
                status: 429,
                retry_after_s: Some(7)
            }
        );
        assert_eq!(
            key_behaviour("mock-429x"),
            Outcome::Fail {
                status: 429,
                retry_after_s: Some(1)
            }
        );
        assert_eq!(key_behaviour("mock-hang-2"), Outcome::Hang);
        assert_eq!(
            key_behaviour("mock-403"),
            Outcome::Fail {
                status: 403,
                retry_after_s: None
            }
        );
        assert_eq!(
            key_behaviour("mock-529-b"),
            Outcome::Fail {
                status: 529,
                retry_after_s: None
            }
        );
    }

    #[test]
    fn keys_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", " sk-ant ".parse().expect("value"));
        assert_eq!(KeyHeader::XApiKey.key(&headers), Some("sk-ant"));
        assert_eq!(KeyHeader::Bearer.key(&headers), None);
        assert_eq!(KeyHeader::Any.key(&headers), Some("sk-ant"));
        let bearer = "Bearer sk-oai".parse().expect("value");
        headers.insert(header::AUTHORIZATION, bearer);
        assert_eq!(KeyHeader::Any.key(&headers), Some("sk-oai"));
    }

    #[test]
    fn anthropic_version_is_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            version_problem(&headers).as_deref(),
            Some("anthropic-version: header is required")
        );
        headers.insert("anthropic-version", "2023-06-01".parse().expect("value"));
        assert_eq!(version_problem(&headers), None);
        headers.insert("anthropic-version", "2024-10-22".parse().expect("value"));
        assert_eq!(
            version_problem(&headers).as_deref(),
            Some(r#"anthropic-version: "2024-10-22" is not a valid version"#)
        );
    }
}
