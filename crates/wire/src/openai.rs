//! OpenAI wire types the gateway needs on its hot path.
//!
//! Request bodies are relayed as bytes; the gateway only *peeks* at the few fields
//! that steer routing and metering, and rewrites the body only when it must.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The fields of a client request body that routing, policy and metering read.
#[derive(Debug, Deserialize)]
pub struct RequestPeek<'a> {
    /// The model the client asked for (borrowed from the body unless it has escapes).
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    pub model: Option<Cow<'a, str>>,
    /// Whether the client asked for a server-sent-event stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Stream options; `include_usage` asks the upstream for a final usage chunk.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Output cap (legacy name).
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Output cap (current name for chat completions).
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Tool definitions (chat completions).
    #[serde(borrow, default)]
    pub tools: Option<Vec<&'a RawValue>>,
    /// Legacy function definitions (chat completions).
    #[serde(borrow, default)]
    pub functions: Option<Vec<&'a RawValue>>,
    /// The conversation (chat completions), read only as far as capabilities need.
    #[serde(borrow, default)]
    pub messages: Option<Vec<MessagePeek<'a>>>,
}

/// One chat message, as far as capability checks need it.
#[derive(Debug, Deserialize)]
pub struct MessagePeek<'a> {
    /// The content, unparsed: a string or an array of parts.
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartKind<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "borrowed_str")]
    kind: Option<Cow<'a, str>>,
}

/// An optional string that borrows from the input when it has no escapes. serde's
/// `borrow` reaches a `Cow` only as the field's own type: through `Option` it copies
/// every string.
fn borrowed_str<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(deserializer)?.map(|b| b.0))
}

impl RequestPeek<'_> {
    /// True when the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// True when the request defines tools or functions the model may call.
    pub fn uses_tools(&self) -> bool {
        self.tools.as_ref().is_some_and(|t| !t.is_empty())
            || self.functions.as_ref().is_some_and(|f| !f.is_empty())
    }

    /// True when a message carries an image part.
    pub fn has_images(&self) -> bool {
        self.messages.iter().flatten().any(|m| {
            let Some(content) = m.content else {
                return false;
            };
            let raw = content.get().trim_start();
            raw.starts_with('[')
                && raw.contains("image")
                && serde_json::from_str::<Vec<PartKind<'_>>>(raw).is_ok_and(|parts| {
                    parts.iter().any(|p| {
                        matches!(
                            p.kind.as_deref(),
                            Some("image_url" | "input_image" | "image")
                        )
                    })
                })
        })
    }

    /// True when the client itself asked for the final usage chunk.
    pub fn wants_usage_chunk(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// `stream_options` of a chat or completions request.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// Why a request body could not be read.
#[derive(Debug)]
pub struct BodyError {
    /// What is wrong, in words a client can act on.
    pub message: String,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}

/// Reads the steering fields of a JSON request body. The body must be a JSON object.
pub fn peek_request(body: &[u8]) -> Result<RequestPeek<'_>, BodyError> {
    serde_json::from_slice(body).map_err(|e| BodyError {
        message: if e.is_syntax() || e.is_eof() {
            format!(
                "We could not parse the JSON body of your request: {e}. Send a valid JSON object."
            )
        } else {
            format!("The request body is not a valid request object: {e}.")
        },
    })
}

/// What [`rewrite_request`] changes in a request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrite<'a> {
    /// Sets `model`.
    pub model: Option<&'a str>,
    /// Sets `stream_options.include_usage = true`.
    pub include_usage: bool,
    /// Sets `max_tokens` when the body has neither `max_tokens` nor
    /// `max_completion_tokens`.
    pub default_max_tokens: Option<u64>,
}

impl Rewrite<'_> {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.model.is_none() && !self.include_usage && self.default_max_tokens.is_none()
    }
}

/// Rewrites a request body for the upstream as `rewrite` says.
///
/// Only top-level keys are touched; every other value is copied through unparsed.
pub fn rewrite_request(body: &[u8], rewrite: Rewrite<'_>) -> Result<Vec<u8>, BodyError> {
    let Rewrite {
        model,
        include_usage,
        default_max_tokens,
    } = rewrite;
    let mut object: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(body).map_err(|e| BodyError {
            message: format!("The request body is not a JSON object: {e}."),
        })?;
    if let Some(model) = model {
        object.insert("model".to_owned(), to_raw(&model)?);
    }
    if let Some(cap) = default_max_tokens {
        if !object.contains_key("max_tokens") && !object.contains_key("max_completion_tokens") {
            object.insert("max_tokens".to_owned(), to_raw(&cap)?);
        }
    }
    if include_usage {
        let mut options: serde_json::Map<String, serde_json::Value> =
            match object.get("stream_options") {
                Some(raw) => serde_json::from_str(raw.get()).map_err(|_| BodyError {
                    message: "`stream_options` must be an object.".to_owned(),
                })?,
                None => serde_json::Map::new(),
            };
        options.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
        object.insert("stream_options".to_owned(), to_raw(&options)?);
    }
    serde_json::to_vec(&object).map_err(|e| BodyError {
        message: format!("The request body could not be re-encoded: {e}."),
    })
}

fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, BodyError> {
    serde_json::value::to_raw_value(value).map_err(|e| BodyError {
        message: format!("could not encode a value: {e}"),
    })
}

/// Token usage as OpenAI reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
}

#[derive(Deserialize)]
struct UsageHolder {
    #[serde(default)]
    usage: Option<Usage>,
}

/// Reads `usage` from a response body or a stream chunk; `None` when absent or null.
pub fn peek_usage(json: &[u8]) -> Option<Usage> {
    read_usage(json).ok().flatten()
}

/// Reads `usage` from a complete response body in one parse that also checks the
/// body is a JSON object; an error means it is not.
pub fn read_usage(json: &[u8]) -> Result<Option<Usage>, BodyError> {
    serde_json::from_slice::<UsageHolder>(json)
        .map(|h| h.usage)
        .map_err(|e| BodyError {
            message: format!("not a JSON object: {e}"),
        })
}

#[derive(Deserialize)]
struct ChoicesHolder<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<&'a RawValue>>,
}

/// True when a stream chunk is the usage-only chunk (`"choices": []` plus usage) that
/// `stream_options.include_usage` adds at the end of a stream.
pub fn is_usage_only_chunk(json: &[u8]) -> bool {
    serde_json::from_slice::<ChoicesHolder<'_>>(json)
        .map(|h| h.choices.is_none_or(|c| c.is_empty()))
        .unwrap_or(false)
        && peek_usage(json).is_some()
}

/// Counts the generated tokens of an answer that reports no usage: the text of every
/// choice (`message.content`, tool call arguments, or `text`), with [`crate::tokens::count`].
pub fn count_answer_tokens(body: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| choices_tokens(&v, "message"))
        .unwrap_or(0)
}

/// [`count_answer_tokens`] over an event stream: the `delta` text of every chunk.
pub fn count_stream_answer_tokens(sse: &[u8]) -> u64 {
    let mut tokens = 0;
    crate::sse::SseLineSplitter::new().feed(sse, |line| {
        if let crate::sse::SseLine::Data(payload) = line {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
                tokens += choices_tokens(&v, "delta");
            }
        }
    });
    tokens
}

fn choices_tokens(v: &serde_json::Value, part: &str) -> u64 {
    let count = |t: Option<&serde_json::Value>| {
        t.and_then(|t| t.as_str())
            .map_or(0, |t| u64::from(crate::tokens::count(t)))
    };
    let Some(choices) = v.get("choices").and_then(|c| c.as_array()) else {
        return 0;
    };
    choices
        .iter()
        .map(|choice| {
            let message = choice.get(part);
            let calls = message
                .and_then(|m| m.get("tool_calls"))
                .and_then(|c| c.as_array())
                .map_or(0, |calls| {
                    calls
                        .iter()
                        .map(|c| count(c.get("function").and_then(|f| f.get("arguments"))))
                        .sum()
                });
            count(choice.get("text")) + count(message.and_then(|m| m.get("content"))) + calls
        })
        .sum()
}

/// OpenAI's error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The body of OpenAI's error envelope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable message saying what to fix.
    pub message: String,
    /// Error family, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending parameter, if any.
    pub param: Option<String>,
    /// Machine-readable code, e.g. `invalid_api_key`.
    pub code: Option<String>,
}

impl ErrorEnvelope {
    /// Builds an envelope.
    pub fn new(
        message: impl Into<String>,
        kind: &str,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        ErrorEnvelope {
            error: ErrorBody {
                message: message.into(),
                kind: kind.to_owned(),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
            },
        }
    }

    /// Reads an upstream error body; `None` when it is not in OpenAI's shape.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// Serializes the envelope.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".to_vec())
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry<'a> {
    /// The model name clients send.
    pub id: &'a str,
    /// Always `"model"`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Who serves it (the provider name).
    pub owned_by: &'a str,
}

