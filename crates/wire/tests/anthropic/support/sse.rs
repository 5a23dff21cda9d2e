//! Reading `.sse` fixtures and translator output, and feeding streams the way the
//! gateway does: bytes in arbitrary pieces → `wire::sse::SseLineSplitter` → one
//! `push` per event.

use serde_json::Value;
use wire::sse::{SseLine, SseLineSplitter};

use super::{assert_json_eq, parse};

/// One event of an event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` payload.
    pub data: String,
}

impl Event {
    /// The payload as JSON (panics on `[DONE]` or garbage).
    pub fn json(&self) -> Value {
        parse(self.data.as_bytes(), "event data")
    }
}

/// Parses a complete event stream strictly: every event must end with a blank line and
/// carry exactly one `data:` line.
pub fn parse_events(bytes: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(bytes).expect("event stream is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "the stream must end with a complete event: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    assert!(name.is_none(), "two event: lines in {block:?}");
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                } else {
                    panic!("unexpected line {line:?} in event {block:?}");
                }
            }
            assert_eq!(data.len(), 1, "one data line per event: {block:?}");
            Event {
                name,
                data: data[0].to_owned(),
            }
        })
        .collect()
}

/// Splits `raw` into pieces of `piece_len` bytes (the last may be shorter), runs them
/// through the gateway's line splitter and calls `push` with each event's data.
pub fn feed_events(raw: &[u8], piece_len: usize, mut push: impl FnMut(&[u8])) {
    let mut splitter = SseLineSplitter::new();
    let mut data: Option<Vec<u8>> = None;
    for piece in raw.chunks(piece_len.max(1)) {
        splitter.feed(piece, |line| match line {
            SseLine::Data(d) => {
                let buf = data.get_or_insert_with(Vec::new);
                if !buf.is_empty() {
                    buf.push(b'\n');
                }
                buf.extend_from_slice(d);
            }
            SseLine::EventEnd => {
                if let Some(d) = data.take() {
                    push(&d);
                }
            }
            SseLine::Other(_) => {}
        });
    }
    assert!(splitter.pending().is_empty(), "fixture ends mid-line");
    assert!(data.is_none(), "fixture ends mid-event");
}

/// The piece sizes every stream is fed in: byte by byte (splitting UTF-8 sequences),
/// odd sizes that cut lines and JSON anywhere, and whole.
pub const PIECE_SIZES: [usize; 6] = [1, 2, 3, 7, 61, usize::MAX];

/// Compares two event streams event by event: names equal, `[DONE]` verbatim, JSON
/// payloads as parsed values.
pub fn assert_events_eq(actual: &[Event], expected: &[Event], what: &str) {
    let names = |events: &[Event]| {
        events
            .iter()
            .map(|e| match &e.name {
                Some(n) => n.clone(),
                None => e.data.chars().take(60).collect(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: event counts differ\nactual:   {:#?}\nexpected: {:#?}",
        names(actual),
        names(expected)
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.name, e.name, "{what}: name of event {i}");
        if e.data == "[DONE]" {
            assert_eq!(a.data, e.data, "{what}: event {i}");
        } else {
            assert_json_eq(&a.json(), &e.json(), &format!("{what}: event {i}"));
        }
    }
}
