//! What a request gets instead of a normal reply, and how that answer is sent.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::admit::KeyHeader;
use crate::errors;
use crate::messages_errors;
use crate::script::Step;
use crate::shared::Shared;

/// The API a request speaks, which decides where its key is and how errors look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `Authorization: Bearer`, `{"error":{"message","type","param","code"}}`.
    OpenAi,
    /// `x-api-key`, `{"type":"error","error":{"type","message"},"request_id"}`.
    Anthropic,
}

impl Dialect {
    /// The header that carries the key.
    pub(crate) fn key_header(self) -> KeyHeader {
        match self {
            Dialect::OpenAi => KeyHeader::Bearer,
            Dialect::Anthropic => KeyHeader::XApiKey,
        }
    }
}

/// The fate of a request, decided by its script, its key or its directives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A normal reply.
    Serve,
    /// An error with this status (and `Retry-After` when set).
    Fail {
        status: u16,
        retry_after_s: Option<u64>,
    },
    /// No answer until the server shuts down.
    Hang,
    /// `200`, JSON content type, a body that is not JSON.
    Garbage,
    /// No key at all.
    MissingKey,
    /// `400`: the prompt is longer than the model's context window.
    ContextLength,
}

impl From<Step> for Outcome {
    fn from(step: Step) -> Outcome {
        match step {
            Step::Reply => Outcome::Serve,
            Step::Status {
                status,
                retry_after_s,
            } => Outcome::Fail {
                status,
                retry_after_s,
            },
            Step::Hang => Outcome::Hang,
            Step::Garbage => Outcome::Garbage,
        }
    }
}

/// The body sent for [`Outcome::Garbage`].
const GARBAGE: &str = "<html><body>502 Bad Gateway</body></html> {\"id\": not-json";

/// The canned error for `status` in the dialect's shape.
fn fail(shared: &Shared, dialect: Dialect, status: u16, retry_after_s: Option<u64>) -> Response {
    match dialect {
        Dialect::OpenAi => errors::status(status, retry_after_s),
        Dialect::Anthropic => messages_errors::status(status, retry_after_s, shared.next_id()),
    }
}

/// Answers a request whose outcome is not [`Outcome::Serve`], after
/// `first_byte_delay`, with errors in the `dialect`'s shape. A hanging request
/// answers 503 once the server shuts down.
pub(crate) async fn answer(
    shared: &Shared,
    outcome: Outcome,
    first_byte_delay: Duration,
    dialect: Dialect,
) -> Response {
    if outcome == Outcome::Hang {
        shared.stopped().await;
        return fail(shared, dialect, 503, None);
    }
    if !shared.pause(first_byte_delay).await {
        return fail(shared, dialect, 503, None);
    }
    match outcome {
        Outcome::Fail {
            status,
            retry_after_s,
        } => fail(shared, dialect, status, retry_after_s),
        Outcome::Garbage => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            GARBAGE,
        )
            .into_response(),
        Outcome::MissingKey => match dialect {
            Dialect::OpenAi => errors::missing_key(),
            Dialect::Anthropic => messages_errors::missing_key(shared.next_id()),
        },
        Outcome::ContextLength => match dialect {
            Dialect::OpenAi => errors::context_length(),
            Dialect::Anthropic => messages_errors::context_length(shared.next_id()),
        },
        Outcome::Serve | Outcome::Hang => fail(shared, dialect, 500, None),
    }
}
