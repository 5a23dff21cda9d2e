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
    // The leading ASCII (usually all of a request body) needs no UTF-8 validation;
    // what follows starts at a character boundary either way.
    let ascii = counter.feed_ascii(bytes);
    for chunk in bytes[ascii..].utf8_chunks() {
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

/// How the counting rule sees an ASCII byte (see [`ASCII_CLASS`]).
const ALNUM: u8 = 0;
const SPACE: u8 = 1;
const PUNCT: u8 = 2;
const NON_ASCII: u8 = 3;

/// The class of every byte: ASCII letters and digits, white space (as
/// `char::is_whitespace` has it for ASCII: tab to carriage return and space), other
/// ASCII, and the bytes of multi-byte characters.
static ASCII_CLASS: [u8; 256] = {
    let mut table = [NON_ASCII; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        table[b] = if byte.is_ascii_alphanumeric() {
            ALNUM
        } else if matches!(byte, b' ' | b'\t'..=b'\r') {
            SPACE
        } else {
            PUNCT
        };
        b += 1;
    }
    table
};

impl Counter {
    fn feed_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // ASCII without branches on the text: a run of letters and digits costs a
            // token at its 1st, 5th, 9th… character, punctuation one each.
            i += self.feed_ascii(&bytes[i..]);
            if i < bytes.len() {
                // `text` is a str, so a character starts here.
                let Some(ch) = text[i..].chars().next() else {
                    break;
                };
                self.feed_char(ch);
                i += ch.len_utf8();
            }
        }
    }

    /// Feeds the leading ASCII of `bytes`; answers how many bytes that was.
    fn feed_ascii(&mut self, bytes: &[u8]) -> usize {
        let (tokens, run, ascii) = count_ascii(bytes, self.run);
        self.tokens = self.tokens.saturating_add(tokens);
        self.run = run;
        ascii
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

/// Counts the leading ASCII of `bytes`, continuing a run of `run` letters and digits
/// whose tokens are already counted: the tokens it adds, the run it ends in (its
/// tokens counted too), and how many bytes were ASCII.
fn count_ascii(bytes: &[u8], mut run: u32) -> (u32, u32, usize) {
    // `Counter::run` holds a run whose tokens are not yet counted (they are counted
    // when it ends); here a run's tokens are counted as it grows. So the run carried
    // in counts as if its tokens were in (they are added), and the run carried out
    // as if they were not (they are taken back).
    let mut tokens: u32 = run.div_ceil(4);
    let mut used = 0;
    // Eight bytes at a time while they are all ASCII (request bodies mostly are).
    while let Some(Ok(word)) = bytes.get(used..used + 8).map(<[u8; 8]>::try_from) {
        let word = u64::from_le_bytes(word);
        if word & HIGH != 0 {
            break;
        }
        let (alnum, punct) = classify(word);
        tokens = tokens
            .wrapping_add(u32::from(
                RUN_TOKENS[(run % 4) as usize][usize::from(alnum)],
            ))
            .wrapping_add(punct.count_ones());
        run = if alnum == u8::MAX {
            run + 8
        } else {
            alnum.leading_ones()
        };
        used += 8;
    }
    // The rest a byte at a time.
    for &b in &bytes[used..] {
        let class = ASCII_CLASS[usize::from(b)];
        if class == NON_ASCII {
            break;
        }
        let alnum = u32::from(class == ALNUM);
        run = (run + 1) * alnum;
        // A token at the 1st, 5th, 9th… character of a run; one per punctuation mark.
        tokens = tokens
            .wrapping_add(alnum & u32::from(run % 4 == 1))
            .wrapping_add(u32::from(class == PUNCT));
        used += 1;
    }
    (tokens.wrapping_sub(run.div_ceil(4)), run, used)
}

/// The high bit of every byte of a word.
const HIGH: u64 = 0x8080_8080_8080_8080;
/// One in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The bytes of an all-ASCII word (first byte lowest) that are letters or digits,
/// and those that are neither that nor white space, as bit masks (bit `i`: byte `i`).
fn classify(word: u64) -> (u8, u8) {
    // High bit set in each byte that is at least `lo` (every byte is below 0x80, so
    // with its high bit set first no subtraction borrows from the next byte).
    let at_least = |w: u64, lo: u8| ((w | HIGH) - ONES * u64::from(lo)) & HIGH;
    let within = |w: u64, lo: u8, end: u8| at_least(w, lo) & !at_least(w, end);
    let digits = within(word, b'0', b'9' + 1);
    let letters = within(word | (ONES * 0x20), b'a', b'z' + 1);
    let space = within(word, b'\t', b'\r' + 1) | within(word, b' ', b' ' + 1);
    let alnum = digits | letters;
    let punct = HIGH & !(alnum | space);
    (lanes(alnum), lanes(punct))
}

/// The high bits of a word's bytes as the bits of one byte (byte `i` to bit `i`).
fn lanes(mask: u64) -> u8 {
    ((mask >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// Tokens started by runs in eight bytes: `[run % 4][letters-and-digits mask]`, a
/// token at the 1st, 5th, 9th… character of each run.
static RUN_TOKENS: [[u8; 256]; 4] = {
    let mut table = [[0u8; 256]; 4];
    let mut phase = 0;
    while phase < 4 {
        let mut mask = 0;
        while mask < 256 {
            let (mut tokens, mut at) = (0u8, phase);
            let mut lane = 0;
            while lane < 8 {
                if mask & (1 << lane) != 0 {
                    if at == 0 {
                        tokens += 1;
                    }
                    at = (at + 1) % 4;
                } else {
                    at = 0;
                }
                lane += 1;
            }
            table[phase][mask] = tokens;
            mask += 1;
        }
        phase += 1;
    }
    table
};

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
        let samples: [&[u8]; 10] = [
            b"",
            b"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}",
            "caf\u{e9} na\u{ef}ve \u{65e5}\u{672c}\u{8a9e}\u{3067}\u{3059} \u{1f600}!".as_bytes(),
            b"tab\tvertical\x0bform\x0cfeed\r\nend",
            b"\xff\xfe broken \xc3 utf8 \xe2\x82 here\x80",
            b"abc\xe2\x82\xacdef",
            "\u{85}next\u{a0}nbsp\u{2003}em".as_bytes(),
            b"1234567890 12345 x1y2z3",
            b"\xf0\x9f\x98",
            b"abcde\xffghij \xc3\xa9t\xc3",
        ];
        for bytes in samples {
            let lossy = String::from_utf8_lossy(bytes);
            assert_eq!(count_bytes(bytes), reference(&lossy), "{lossy:?}");
            assert_eq!(count(&lossy), reference(&lossy), "{lossy:?}");
        }
    }

    #[test]
    fn every_prefix_of_mixed_text_counts_as_the_char_rule_says() {
        // Runs that cross multi-byte letters, long runs, punctuation, white space.
        let text =
            "Hello, wörld! abcdefghijklm 12345678 x-y_z café日本語abcde \u{a0}é{\"k\":[1,2]}\tend";
        for (i, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let prefix = &text[..i];
            assert_eq!(count(prefix), reference(prefix), "{prefix:?}");
            assert_eq!(
                count_bytes(prefix.as_bytes()),
                reference(prefix),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn long_text_counts_as_the_char_rule_says_at_every_offset() {
        // Every ASCII byte, runs of every length across 8-byte words, and a few
        // multi-byte characters, started at each offset of a word.
        let mut text = String::new();
        for b in 0u8..128 {
            text.push(b as char);
            text.push_str(&"a1".repeat(usize::from(b % 13)));
        }
        text.push_str("tail ünïcode 日本 words");
        for start in 0..16 {
            let part = &text[start..];
            assert_eq!(count(part), reference(part), "from {start}");
            assert_eq!(
                count_bytes(part.as_bytes()),
                reference(part),
                "from {start}"
            );
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
