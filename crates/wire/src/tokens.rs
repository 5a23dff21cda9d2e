//! Approximate token counting, used where an upstream reports no usage (a stream
//! without a usage chunk, a cost estimate at admission) and by the mock upstream.
//!
//! The rule is deterministic and close to BPE tokenizers on English text: every run
//! of letters or digits costs one token per started four characters, every other
//! visible character costs one token, white space is free.

/// Counts the approximate number of tokens in `text`.
pub fn count(text: &str) -> u32 {
    let mut counter = Counter::default();
    counter.feed_str(text);
    counter.total()
}

/// [`count`] over bytes read as UTF-8, each invalid sequence counting as one
/// replacement character: the same as `count(&String::from_utf8_lossy(bytes))`,
/// without the copy or the separate validation pass (request bodies are counted on
/// every call).
pub fn count_bytes(bytes: &[u8]) -> u32 {
    let mut counter = Counter::default();
    for chunk in bytes.utf8_chunks() {
        counter.feed_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            counter.feed_char(char::REPLACEMENT_CHARACTER);
        }
    }
    counter.total()
}

/// The counting rule, fed a character at a time.
#[derive(Default)]
struct Counter {
    tokens: u32,
    /// Letters and digits in the current run.
    run: u32,
}

impl Counter {
    fn feed_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii() {
                // The same classes as `char`'s methods give for ASCII; note that
                // `char::is_whitespace` includes U+000B, `u8::is_ascii_whitespace` not.
                if b.is_ascii_alphanumeric() {
                    self.run += 1;
                } else {
                    self.end_run();
                    if !matches!(b, b' ' | b'\t'..=b'\r') {
                        self.tokens = self.tokens.saturating_add(1);
                    }
                }
                i += 1;
            } else {
                // `text` is a str, so a character starts here.
                let Some(ch) = text[i..].chars().next() else {
                    break;
                };
                self.feed_char(ch);
                i += ch.len_utf8();
            }
        }
    }

    fn feed_char(&mut self, ch: char) {
        if ch.is_alphanumeric() {
            self.run += 1;
            return;
        }
        self.end_run();
        if !ch.is_whitespace() {
            self.tokens = self.tokens.saturating_add(1);
        }
    }

    fn end_run(&mut self) {
        self.tokens = self.tokens.saturating_add(self.run.div_ceil(4));
        self.run = 0;
    }

    fn total(mut self) -> u32 {
        self.end_run();
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::{count, count_bytes};

    /// The rule as first written, character by character: the reference the fast
    /// paths must agree with.
    fn reference(text: &str) -> u32 {
        let mut tokens: u32 = 0;
        let mut run: u32 = 0;
        for ch in text.chars() {
            if ch.is_alphanumeric() {
                run += 1;
                continue;
            }
            tokens = tokens.saturating_add(run.div_ceil(4));
            run = 0;
            if !ch.is_whitespace() {
                tokens = tokens.saturating_add(1);
            }
        }
        tokens.saturating_add(run.div_ceil(4))
    }

    #[test]
    fn every_ascii_character_counts_as_the_char_rule_says() {
        for b in 0u8..128 {
            let one = (b as char).to_string();
            assert_eq!(count(&one), reference(&one), "byte {b:#04x}");
            let framed = format!("ab{one}cdefg{one}{one}");
            assert_eq!(count(&framed), reference(&framed), "byte {b:#04x}");
        }
    }

    #[test]
    fn bytes_count_like_their_lossy_text() {
        let samples: [&[u8]; 9] = [
            b"",
            b"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}",
            "caf\u{e9} na\u{ef}ve \u{65e5}\u{672c}\u{8a9e}\u{3067}\u{3059} \u{1f600}!".as_bytes(),
            b"tab\tvertical\x0bform\x0cfeed\r\nend",
            b"\xff\xfe broken \xc3 utf8 \xe2\x82 here\x80",
            b"abc\xe2\x82\xacdef",
            "\u{85}next\u{a0}nbsp\u{2003}em".as_bytes(),
            b"1234567890 12345 x1y2z3",
            b"\xf0\x9f\x98",
        ];
        for bytes in samples {
            let lossy = String::from_utf8_lossy(bytes);
            assert_eq!(count_bytes(bytes), reference(&lossy), "{lossy:?}");
            assert_eq!(count(&lossy), reference(&lossy), "{lossy:?}");
        }
    }

    #[test]
    fn counts_words_and_punctuation() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 2);
        assert_eq!(count("Hi there!"), 4);
        assert_eq!(count("a, b"), 3);
        assert_eq!(count("   "), 0);
    }
}
