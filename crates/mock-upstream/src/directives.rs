//! Per-request directives written into the prompt: `[[mock:…]]`.

use std::time::Duration;

use crate::outcome::Outcome;

/// Marks the start of a directive.
const OPEN: &str = "[[mock:";
/// Marks its end.
const CLOSE: &str = "]]";

/// What the directives of one request ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    /// `[[mock:NNN]]`, `[[mock:hang]]`, `[[mock:garbage]]`, `[[mock:context-length]]`.
    pub(crate) outcome: Option<Outcome>,
    /// `[[mock:chunk-delay=MS]]`.
    pub(crate) chunk_delay: Option<Duration>,
    /// `[[mock:first-byte-delay=MS]]`.
    pub(crate) first_byte_delay: Option<Duration>,
    /// `[[mock:hang-after-first-chunk]]`.
    pub(crate) hang_after_first_chunk: bool,
    /// `[[mock:no-usage]]`.
    pub(crate) no_usage: bool,
    /// `[[mock:tool]]`: answer with a call to the first tool of the request.
    pub(crate) tool: bool,
}

impl Directives {
    /// Adds the directives found in `text`; unknown ones are ignored.
    pub(crate) fn scan(&mut self, text: &str) {
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            let after = &rest[start + OPEN.len()..];
            let Some(end) = after.find(CLOSE) else {
                return;
            };
            self.apply(&after[..end]);
            rest = &after[end + CLOSE.len()..];
        }
    }

    fn apply(&mut self, directive: &str) {
        let millis = |value: &str| value.trim().parse().ok().map(Duration::from_millis);
        match directive.trim() {
            "hang" => self.outcome = Some(Outcome::Hang),
            "garbage" => self.outcome = Some(Outcome::Garbage),
            "context-length" => self.outcome = Some(Outcome::ContextLength),
            "hang-after-first-chunk" => self.hang_after_first_chunk = true,
            "no-usage" => self.no_usage = true,
            "tool" => self.tool = true,
            other => {
                if let Some(value) = other.strip_prefix("chunk-delay=") {
                    self.chunk_delay = millis(value);
                } else if let Some(value) = other.strip_prefix("first-byte-delay=") {
                    self.first_byte_delay = millis(value);
                } else if let Ok(status @ 100..=599) = other.parse::<u16>() {
                    let retry_after_s = (status == 429).then_some(1);
                    self.outcome = Some(Outcome::Fail {
                        status,
                        retry_after_s,
                    });
                }
            }
        }
    }
}

/// True for a word that is (part of) a directive, so replies do not echo it.
pub(crate) fn is_directive_word(word: &str) -> bool {
    word.contains(OPEN) || word.contains(CLOSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_directive() {
        let mut found = Directives::default();
        found.scan(
            "hi [[mock:chunk-delay=25]] and [[mock:no-usage]][[mock:429]] [[mock:nope]] [[mock:",
        );
        assert_eq!(found.chunk_delay, Some(Duration::from_millis(25)));
        assert!(found.no_usage);
        assert_eq!(
            found.outcome,
            Some(Outcome::Fail {
                status: 429,
                retry_after_s: Some(1)
            })
        );
        assert!(!found.hang_after_first_chunk);
    }

    #[test]
    fn context_length() {
        let mut found = Directives::default();
        found.scan("too long [[mock:context-length]]");
        assert_eq!(found.outcome, Some(Outcome::ContextLength));
    }

    #[test]
    fn plain_text_has_none() {
        let mut found = Directives::default();
        found.scan("just a question [[not one]]");
        assert_eq!(found, Directives::default());
    }
}
