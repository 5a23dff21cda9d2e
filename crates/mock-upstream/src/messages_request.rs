//! The parts of an Anthropic Messages request the mock looks at, borrowed from the
//! body.

use std::borrow::Cow;

use serde::Deserialize;

/// Tokens charged per message on top of its text (role and framing).
const TOKENS_PER_MESSAGE: u32 = 3;

/// `POST /v1/messages`.
#[derive(Deserialize)]
pub(crate) struct MessagesRequest<'a> {
    #[serde(borrow, default)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    #[serde(borrow, default)]
    pub(crate) messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    pub(crate) system: Option<Content<'a>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub(crate) tool_choice: Option<serde_json::Value>,
}

/// One input message.
#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow, default)]
    pub(crate) role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) content: Option<Content<'a>>,
}

/// A message's (or the system prompt's) content: a string or content blocks.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Blocks(#[serde(borrow)] Vec<Block<'a>>),
}

/// A content block. Text blocks carry `text`; `tool_result` blocks carry
/// `content`, itself a string or blocks.
#[derive(Deserialize)]
pub(crate) struct Block<'a> {
    #[serde(borrow, default)]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) content: Option<Content<'a>>,
}

impl Content<'_> {
    /// The user's own words: the string, or the text blocks joined by spaces.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Text(text) => Cow::Borrowed(text),
            Content::Blocks(blocks) => {
                let texts: Vec<&str> = blocks.iter().filter_map(|b| b.text.as_deref()).collect();
                Cow::Owned(texts.join(" "))
            }
        }
    }

    /// Calls `each` with every piece of text, tool results included.
    fn for_each_text<'s>(&'s self, each: &mut impl FnMut(&'s str)) {
        match self {
            Content::Text(text) => each(text),
            Content::Blocks(blocks) => {
                for block in blocks {
                    if let Some(text) = block.text.as_deref() {
                        each(text);
                    }
                    if let Some(inner) = &block.content {
                        inner.for_each_text(each);
                    }
                }
            }
        }
    }

    /// Every piece of text, tool results included, joined by spaces.
    pub(crate) fn all_text(&self) -> Cow<'_, str> {
        if let Content::Text(text) = self {
            return Cow::Borrowed(text);
        }
        let mut texts = Vec::new();
        self.for_each_text(&mut |text| texts.push(text));
        Cow::Owned(texts.join(" "))
    }

    /// Tokens of every piece of text, tool results included.
    pub(crate) fn tokens(&self) -> u32 {
        let mut tokens: u32 = 0;
        self.for_each_text(&mut |text| {
            tokens = tokens.saturating_add(wire::tokens::count(text));
        });
        tokens
    }
}

impl Message<'_> {
    /// True for a message written by the user.
    pub(crate) fn is_user(&self) -> bool {
        self.role.as_deref() == Some("user")
    }

    /// The user's own words (text blocks only).
    pub(crate) fn text(&self) -> Cow<'_, str> {
        self.content
            .as_ref()
            .map_or(Cow::Borrowed(""), Content::text)
    }

    /// All the text the message carries, tool results included.
    pub(crate) fn all_text(&self) -> Cow<'_, str> {
        self.content
            .as_ref()
            .map_or(Cow::Borrowed(""), Content::all_text)
    }

    /// Tokens of the message's text plus the per-message charge.
    fn tokens(&self) -> u32 {
        self.content
            .as_ref()
            .map_or(0, Content::tokens)
            .saturating_add(TOKENS_PER_MESSAGE)
    }
}

impl MessagesRequest<'_> {
    /// Input tokens: the system prompt, plus every message's text and charge.
    pub(crate) fn input_tokens(&self) -> u32 {
        let system = self.system.as_ref().map_or(0, Content::tokens);
        self.messages
            .iter()
            .flatten()
            .map(Message::tokens)
            .fold(system, u32::saturating_add)
    }

    /// The last message written by the user.
    pub(crate) fn last_user(&self) -> Option<&Message<'_>> {
        self.messages.iter().flatten().rev().find(|m| m.is_user())
    }

    /// The text a reply echoes: the last user message with words of its own (not
    /// only tool results), as the OpenAI half takes the last `user` message.
    pub(crate) fn seed(&self) -> Cow<'_, str> {
        self.messages
            .iter()
            .flatten()
            .rev()
            .filter(|m| m.is_user())
            .map(Message::text)
            .find(|text| !text.trim().is_empty())
            .unwrap_or(Cow::Borrowed(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_system_text_blocks_and_tool_results() {
        let body = br#"{"model":"m","max_tokens":10,
            "system":[{"type":"text","text":"Be brief."}],
            "messages":[
              {"role":"user","content":"Hi there!"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"sunny"},
                                        {"type":"tool_result","tool_use_id":"u","content":[{"type":"text","text":"ok"}]}]}
            ]}"#;
        let request: MessagesRequest = serde_json::from_slice(body).expect("parses");
        // "Be brief." 4, "Hi there!" 4, "sunny" 2, "ok" 1, 3 per message.
        assert_eq!(request.input_tokens(), 4 + 4 + 2 + 1 + 9);
        let last = request.last_user().expect("a user message");
        assert_eq!(last.all_text(), "sunny ok");
        assert_eq!(last.text(), "");
        assert_eq!(request.seed(), "Hi there!");
    }

    #[test]
    fn string_system_and_content() {
        let body = br#"{"model":"m","max_tokens":10,"system":"Be brief.",
            "messages":[{"role":"user","content":"Hello"}]}"#;
        let request: MessagesRequest = serde_json::from_slice(body).expect("parses");
        assert_eq!(request.input_tokens(), 4 + 2 + 3);
        assert_eq!(request.seed(), "Hello");
    }
}
