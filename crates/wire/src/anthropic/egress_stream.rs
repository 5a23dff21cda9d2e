//! Anthropic Messages stream events → OpenAI `chat.completion.chunk` events.

use serde_json::{json, Value};

use super::json::{self, get, opt_object, opt_str, parse_object, Object};
use super::reasons::{finish_reason, TokenCounts};
use super::TranslateError;
use crate::openai::Usage;
use crate::sse::DONE_EVENT;

/// Egress streaming: turns the `data:` payload of each Anthropic SSE event, in order, into
/// complete OpenAI SSE events (`data: {chat.completion.chunk}\n\n`, and `data: [DONE]\n\n`
/// after `message_stop`).
///
/// `message_start` → a first chunk with `delta {role: assistant, content: ""}`; text deltas →
/// `delta.content`; a `tool_use` block → a `delta.tool_calls` entry with id and name, its
/// `input_json_delta` pieces → `function.arguments` pieces; the first `message_delta` with a
/// stop reason → a chunk with `finish_reason`. With `include_usage`, every chunk carries
/// `"usage": null` and a usage-only chunk (`choices: []`) precedes `[DONE]`. `ping`, thinking
/// blocks and unknown events are skipped; an `error` event is a [`TranslateError`].
#[derive(Debug)]
pub struct MessagesToChatStream {
    model: String,
    created: u64,
    include_usage: bool,
    /// `chatcmpl-` + the message id, once `message_start` was seen.
    id: Option<String>,
    counts: Option<TokenCounts>,
    /// Anthropic content-block index of each tool call, in OpenAI tool-call index order.
    tool_blocks: Vec<u64>,
    finish_sent: bool,
    done: bool,
}

impl MessagesToChatStream {
    /// A translator for one stream answering as `model`, created at `created` (unix seconds).
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        MessagesToChatStream {
            model: model.to_owned(),
            created,
            include_usage,
            id: None,
            counts: None,
            tool_blocks: Vec::new(),
            finish_sent: false,
            done: false,
        }
    }

    /// Usage seen so far (input tokens from `message_start`, output tokens from `message_delta`).
    pub fn usage(&self) -> Option<Usage> {
        self.counts.map(TokenCounts::to_usage)
    }

    /// True once `message_stop` was seen (and `[DONE]` written).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds one event's `data:` payload and appends the OpenAI events it yields to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        let event = parse_object(data, "upstream stream event")?;
        match opt_str(&event, "type", "")? {
            Some("message_start") => self.message_start(&event, out),
            Some("content_block_start") => self.block_start(&event, out),
            Some("content_block_delta") => self.block_delta(&event, out),
            Some("message_delta") => self.message_delta(&event, out),
            Some("message_stop") => {
                self.message_stop(out);
                Ok(())
            }
            Some("error") => Err(stream_error(&event)),
            // content_block_stop, ping and event types added later carry nothing for OpenAI.
            _ => Ok(()),
        }
    }

    fn message_start(&mut self, event: &Object, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        let message = opt_object(event, "message", "")?.ok_or_else(|| {
            TranslateError::new("The upstream `message_start` event has no `message`.")
        })?;
        let id = opt_str(message, "id", "message")?.unwrap_or_default();
        self.id = Some(format!("chatcmpl-{id}"));
        self.counts = Some(
            get(message, "usage")
                .and_then(Value::as_object)
                .map(TokenCounts::from_anthropic)
                .unwrap_or_default(),
        );
        self.write_chunk(json!({"role": "assistant", "content": ""}), None, out)
    }

    fn block_start(&mut self, event: &Object, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        let Some(block) = get(event, "content_block").and_then(Value::as_object) else {
            return Ok(());
        };
        match block.get("type").and_then(Value::as_str) {
            Some("text") => match block.get("text").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => {
                    self.write_chunk(json!({"content": text}), None, out)
                }
                _ => self.require_started(),
            },
            Some("tool_use") => {
                let index = self.tool_blocks.len();
                self.tool_blocks.push(block_index(event));
                let call = json!({
                    "index": index,
                    "id": block.get("id").and_then(Value::as_str).unwrap_or_default(),
                    "type": "function",
                    "function": {
                        "name": block.get("name").and_then(Value::as_str).unwrap_or_default(),
                        "arguments": "",
                    },
                });
                self.write_chunk(json!({"tool_calls": [call]}), None, out)
            }
            _ => Ok(()),
        }
    }

    fn block_delta(&mut self, event: &Object, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        let Some(delta) = get(event, "delta").and_then(Value::as_object) else {
            return Ok(());
        };
        let piece = |key: &str| {
            delta
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => match piece("text") {
                Some(text) => self.write_chunk(json!({"content": text}), None, out),
                None => Ok(()),
            },
            Some("input_json_delta") => {
                let block = block_index(event);
                let tool = self.tool_blocks.iter().position(|b| *b == block);
                match (tool, piece("partial_json")) {
                    (Some(index), Some(partial)) => self.write_chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": partial}}]}),
                        None,
                        out,
                    ),
                    // Input of a server tool, or an empty piece.
                    _ => Ok(()),
                }
            }
            // thinking_delta, signature_delta, citations_delta: no OpenAI counterpart.
            _ => Ok(()),
        }
    }

    fn message_delta(&mut self, event: &Object, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        self.require_started()?;
        if let (Some(counts), Some(usage)) = (
            self.counts.as_mut(),
            get(event, "usage").and_then(Value::as_object),
        ) {
            counts.update_from_delta(usage);
        }
        let stop_reason = event
            .get("delta")
            .and_then(|d| d.get("stop_reason"))
            .and_then(Value::as_str);
        match stop_reason {
            Some(reason) if !self.finish_sent => {
                self.finish_sent = true;
                self.write_chunk(json!({}), Some(finish_reason(Some(reason))), out)
            }
            _ => Ok(()),
        }
    }

    fn message_stop(&mut self, out: &mut Vec<u8>) {
        if self.id.is_some() {
            if !self.finish_sent {
                self.finish_sent = true;
                // Cannot fail: the stream has started.
                let _ = self.write_chunk(json!({}), Some("stop"), out);
            }
            if self.include_usage {
                let usage = self.counts.unwrap_or_default().openai_json();
                self.write_event(json!([]), usage, out);
            }
        }
        out.extend_from_slice(DONE_EVENT);
        self.done = true;
    }

    fn require_started(&self) -> Result<(), TranslateError> {
        match self.id {
            Some(_) => Ok(()),
            None => Err(TranslateError::new(
                "The upstream stream did not begin with a `message_start` event.",
            )),
        }
    }

    /// Appends one chunk with a single choice.
    fn write_chunk(
        &self,
        delta: Value,
        finish: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        self.require_started()?;
        let choices =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        self.write_event(choices, Value::Null, out);
        Ok(())
    }

    fn write_event(&self, choices: Value, usage: Value, out: &mut Vec<u8>) {
        let mut chunk = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            if let Some(chunk) = chunk.as_object_mut() {
                chunk.insert("usage".to_owned(), usage);
            }
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&json::to_vec(&chunk));
        out.extend_from_slice(b"\n\n");
    }
}

fn block_index(event: &Object) -> u64 {
    event.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// An Anthropic `error` event → the error the caller ends the stream with.
fn stream_error(event: &Object) -> TranslateError {
    let error = event.get("error");
    let field = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str);
    TranslateError::new(format!(
        "The upstream stream failed with {}: {}",
        field("type").unwrap_or("an error"),
        field("message").unwrap_or("no message given"),
    ))
}