/// `GET /v1/models` answer.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList<'a> {
    /// Always `"list"`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelEntry<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_steering_fields() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5}"#;
        let peek = peek_request(body).expect("valid");
        assert!(
            matches!(peek.model, Some(Cow::Borrowed("gpt-4o"))),
            "the model name is read in place: {:?}",
            peek.model
        );
        assert!(peek.is_stream());
        assert!(!peek.wants_usage_chunk());
        assert_eq!(peek.max_tokens, Some(5));
    }

    #[test]
    fn peek_sees_tools_and_images() {
        let plain = br#"{"model":"m","messages":[{"role":"user","content":"look at [image]"}]}"#;
        let peek = peek_request(plain).expect("valid");
        assert!(!peek.uses_tools() && !peek.has_images());
        let rich = br#"{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#;
        let peek = peek_request(rich).expect("valid");
        assert!(peek.uses_tools() && peek.has_images());
        let empty_tools = br#"{"model":"m","tools":[],"messages":[{"role":"user","content":[{"type":"text","text":"image_url"}]}]}"#;
        let peek = peek_request(empty_tools).expect("valid");
        assert!(!peek.uses_tools() && !peek.has_images());
    }

    #[test]
    fn peek_handles_escaped_model_and_rejects_garbage() {
        let peek = peek_request(br#"{"model":"a\"b"}"#).expect("valid");
        assert_eq!(peek.model.as_deref(), Some("a\"b"));
        assert!(peek_request(br#"{"model":null}"#)
            .expect("valid")
            .model
            .is_none());
        assert!(peek_request(br#"{}"#).expect("valid").model.is_none());
        assert!(peek_request(br#"{"model":5}"#).is_err());
        let err = peek_request(b"{not json").expect_err("invalid");
        assert!(err.message.contains("could not parse"), "{}", err.message);
        assert!(peek_request(b"[1,2]").is_err());
    }

    #[test]
    fn rewrite_sets_model_and_usage_and_keeps_the_rest() {
        let body = br#"{"model":"alias","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"foo":1}}"#;
        let rewrite = Rewrite {
            model: Some("real"),
            include_usage: true,
            default_max_tokens: Some(64),
        };
        let out = rewrite_request(body, rewrite).expect("rewrite");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["model"], "real");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["foo"], 1);
        assert_eq!(v["messages"][0]["content"], "x");
        assert_eq!(v["max_tokens"], 64);
        // A body that names its own output cap keeps it.
        let own = br#"{"model":"m","max_completion_tokens":5}"#;
        let out = rewrite_request(own, rewrite).expect("rewrite");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert!(v.get("max_tokens").is_none());
        assert_eq!(v["max_completion_tokens"], 5);
        assert!(Rewrite::default().is_empty());
    }

    #[test]
    fn usage_peek_and_usage_only_chunk() {
        let chunk = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(peek_usage(chunk).map(|u| u.total_tokens), Some(7));
        assert!(is_usage_only_chunk(chunk));
        let content =
            br#"{"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
        assert_eq!(peek_usage(content), None);
        assert!(read_usage(b"<html>").is_err());
        assert_eq!(read_usage(b"{}").expect("object"), None);
        assert!(!is_usage_only_chunk(content));
    }

    #[test]
    fn error_envelope_round_trips() {
        let e = ErrorEnvelope::new("bad", "invalid_request_error", Some("model"), None);
        let parsed = ErrorEnvelope::parse(&e.to_vec()).expect("parse");
        assert_eq!(parsed, e);
        assert!(String::from_utf8_lossy(&e.to_vec()).contains("\"type\":\"invalid_request_error\""));
    }

    #[test]
    fn counts_answer_tokens_when_no_usage_is_reported() {
        let body =
            br#"{"choices":[{"message":{"role":"assistant","content":"Hello there friend"}}]}"#;
        assert_eq!(
            count_answer_tokens(body),
            u64::from(crate::tokens::count("Hello there friend"))
        );
        let tools = br#"{"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#;
        assert!(count_answer_tokens(tools) > 0);
        assert_eq!(
            count_answer_tokens(br#"{"choices":[{"text":"abcd efgh"}]}"#),
            2
        );
        let sse = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\ndata: [DONE]\n\n";
        let expected = crate::tokens::count("Hello") + crate::tokens::count(" there");
        assert_eq!(count_stream_answer_tokens(sse), u64::from(expected));
        assert_eq!(count_answer_tokens(b"garbage"), 0);
    }
}
