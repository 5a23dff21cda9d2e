//! Chat stream events (`CreateChatCompletionStreamResponse`), produced one at a time.

use bytes::Bytes;
use serde::Serialize;

use crate::chat::ChatAnswer;
use crate::chat_body::Usage;
use crate::reply::Reply;
use crate::sse;
use crate::tools::{FunctionOut, ToolCall, ToolCallOut};

/// The content of a chat answer.
pub(crate) enum Answer {
    /// Assistant text.
    Text(Reply),
    /// One tool call.
    Tool(ToolCall),
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent without `include_usage`; `null` on every chunk but the usage one.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

/// Where the stream stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first chunk: the role.
    Role,
    /// Text pieces from this byte offset, or the tool call's arguments.
    Body(usize),
    /// `delta: {}` with the finish reason.
    Finish,
    /// The usage chunk (`choices: []`), when asked for.
    Usage,
    /// `data: [DONE]`.
    Done,
    /// Nothing more.
    End,
}

/// The events of one chat stream, built lazily as the body is polled.
pub(crate) struct ChatEvents {
    chat: ChatAnswer,
    include_usage: bool,
    phase: Phase,
}

impl ChatEvents {
    pub(crate) fn new(chat: ChatAnswer, include_usage: bool) -> ChatEvents {
        ChatEvents {
            chat,
            include_usage,
            phase: Phase::Role,
        }
    }

    fn chunk(&self, delta: Delta<'_>, finish_reason: Option<&'static str>) -> Bytes {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        }];
        self.emit(&choices, None)
    }

    fn emit(&self, choices: &[ChunkChoice<'_>], usage: Option<Usage>) -> Bytes {
        sse::event(&Chunk {
            id: &self.chat.id,
            object: "chat.completion.chunk",
            created: self.chat.created,
            model: &self.chat.model,
            choices,
            usage: self.include_usage.then_some(usage),
        })
    }

    fn role(&self) -> Bytes {
        let delta = match &self.chat.answer {
            Answer::Text(_) => Delta {
                role: Some("assistant"),
                content: Some(""),
                tool_calls: None,
            },
            Answer::Tool(call) => Delta {
                role: Some("assistant"),
                content: None,
                tool_calls: Some([ToolCallOut {
                    index: Some(0),
                    id: Some(&call.id),
                    kind: Some("function"),
                    function: FunctionOut {
                        name: Some(&call.name),
                        arguments: "",
                    },
                }]),
            },
        };
        self.chunk(delta, None)
    }

    /// The body event at `offset` and the phase after it.
    fn body(&self, offset: usize) -> (Option<Bytes>, Phase) {
        match &self.chat.answer {
            Answer::Text(reply) => {
                let rest = reply.text.get(offset..).unwrap_or("");
                let Some(piece) = crate::reply::pieces(rest).next() else {
                    return (None, Phase::Finish);
                };
                let delta = Delta {
                    content: Some(piece),
                    ..Delta::default()
                };
                (
                    Some(self.chunk(delta, None)),
                    Phase::Body(offset + piece.len()),
                )
            }
            Answer::Tool(call) => {
                let delta = Delta {
                    tool_calls: Some([ToolCallOut {
                        index: Some(0),
                        id: None,
                        kind: None,
                        function: FunctionOut {
                            name: None,
                            arguments: &call.arguments,
                        },
                    }]),
                    ..Delta::default()
                };
                (Some(self.chunk(delta, None)), Phase::Finish)
            }
        }
    }

    fn finish(&self) -> Bytes {
        let reason = match &self.chat.answer {
            Answer::Text(reply) => reply.finish_reason(),
            Answer::Tool(_) => "tool_calls",
        };
        self.chunk(Delta::default(), Some(reason))
    }
}

impl Iterator for ChatEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        loop {
            let (event, next) = match self.phase {
                Phase::Role => (Some(self.role()), Phase::Body(0)),
                Phase::Body(offset) => self.body(offset),
                Phase::Finish => (Some(self.finish()), Phase::Usage),
                Phase::Usage if self.include_usage => {
                    let usage = Usage::new(self.chat.prompt_tokens, self.chat.completion_tokens());
                    (Some(self.emit(&[], Some(usage))), Phase::Done)
                }
                Phase::Usage => (None, Phase::Done),
                Phase::Done => (Some(Bytes::from_static(sse::DONE)), Phase::End),
                Phase::End => return None,
            };
            self.phase = next;
            if event.is_some() {
                return event;
            }
        }
    }
}
