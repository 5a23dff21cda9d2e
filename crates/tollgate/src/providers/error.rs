//! The error every provider adapter returns.

use std::time::Duration;

/// What went wrong upstream, without data: metric labels and retry decisions use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// Could not connect.
    Connect,
    /// No response head (or no complete body) within the first-byte timeout.
    Timeout,
    /// The upstream answered with an error status.
    Status,
    /// The upstream answered 2xx with a body that is not what the protocol promises.
    BadResponse,
}

/// A failed upstream call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    pub kind: UpstreamErrorKind,
    /// The upstream's status, for [`UpstreamErrorKind::Status`].
    pub status: Option<u16>,
    /// When the upstream says to come back.
    pub retry_after: Option<Duration>,
    /// Safe to show: never contains a key.
    pub message: String,
    /// The upstream's error code, e.g. `context_length_exceeded`.
    pub code: Option<String>,
}

impl UpstreamError {
    /// An error without an upstream status.
    pub fn new(kind: UpstreamErrorKind, message: String) -> Self {
        UpstreamError {
            kind,
            status: None,
            retry_after: None,
            message,
            code: None,
        }
    }

    /// True when the upstream refused the request as too long for the model's
    /// context window (a model with a larger window may serve it).
    pub fn is_context_length(&self) -> bool {
        self.status == Some(400)
            && (self.code.as_deref() == Some("context_length_exceeded")
                || self.message.contains("maximum context length")
                || self.message.contains("prompt is too long"))
    }

    /// True when another model may succeed where this provider failed.
    pub fn allows_fallback(&self) -> bool {
        self.is_retryable() || self.is_context_length()
    }

    /// True when another key (or provider) may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            UpstreamErrorKind::Connect
            | UpstreamErrorKind::Timeout
            | UpstreamErrorKind::BadResponse => true,
            UpstreamErrorKind::Status => matches!(
                self.status,
                Some(401 | 403 | 408 | 409 | 429) | Some(500..=599)
            ),
        }
    }

    /// A data-free label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match (self.kind, self.status) {
            (UpstreamErrorKind::Connect, _) => "upstream_connect",
            (UpstreamErrorKind::Timeout, _) => "upstream_timeout",
            (UpstreamErrorKind::BadResponse, _) => "upstream_bad_response",
            (UpstreamErrorKind::Status, Some(401 | 403)) => "upstream_auth",
            (UpstreamErrorKind::Status, Some(429)) => "upstream_rate_limited",
            (UpstreamErrorKind::Status, Some(500..=599)) => "upstream_server_error",
            (UpstreamErrorKind::Status, _) => "upstream_rejected",
        }
    }
}
