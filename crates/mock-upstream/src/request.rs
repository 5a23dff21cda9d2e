//! The parts of OpenAI request bodies the mock looks at, borrowed from the body.

use std::borrow::Cow;

use serde::Deserialize;

/// Tokens charged per chat message on top of its text (role and framing).
const TOKENS_PER_MESSAGE: u32 = 3;

/// `stream_options`.
#[derive(Deserialize, Default)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// `POST /v1/chat/completions`.
#[derive(Deserialize)]
pub(crate) struct ChatRequest<'a> {
    #[serde(borrow, default)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) messages: Vec<Message<'a>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub(crate) tool_choice: Option<serde_json::Value>,
}

/// One chat message.
#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow, default)]
    pub(crate) role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) content: Option<Content<'a>>,
}

/// A message's content: a string or a list of parts.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
}

/// A content part; only text parts carry `text`.
#[derive(Deserialize)]
pub(crate) struct Part<'a> {
    #[serde(borrow, default)]
    pub(crate) text: Option<Cow<'a, str>>,
}

impl Message<'_> {
    /// The message's text: the string content, or its text parts joined by spaces.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match &self.content {
            None => Cow::Borrowed(""),
            Some(Content::Text(text)) => Cow::Borrowed(text),
            Some(Content::Parts(parts)) => {
                let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
                Cow::Owned(texts.join(" "))
            }
        }
    }

    /// Tokens of the message's text content plus the per-message charge.
    pub(crate) fn tokens(&self) -> u32 {
        let text = match &self.content {
            None => 0,
            Some(Content::Text(text)) => wire::tokens::count(text),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .map(wire::tokens::count)
                .fold(0u32, u32::saturating_add),
        };
        text.saturating_add(TOKENS_PER_MESSAGE)
    }

    /// True for a message written by the user.
    pub(crate) fn is_user(&self) -> bool {
        self.role.as_deref() == Some("user")
    }
}

impl ChatRequest<'_> {
    /// The output cap: `max_completion_tokens`, else `max_tokens`.
    pub(crate) fn output_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Prompt tokens of every message.
    pub(crate) fn prompt_tokens(&self) -> u32 {
        self.messages
            .iter()
            .map(Message::tokens)
            .fold(0, u32::saturating_add)
    }
}

/// A prompt or an embedding input: a string, strings, tokens, or token lists.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Inputs<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Texts(#[serde(borrow)] Vec<Cow<'a, str>>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

/// One item of [`Inputs`].
pub(crate) enum Input<'s> {
    Text(&'s str),
    Tokens(&'s [i64]),
}

impl Inputs<'_> {
    /// Each input item: one per string or token list (a flat token array is one item).
    pub(crate) fn items(&self) -> Vec<Input<'_>> {
        match self {
            Inputs::Text(text) => vec![Input::Text(text)],
            Inputs::Texts(texts) => texts.iter().map(|text| Input::Text(text)).collect(),
            Inputs::Tokens(tokens) => vec![Input::Tokens(tokens)],
            Inputs::TokenLists(lists) => lists.iter().map(|list| Input::Tokens(list)).collect(),
        }
    }
}

impl Input<'_> {
    /// Tokens of this item: counted for text, the length for a token list.
    pub(crate) fn tokens(&self) -> u32 {
        match self {
            Input::Text(text) => wire::tokens::count(text),
            Input::Tokens(tokens) => u32::try_from(tokens.len()).unwrap_or(u32::MAX),
        }
    }

    /// The text of this item, empty for token lists.
    pub(crate) fn text(&self) -> &str {
        match self {
            Input::Text(text) => text,
            Input::Tokens(_) => "",
        }
    }
}

/// `POST /v1/completions`.
#[derive(Deserialize)]
pub(crate) struct CompletionRequest<'a> {
    #[serde(borrow, default)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) prompt: Option<Inputs<'a>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
}

/// `POST /v1/embeddings`.
#[derive(Deserialize)]
pub(crate) struct EmbeddingRequest<'a> {
    #[serde(borrow, default)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) input: Option<Inputs<'a>>,
    #[serde(default)]
    pub(crate) dimensions: Option<u32>,
}

/// True when a stream request asked for the usage chunk.
pub(crate) fn wants_usage(options: Option<&StreamOptions>) -> bool {
    options.and_then(|o| o.include_usage).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_string_and_part_content() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"user","content":[{"type":"text","text":"Hi there!"},{"type":"image_url","image_url":{"url":"x"}}]},
            {"role":"assistant","content":null}
        ]}"#;
        let request: ChatRequest = serde_json::from_slice(body).expect("parses");
        // "Be brief." = 4, "Hi there!" = 4, plus 3 per message.
        assert_eq!(request.prompt_tokens(), 4 + 4 + 9);
        assert_eq!(request.messages[1].text(), "Hi there!");
        assert!(request.messages[1].is_user());
    }

    #[test]
    fn inputs_of_every_shape() {
        for (json, items) in [
            (r#""a b""#, 1),
            (r#"["a","b","c"]"#, 3),
            ("[1,2,3]", 1),
            ("[[1,2],[3]]", 2),
        ] {
            let inputs: Inputs = serde_json::from_str(json).expect("parses");
            assert_eq!(inputs.items().len(), items, "{json}");
        }
    }
}
