//! Approximate token counting, used where an upstream reports no usage (a stream
//! without a usage chunk, a cost estimate at admission) and by the mock upstream.
//!
//! The rule is deterministic and close to BPE tokenizers on English text: every run
//! of letters or digits costs one token per started four characters, every other
//! visible character costs one token, white space is free.

/// Counts the approximate number of tokens in `text`.
pub fn count(text: &str) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_words_and_punctuation() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 2);
        assert_eq!(count("Hi there!"), 4);
        assert_eq!(count("a, b"), 3);
        assert_eq!(count("   "), 0);
    }
}
