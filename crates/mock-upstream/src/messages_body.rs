//! The Anthropic `Message` answer: what it is made of, and the non-stream body.

use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::chat_body::json_response;
use crate::chat_stream::Answer;
use crate::tools::ToolCall;

/// What every Messages answer, streamed or not, is made of.
pub(crate) struct MessageAnswer {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) answer: Answer,
    pub(crate) input_tokens: u32,
}

impl MessageAnswer {
    /// Tokens of the answer: the reply text, or the tool call's name and input.
    pub(crate) fn output_tokens(&self) -> u32 {
        match &self.answer {
            Answer::Text(reply) => reply.tokens,
            Answer::Tool(call) => call.tokens(),
        }
    }

    /// `end_turn`, `max_tokens` when the cap cut the text, or `tool_use`.
    pub(crate) fn stop_reason(&self) -> &'static str {
        match &self.answer {
            Answer::Text(reply) if reply.truncated => "max_tokens",
            Answer::Text(_) => "end_turn",
            Answer::Tool(_) => "tool_use",
        }
    }
}

/// `usage` of a message.
#[derive(Serialize, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u32,
    pub(crate) output_tokens: u32,
}

/// A `tool_use` block's `input`: the call's JSON as is, or `{}` (stream start).
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Input<'a> {
    Raw(&'a RawValue),
    Empty(Empty),
}

/// Serializes as `{}`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// One content block.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Input<'a>,
    },
}

impl BlockOut<'_> {
    /// The complete `tool_use` block of `call`.
    pub(crate) fn tool_use(call: &ToolCall) -> BlockOut<'_> {
        // The arguments were serialized by serde_json, so they always parse.
        let input = serde_json::from_str::<&RawValue>(&call.arguments)
            .map_or(Input::Empty(Empty {}), Input::Raw);
        BlockOut::ToolUse {
            id: &call.id,
            name: &call.name,
            input,
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [BlockOut<'a>; 1],
    stop_reason: &'static str,
    stop_sequence: (),
    usage: Usage,
}

/// The whole answer as one JSON body.
pub(crate) fn response(message: &MessageAnswer) -> Response {
    let block = match &message.answer {
        Answer::Text(reply) => BlockOut::Text { text: &reply.text },
        Answer::Tool(call) => BlockOut::tool_use(call),
    };
    json_response(&Message {
        id: &message.id,
        kind: "message",
        role: "assistant",
        model: &message.model,
        content: [block],
        stop_reason: message.stop_reason(),
        stop_sequence: (),
        usage: Usage {
            input_tokens: message.input_tokens,
            output_tokens: message.output_tokens(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_serialize_as_the_api_shows_them() {
        let call = ToolCall {
            id: "toolu_mock1".to_owned(),
            name: "f".to_owned(),
            arguments: r#"{"a":1}"#.to_owned(),
        };
        let json = serde_json::to_string(&BlockOut::tool_use(&call)).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"tool_use","id":"toolu_mock1","name":"f","input":{"a":1}}"#
        );
        let start = BlockOut::ToolUse {
            id: "t",
            name: "f",
            input: Input::Empty(Empty {}),
        };
        let json = serde_json::to_string(&start).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"tool_use","id":"t","name":"f","input":{}}"#
        );
        let json = serde_json::to_string(&BlockOut::Text { text: "" }).expect("serializes");
        assert_eq!(json, r#"{"type":"text","text":""}"#);
    }
}
