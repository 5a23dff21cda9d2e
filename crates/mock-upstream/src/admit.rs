//! The common start of every `/v1` request: read the body, decide the outcome from
//! the script or the key, record the request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;

use crate::errors;
use crate::outcome::{self, Outcome};
use crate::shared::Shared;

/// Largest request body the mock reads.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

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
    } else if rest.starts_with("hang") {
        Outcome::Hang
    } else {
        Outcome::Serve
    }
}

/// The outcome fixed before the body is looked at: a scripted step first, then
/// a missing key, then the key's behaviour prefix.
fn decide(shared: &Shared, headers: &HeaderMap) -> Outcome {
    let Some(key) = bearer(headers) else {
        return Outcome::MissingKey;
    };
    if let Some(step) = shared.scripts.pop(key) {
        return step.into();
    }
    key_behaviour(key)
}

/// Reads and records the request. `Ok(body)` means: go on and serve it;
/// `Err(response)` is the answer already decided (script, key, unreadable body).
pub(crate) async fn admit(shared: &Arc<Shared>, request: Request) -> Result<Bytes, Response> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await;
    let outcome = decide(shared, &parts.headers);
    shared.recorder.record(
        parts.uri.path(),
        parts.headers,
        body.clone().unwrap_or_default(),
    );
    if outcome != Outcome::Serve {
        let delay = shared.options.first_byte_delay;
        return Err(outcome::answer(shared, outcome, delay).await);
    }
    body.map_err(|()| errors::invalid_request("Could not read the request body.", None))
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
    }
}
