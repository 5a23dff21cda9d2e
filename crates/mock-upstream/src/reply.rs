//! Deterministic reply text: a function of the request, padded or trimmed to the
//! configured number of words, with its real token count.

use crate::directives::is_directive_word;

/// Words of the request echoed at the start of a reply.
const ECHOED_WORDS: usize = 6;

/// Words that pad a reply to its length, in order.
const FILLER: [&str; 16] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet,",
    "consectetur",
    "adipiscing",
    "elit,",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "magna.",
];

/// A reply: its text, its token count, and whether `max_tokens` cut it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) text: String,
    pub(crate) tokens: u32,
    pub(crate) truncated: bool,
}

impl Reply {
    /// `"stop"`, or `"length"` when `max_tokens` cut the reply.
    pub(crate) fn finish_reason(&self) -> &'static str {
        if self.truncated {
            "length"
        } else {
            "stop"
        }
    }
}

/// Builds the reply `lead` + the first words of `seed` + filler, `words` words in
/// all, then keeps the longest prefix of whole words within `max_tokens`.
pub(crate) fn compose(lead: &str, seed: &str, words: usize, max_tokens: Option<u32>) -> Reply {
    let echoed = seed
        .split_whitespace()
        .filter(|word| !is_directive_word(word))
        .take(ECHOED_WORDS);
    let all = lead
        .split_whitespace()
        .chain(echoed)
        .chain(FILLER.iter().copied().cycle())
        .take(words);
    let budget = max_tokens.unwrap_or(u32::MAX);
    let mut text = String::with_capacity(words * 8);
    let mut tokens: u32 = 0;
    let mut truncated = false;
    for word in all {
        // White space costs nothing, so the count of the text is the sum over words.
        let cost = wire::tokens::count(word);
        if tokens.saturating_add(cost) > budget {
            truncated = true;
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
        tokens += cost;
    }
    Reply {
        text,
        tokens,
        truncated,
    }
}

/// Splits a reply into stream pieces, one per word, each but the last with its
/// trailing space, so that the pieces concatenate to the reply text.
pub(crate) fn pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_trims_to_the_word_count() {
        let reply = compose("Mock reply to:", "What is [[mock:no-usage]] Rust?", 8, None);
        assert_eq!(reply.text, "Mock reply to: What is Rust? lorem ipsum");
        assert_eq!(reply.tokens, wire::tokens::count(&reply.text));
        assert!(!reply.truncated);
        assert_eq!(compose("Mock reply to:", "x", 2, None).text, "Mock reply");
    }

    #[test]
    fn max_tokens_truncates() {
        let reply = compose("Mock reply to:", "hello", 12, Some(3));
        assert_eq!(reply.text, "Mock reply");
        assert_eq!(reply.tokens, 3);
        assert_eq!(reply.finish_reason(), "length");
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        let text = "Mock reply to: hi";
        let parts: Vec<&str> = pieces(text).collect();
        assert_eq!(parts, ["Mock ", "reply ", "to: ", "hi"]);
        assert_eq!(parts.concat(), text);
    }
}
