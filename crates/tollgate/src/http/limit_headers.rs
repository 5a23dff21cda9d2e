//! The limit headers of SPEC §3, written from the caller's [`LimitReport`]:
//! `X-RateLimit-{Limit,Remaining}-{Minute,Hour}` and OpenAI's
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
//!
//! They go into the answer as one block of header lines ([`EncodedHeaders`]), which
//! the server writes into the head as it is: up to ten fields on every call, each
//! of which would otherwise be a value allocated, checked and hashed into the
//! answer's map, then read out of it again.

use std::sync::Arc;

use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::HeaderValue;

use super::server::EncodedHeaders;
use crate::admission::{LimitKind, LimitReport};

const DOWNGRADED_FROM: &str = "x-tollgate-downgraded-from";
const LIMIT_MINUTE: &str = "x-ratelimit-limit-minute";
const REMAINING_MINUTE: &str = "x-ratelimit-remaining-minute";
const LIMIT_HOUR: &str = "x-ratelimit-limit-hour";
const REMAINING_HOUR: &str = "x-ratelimit-remaining-hour";
/// OpenAI's trio for requests: limit, remaining, reset.
const REQUESTS: [&str; 3] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
];
/// OpenAI's trio for tokens.
const TOKENS: [&str; 3] = [
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// The most bytes the block takes (ten fields, names and values, plus a model).
const BLOCK_CAPACITY: usize = 512;

/// Adds the limit headers (and `x-tollgate-downgraded-from`) to a response.
pub fn apply(
    response: &mut Response,
    report: Option<&LimitReport>,
    downgraded_from: Option<&Arc<str>>,
) {
    let block = encode(report, downgraded_from);
    if !block.is_empty() {
        response.extensions_mut().insert(EncodedHeaders(block));
    }
}

/// The header lines (`name: value` and CRLF each) for `report` and a downgrade.
pub fn encode(report: Option<&LimitReport>, downgraded_from: Option<&Arc<str>>) -> Bytes {
    let mut block = BytesMut::new();
    if let Some(model) = downgraded_from.filter(|m| HeaderValue::from_str(m).is_ok()) {
        block.reserve(BLOCK_CAPACITY);
        field(&mut block, DOWNGRADED_FROM, |b| {
            b.extend_from_slice(model.as_bytes())
        });
    }
    let Some(report) = report else {
        return block.freeze();
    };
    block.reserve(BLOCK_CAPACITY);
    if let Some(r) = report.get(LimitKind::Rpm) {
        number(&mut block, LIMIT_MINUTE, r.limit);
        number(&mut block, REMAINING_MINUTE, r.remaining);
    }
    if let Some(r) = report.get(LimitKind::Rph) {
        number(&mut block, LIMIT_HOUR, r.limit);
        number(&mut block, REMAINING_HOUR, r.remaining);
    }
    // OpenAI's trios show the tightest window that is set, minute first.
    let requests = [LimitKind::Rpm, LimitKind::Rph, LimitKind::Rpd]
        .into_iter()
        .find_map(|k| report.get(k));
    let tokens = [LimitKind::Tpm, LimitKind::Tpd, LimitKind::TokensPerMonth]
        .into_iter()
        .find_map(|k| report.get(k));
    for (r, [limit, remaining, reset]) in [(requests, REQUESTS), (tokens, TOKENS)] {
        if let Some(r) = r {
            number(&mut block, limit, r.limit);
            number(&mut block, remaining, r.remaining);
            field(&mut block, reset, |b| duration(b, r.reset_s));
        }
    }
    block.freeze()
}

/// Writes one header line: `name`, then the value `write` puts.
fn field(block: &mut BytesMut, name: &str, write: impl FnOnce(&mut BytesMut)) {
    block.extend_from_slice(name.as_bytes());
    block.extend_from_slice(b": ");
    write(block);
    block.extend_from_slice(b"\r\n");
}

fn number(block: &mut BytesMut, name: &str, n: u64) {
    field(block, name, |b| put_number(b, n));
}

/// OpenAI's reset format: `45s`, `6m0s`, `2h3m0s`.
fn duration(text: &mut BytesMut, seconds: u64) {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        put_number(text, h);
        text.extend_from_slice(b"h");
    }
    if h > 0 || m > 0 {
        put_number(text, m);
        text.extend_from_slice(b"m");
    }
    put_number(text, s);
    text.extend_from_slice(b"s");
}

/// Writes `n` in decimal (itoa: `core::fmt` costs more than the headers' other work).
fn put_number(text: &mut BytesMut, n: u64) {
    text.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::counters::Remaining;

    /// The block's fields, each line checked to be a valid header field.
    fn fields(block: &[u8]) -> Vec<(String, String)> {
        let text = std::str::from_utf8(block).expect("ascii");
        assert!(text.is_empty() || text.ends_with("\r\n"));
        text.split_terminator("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("name: value");
                http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
                HeaderValue::from_str(value).expect("a header value");
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    #[test]
    fn writes_minute_hour_and_openai_trios() {
        let mut report = LimitReport::default();
        report.set(
            LimitKind::Rpm,
            Remaining {
                limit: 10,
                remaining: 7,
                reset_s: 42,
            },
        );
        report.set(
            LimitKind::Rph,
            Remaining {
                limit: 100,
                remaining: 97,
                reset_s: 1800,
            },
        );
        report.set(
            LimitKind::Tpd,
            Remaining {
                limit: 5000,
                remaining: 4000,
                reset_s: 7322,
            },
        );
        let h = fields(&encode(Some(&report), Some(&Arc::from("gpt-4o"))));
        let get = |n: &str| {
            h.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(n))
                .map_or("-".to_owned(), |(_, v)| v.clone())
        };
        assert_eq!(get("X-RateLimit-Limit-Minute"), "10");
        assert_eq!(get("X-RateLimit-Remaining-Minute"), "7");
        assert_eq!(get("X-RateLimit-Limit-Hour"), "100");
        assert_eq!(get("X-RateLimit-Remaining-Hour"), "97");
        assert_eq!(get("x-ratelimit-limit-requests"), "10");
        assert_eq!(get("x-ratelimit-reset-requests"), "42s");
        assert_eq!(get("x-ratelimit-limit-tokens"), "5000");
        assert_eq!(get("x-ratelimit-remaining-tokens"), "4000");
        assert_eq!(get("x-ratelimit-reset-tokens"), "2h2m2s");
        assert_eq!(get("x-tollgate-downgraded-from"), "gpt-4o");
        assert!(encode(None, None).is_empty());
        // A model name that is not a header value is left out.
        assert!(encode(None, Some(&Arc::from("bad\nname"))).is_empty());
    }

    #[test]
    fn reset_times_read_like_openais() {
        for (seconds, text) in [
            (0, "0s"),
            (59, "59s"),
            (360, "6m0s"),
            (3600, "1h0m0s"),
            (7322, "2h2m2s"),
        ] {
            let mut report = LimitReport::default();
            report.set(
                LimitKind::Tpm,
                Remaining {
                    limit: u64::MAX,
                    remaining: 0,
                    reset_s: seconds,
                },
            );
            let h = fields(&encode(Some(&report), None));
            assert_eq!(
                h,
                [
                    ("x-ratelimit-limit-tokens".to_owned(), u64::MAX.to_string()),
                    ("x-ratelimit-remaining-tokens".to_owned(), "0".to_owned()),
                    ("x-ratelimit-reset-tokens".to_owned(), text.to_owned()),
                ]
            );
        }
    }
}
