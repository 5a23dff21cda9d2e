//! What a request gets instead of a normal reply, and how that answer is sent.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::errors;
use crate::script::Step;
use crate::shared::Shared;

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
    /// No bearer key at all.
    MissingKey,
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

/// Answers a request whose outcome is not [`Outcome::Serve`], after
/// `first_byte_delay`. A hanging request answers 503 once the server shuts down.
pub(crate) async fn answer(
    shared: &Shared,
    outcome: Outcome,
    first_byte_delay: Duration,
) -> Response {
    if outcome == Outcome::Hang {
        shared.stopped().await;
        return errors::status(503, None);
    }
    if !shared.pause(first_byte_delay).await {
        return errors::status(503, None);
    }
    match outcome {
        Outcome::Fail {
            status,
            retry_after_s,
        } => errors::status(status, retry_after_s),
        Outcome::Garbage => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            GARBAGE,
        )
            .into_response(),
        Outcome::MissingKey => errors::missing_key(),
        Outcome::Serve | Outcome::Hang => errors::status(500, None),
    }
}
