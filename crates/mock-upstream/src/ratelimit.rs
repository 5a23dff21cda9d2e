//! Rate-limit headers on successful answers, as the real APIs send them.
//!
//! Each key gets its own window of `LIMIT` requests: the `n`-th request with a key
//! reports `LIMIT - 1 - ((n - 1) % LIMIT)` requests remaining, so consecutive calls
//! with one key count down. Remaining tokens are the limit less this request's
//! tokens. Limits are static values; only the two remaining counts are formatted,
//! and four headers keep a JSON response's header map within its first allocation.

use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};

/// Requests per minute an OpenAI key is granted.
pub(crate) const OPENAI_REQUESTS: u64 = 10_000;
/// Tokens per minute an OpenAI key is granted.
pub(crate) const OPENAI_TOKENS: u64 = 2_000_000;
/// Requests per minute an Anthropic key is granted.
pub(crate) const ANTHROPIC_REQUESTS: u64 = 4_000;
/// Tokens (input and output) per minute an Anthropic key is granted.
pub(crate) const ANTHROPIC_TOKENS: u64 = 400_000;

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

const A_LIMIT_REQUESTS: HeaderName = HeaderName::from_static("anthropic-ratelimit-requests-limit");
const A_REMAINING_REQUESTS: HeaderName =
    HeaderName::from_static("anthropic-ratelimit-requests-remaining");
const A_LIMIT_TOKENS: HeaderName = HeaderName::from_static("anthropic-ratelimit-tokens-limit");
const A_REMAINING_TOKENS: HeaderName =
    HeaderName::from_static("anthropic-ratelimit-tokens-remaining");

/// Requests left in the window after the `seen`-th request of a key.
fn remaining(limit: u64, seen: u64) -> u64 {
    limit - 1 - (seen.max(1) - 1) % limit
}

/// Adds OpenAI's `x-ratelimit-*` headers for the `seen`-th request of a key that
/// used `tokens` tokens.
pub(crate) fn openai(headers: &mut HeaderMap, seen: u64, tokens: u32) {
    headers.insert(LIMIT_REQUESTS, HeaderValue::from_static("10000"));
    headers.insert(
        REMAINING_REQUESTS,
        HeaderValue::from(remaining(OPENAI_REQUESTS, seen)),
    );
    headers.insert(LIMIT_TOKENS, HeaderValue::from_static("2000000"));
    headers.insert(
        REMAINING_TOKENS,
        HeaderValue::from(OPENAI_TOKENS.saturating_sub(u64::from(tokens))),
    );
}

/// Adds Anthropic's `anthropic-ratelimit-*` request and token headers for the
/// `seen`-th request of a key that used `tokens` tokens.
pub(crate) fn anthropic(headers: &mut HeaderMap, seen: u64, tokens: u32) {
    headers.insert(A_LIMIT_REQUESTS, HeaderValue::from_static("4000"));
    headers.insert(
        A_REMAINING_REQUESTS,
        HeaderValue::from(remaining(ANTHROPIC_REQUESTS, seen)),
    );
    headers.insert(A_LIMIT_TOKENS, HeaderValue::from_static("400000"));
    headers.insert(
        A_REMAINING_TOKENS,
        HeaderValue::from(ANTHROPIC_TOKENS.saturating_sub(u64::from(tokens))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_counts_down_per_window() {
        assert_eq!(remaining(10, 1), 9);
        assert_eq!(remaining(10, 10), 0);
        assert_eq!(remaining(10, 11), 9);
        assert_eq!(remaining(10, 0), 9);
    }

    #[test]
    fn static_limits_match_the_constants() {
        let mut headers = HeaderMap::new();
        openai(&mut headers, 3, 100);
        assert_eq!(headers[LIMIT_REQUESTS], OPENAI_REQUESTS.to_string());
        assert_eq!(headers[LIMIT_TOKENS], OPENAI_TOKENS.to_string());
        assert_eq!(headers[REMAINING_REQUESTS], "9997");
        assert_eq!(headers[REMAINING_TOKENS], "1999900");
        let mut headers = HeaderMap::new();
        anthropic(&mut headers, 1, 10);
        assert_eq!(headers[A_LIMIT_REQUESTS], ANTHROPIC_REQUESTS.to_string());
        assert_eq!(headers[A_LIMIT_TOKENS], ANTHROPIC_TOKENS.to_string());
        assert_eq!(headers[A_REMAINING_REQUESTS], "3999");
        assert_eq!(headers[A_REMAINING_TOKENS], "399990");
    }
}
