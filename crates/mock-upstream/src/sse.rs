//! Server-sent events: framing, and a paced body that yields one frame per event.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::shared::Shared;

/// The stream's terminator event.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// `data: <json>\n\n` for one value.
pub(crate) fn event<T: Serialize>(value: &T) -> Bytes {
    let mut buffer = Vec::with_capacity(256);
    buffer.extend_from_slice(b"data: ");
    // Serializing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buffer, value);
    buffer.extend_from_slice(b"\n\n");
    Bytes::from(buffer)
}

/// `event: <name>\ndata: <json>\n\n` for one value (Anthropic's framing).
pub(crate) fn named_event<T: Serialize>(name: &str, value: &T) -> Bytes {
    let mut buffer = Vec::with_capacity(256);
    buffer.extend_from_slice(b"event: ");
    buffer.extend_from_slice(name.as_bytes());
    buffer.extend_from_slice(b"\ndata: ");
    // Serializing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buffer, value);
    buffer.extend_from_slice(b"\n\n");
    Bytes::from(buffer)
}

/// How a stream is paced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    /// Wait between two events.
    pub(crate) chunk_delay: Duration,
    /// Send the first event, then nothing until shutdown.
    pub(crate) hang_after_first: bool,
}

struct State<I> {
    shared: Arc<Shared>,
    events: I,
    pacing: Pacing,
    sent: usize,
    aborted: bool,
}

/// A `text/event-stream` response that pulls `events` lazily, one body frame each,
/// sleeping `chunk_delay` between them. On shutdown the body ends with an error, so
/// the client sees a cut stream rather than a complete one.
pub(crate) fn response<I>(shared: Arc<Shared>, events: I, pacing: Pacing) -> Response
where
    I: Iterator<Item = Bytes> + Send + 'static,
{
    let state = State {
        shared,
        events,
        pacing,
        sent: 0,
        aborted: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if state.aborted {
            return None;
        }
        if state.sent > 0 {
            let carry_on = if state.pacing.hang_after_first {
                state.shared.stopped().await;
                false
            } else {
                state.shared.pause(state.pacing.chunk_delay).await
            };
            if !carry_on {
                state.aborted = true;
                let cut = std::io::Error::other("mock upstream shut down mid-stream");
                return Some((Err(cut), state));
            }
        }
        let event = state.events.next()?;
        state.sent += 1;
        Some((Ok(event), state))
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
