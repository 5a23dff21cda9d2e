//! OpenAI `chat.completion.chunk` events → Anthropic Messages stream events (the
//! `/v1/messages` ingress).

use serde_json::{json, Value};

use super::json::{self, get, parse_object, Object};
use super::reasons::{stop_reason, TokenCounts};
use super::TranslateError;
use crate::openai::Usage;

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(u64),
    Tool(u64),
}

/// Ingress streaming: turns each OpenAI stream `data:` payload (including the final
/// `[DONE]`) into complete Anthropic SSE events (`event: <type>\ndata: <json>\n\n`).
///
/// The first chunk yields `message_start` (usage zero until known); text deltas open a
/// text block and yield `text_delta`s; each tool call opens a `tool_use` block whose
/// argument pieces yield `input_json_delta`s; a block is stopped when the next one
/// starts. `[DONE]` closes the open block and yields `message_delta` (stop reason, usage
/// from the OpenAI usage chunk when there was one) and `message_stop`. An OpenAI error
/// object in the stream yields an Anthropic `error` event and ends the stream.
/// Reasoning deltas have no Anthropic form without a signature and are dropped.
#[derive(Debug)]
pub struct ChatToMessagesStream {
    model: String,
    started: bool,
    next_block: u64,
    open: Option<OpenBlock>,
    /// (OpenAI tool-call index, Anthropic block index) of each tool call seen.
    tools: Vec<(u64, u64)>,
    finish_reason: Option<String>,
    refusal: bool,
    counts: Option<TokenCounts>,
    done: bool,
}

impl ChatToMessagesStream {
    /// A translator for one stream answering as `model`.
    pub fn new(model: &str) -> Self {
        ChatToMessagesStream {
            model: model.to_owned(),
            started: false,
            next_block: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            refusal: false,
            counts: None,
            done: false,
        }
    }

    /// Usage from the upstream's usage chunk, once it was seen.
    pub fn usage(&self) -> Option<Usage> {
        self.counts.map(TokenCounts::to_usage)
    }

    /// Feeds one event's `data:` payload and appends the Anthropic events it yields to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if data.trim_ascii() == b"[DONE]" {
            self.finish(out);
            return Ok(());
        }
        let chunk = parse_object(data, "upstream stream chunk")?;
        if let Some(error) = get(&chunk, "error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("The upstream stream failed.");
            write_event(
                out,
                "error",
                json!({"error": {"type": "api_error", "message": message}}),
            );
            self.done = true;
            return Ok(());
        }
        if !self.started {
            self.start(&chunk, out);
        }
        if let Some(usage) = get(&chunk, "usage").and_then(Value::as_object) {
            self.counts = Some(TokenCounts::from_openai(usage));
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            })
            .and_then(Value::as_object);
        if let Some(choice) = choice {
            self.choice(choice, out);
        }
        Ok(())
    }

    fn start(&mut self, chunk: &Object, out: &mut Vec<u8>) {
        self.started = true;
        let id = chunk.get("id").and_then(Value::as_str).unwrap_or_default();
        write_event(
            out,
            "message_start",
            json!({"message": {
                "id": format!("msg_{id}"),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        );
    }

    fn choice(&mut self, choice: &Object, out: &mut Vec<u8>) {
        if let Some(delta) = get(choice, "delta").and_then(Value::as_object) {
            let text = |key: &str| {
                delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
            };
            if let Some(content) = text("content") {
                self.text(content, out);
            }
            if let Some(refusal) = text("refusal") {
                self.refusal = true;
                self.text(refusal, out);
            }
            for (position, call) in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(call) = call.as_object() {
                    self.tool_call(call, position as u64, out);
                }
            }
        }
        if let Some(reason) = get(choice, "finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(OpenBlock::Text(index)) => index,
            _ => {
                let index = self.open_block(OpenBlock::Text, out);
                write_event(
                    out,
                    "content_block_start",
                    json!({"index": index, "content_block": {"type": "text", "text": ""}}),
                );
                index
            }
        };
        write_event(
            out,
            "content_block_delta",
            json!({"index": index, "delta": {"type": "text_delta", "text": text}}),
        );
    }

    fn tool_call(&mut self, call: &Object, position: u64, out: &mut Vec<u8>) {
        let tool_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let function = call.get("function").and_then(Value::as_object);
        let field = |key: &str| function.and_then(|f| f.get(key)).and_then(Value::as_str);
        let block = match self.tools.iter().find(|(t, _)| *t == tool_index) {
            Some((_, block)) => *block,
            None => {
                let block = self.open_block(OpenBlock::Tool, out);
                self.tools.push((tool_index, block));
                let id = match call.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_owned(),
                    None => format!("toolu_{block}"),
                };
                write_event(
                    out,
                    "content_block_start",
                    json!({"index": block, "content_block": {
                        "type": "tool_use", "id": id, "name": field("name").unwrap_or_default(), "input": {},
                    }}),
                );
                block
            }
        };
        if let Some(arguments) = field("arguments").filter(|a| !a.is_empty()) {
            write_event(
                out,
                "content_block_delta",
                json!({"index": block, "delta": {"type": "input_json_delta", "partial_json": arguments}}),
            );
        }
    }

    /// Stops the open block and opens the next one of kind `kind`; returns its index.
    fn open_block(&mut self, kind: fn(u64) -> OpenBlock, out: &mut Vec<u8>) -> u64 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(kind(index));
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(OpenBlock::Text(index) | OpenBlock::Tool(index)) = self.open.take() {
            write_event(out, "content_block_stop", json!({"index": index}));
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(&Object::new(), out);
        }
        self.close_block(out);
        let reason = match self.finish_reason.as_deref() {
            Some("tool_calls" | "function_call") => "tool_use",
            _ if self.refusal => "refusal",
            finish => stop_reason(finish),
        };
        let counts = self.counts.unwrap_or_default();
        write_event(
            out,
            "message_delta",
            json!({
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": counts.anthropic_json(),
            }),
        );
        write_event(out, "message_stop", json!({}));
        self.done = true;
    }
}

/// Appends `event: <kind>\ndata: <payload with "type": kind>\n\n`.
fn write_event(out: &mut Vec<u8>, kind: &str, mut payload: Value) {
    if let Some(object) = payload.as_object_mut() {
        object.insert("type".to_owned(), Value::from(kind));
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&json::to_vec(&payload));
    out.extend_from_slice(b"\n\n");
}
