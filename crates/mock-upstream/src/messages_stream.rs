//! Anthropic Messages stream events, produced one at a time:
//!
//! ```text
//! message_start → content_block_start → ping → content_block_delta… →
//! content_block_stop → message_delta → message_stop
//! ```
//!
//! Text arrives as one `text_delta` per word; a tool call's input as
//! `input_json_delta` pieces (the first one empty, as the API sends it) that
//! concatenate to the input's JSON.

use bytes::Bytes;
use serde::Serialize;

use crate::chat_stream::Answer;
use crate::messages_body::{BlockOut, Empty, Input, MessageAnswer, Usage};
use crate::reply;
use crate::sse::named_event;

const PING: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";
const BLOCK_STOP: &[u8] =
    b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
const MESSAGE_STOP: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: StartMessage<'a>,
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: (),
    stop_sequence: (),
    usage: Usage,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: BlockOut<'a>,
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: OutputUsage,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u32,
}

/// Where the stream stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Start,
    BlockStart,
    Ping,
    /// A tool call's first, empty `input_json_delta`.
    EmptyJson,
    /// Deltas from this byte offset of the text or the tool input.
    Body(usize),
    BlockStop,
    MessageDelta,
    MessageStop,
    End,
}

/// The events of one Messages stream, built lazily as the body is polled.
pub(crate) struct MessageEvents {
    message: MessageAnswer,
    phase: Phase,
}

impl MessageEvents {
    pub(crate) fn new(message: MessageAnswer) -> MessageEvents {
        MessageEvents {
            message,
            phase: Phase::Start,
        }
    }

    fn start(&self) -> Bytes {
        // Like the API, `message_start` reports the first output token, if any;
        // the total comes with `message_delta`.
        let output_tokens = self.message.output_tokens().min(1);
        named_event(
            "message_start",
            &MessageStart {
                kind: "message_start",
                message: StartMessage {
                    id: &self.message.id,
                    kind: "message",
                    role: "assistant",
                    model: &self.message.model,
                    content: [],
                    stop_reason: (),
                    stop_sequence: (),
                    usage: Usage {
                        input_tokens: self.message.input_tokens,
                        output_tokens,
                    },
                },
            },
        )
    }

    fn block_start(&self) -> Bytes {
        let content_block = match &self.message.answer {
            Answer::Text(_) => BlockOut::Text { text: "" },
            Answer::Tool(call) => BlockOut::ToolUse {
                id: &call.id,
                name: &call.name,
                input: Input::Empty(Empty {}),
            },
        };
        named_event(
            "content_block_start",
            &BlockStart {
                kind: "content_block_start",
                index: 0,
                content_block,
            },
        )
    }

    fn delta(delta: DeltaOut<'_>) -> Bytes {
        named_event(
            "content_block_delta",
            &BlockDelta {
                kind: "content_block_delta",
                index: 0,
                delta,
            },
        )
    }

    /// The delta at `offset` and the phase after it.
    fn body(&self, offset: usize) -> (Option<Bytes>, Phase) {
        let (source, delta): (&str, fn(&str) -> DeltaOut<'_>) = match &self.message.answer {
            Answer::Text(reply) => (&reply.text, |text| DeltaOut::TextDelta { text }),
            Answer::Tool(call) => (&call.arguments, |partial_json| DeltaOut::InputJsonDelta {
                partial_json,
            }),
        };
        let rest = source.get(offset..).unwrap_or("");
        let piece = match &self.message.answer {
            Answer::Text(_) => reply::pieces(rest).next(),
            Answer::Tool(_) => json_pieces(rest).next(),
        };
        match piece {
            Some(piece) => (
                Some(Self::delta(delta(piece))),
                Phase::Body(offset + piece.len()),
            ),
            None => (None, Phase::BlockStop),
        }
    }

    fn message_delta(&self) -> Bytes {
        named_event(
            "message_delta",
            &MessageDelta {
                kind: "message_delta",
                delta: StopDelta {
                    stop_reason: self.message.stop_reason(),
                    stop_sequence: (),
                },
                usage: OutputUsage {
                    output_tokens: self.message.output_tokens(),
                },
            },
        )
    }
}

/// Splits JSON text into stream pieces, each ending after a `,` or `:` (the last
/// one at the end), so that the pieces concatenate to the text.
fn json_pieces(json: &str) -> impl Iterator<Item = &str> {
    json.split_inclusive([',', ':'])
}

impl Iterator for MessageEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        loop {
            let (event, next) = match self.phase {
                Phase::Start => (Some(self.start()), Phase::BlockStart),
                Phase::BlockStart => (Some(self.block_start()), Phase::Ping),
                Phase::Ping => {
                    let next = match self.message.answer {
                        Answer::Text(_) => Phase::Body(0),
                        Answer::Tool(_) => Phase::EmptyJson,
                    };
                    (Some(Bytes::from_static(PING)), next)
                }
                Phase::EmptyJson => (
                    Some(Self::delta(DeltaOut::InputJsonDelta { partial_json: "" })),
                    Phase::Body(0),
                ),
                Phase::Body(offset) => self.body(offset),
                Phase::BlockStop => (Some(Bytes::from_static(BLOCK_STOP)), Phase::MessageDelta),
                Phase::MessageDelta => (Some(self.message_delta()), Phase::MessageStop),
                Phase::MessageStop => (Some(Bytes::from_static(MESSAGE_STOP)), Phase::End),
                Phase::End => return None,
            };
            self.phase = next;
            if event.is_some() {
                return event;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::compose;
    use crate::tools::ToolCall;

    fn names(events: MessageEvents) -> Vec<String> {
        events
            .map(|event| {
                let text = String::from_utf8(event.to_vec()).expect("UTF-8");
                assert!(text.ends_with("\n\n"), "{text:?}");
                let (name, data) = text.split_once('\n').expect("two lines");
                let data = data.strip_prefix("data: ").expect("data line");
                let value: serde_json::Value = serde_json::from_str(data).expect("JSON");
                let name = name.strip_prefix("event: ").expect("event line");
                assert_eq!(value["type"], name, "{text}");
                name.to_owned()
            })
            .collect()
    }

    #[test]
    fn text_stream_sequence() {
        let message = MessageAnswer {
            id: "msg_mock1".to_owned(),
            model: "m".to_owned(),
            answer: Answer::Text(compose("Mock reply to:", "hi", 4, None)),
            input_tokens: 5,
        };
        let names = names(MessageEvents::new(message));
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn json_pieces_concatenate() {
        let json = r#"{"city":"mock","days":1}"#;
        let pieces: Vec<&str> = json_pieces(json).collect();
        assert_eq!(pieces, [r#"{"city":"#, r#""mock","#, r#""days":"#, "1}"]);
        assert_eq!(pieces.concat(), json);
        assert_eq!(json_pieces("{}").collect::<Vec<_>>(), ["{}"]);
    }

    #[test]
    fn tool_stream_sequence() {
        let message = MessageAnswer {
            id: "msg_mock2".to_owned(),
            model: "m".to_owned(),
            answer: Answer::Tool(ToolCall {
                id: "toolu_mock2".to_owned(),
                name: "f".to_owned(),
                arguments: r#"{"a":1}"#.to_owned(),
            }),
            input_tokens: 5,
        };
        let names = names(MessageEvents::new(message));
        // start, block start, ping, "" + 2 pieces, stop, delta, stop.
        assert_eq!(names.len(), 9);
        assert_eq!(names[3..6], ["content_block_delta"; 3]);
    }
}
