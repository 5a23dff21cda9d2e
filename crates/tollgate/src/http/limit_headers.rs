//! The limit headers of SPEC §3, written from the caller's [`LimitReport`]:
//! `X-RateLimit-{Limit,Remaining}-{Minute,Hour}` and OpenAI's
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.

use std::sync::Arc;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::admission::{LimitKind, LimitReport};

/// A header name built at compile time (a `&str` name is parsed on every insert).
const fn name(text: &'static str) -> HeaderName {
    HeaderName::from_static(text)
}

const DOWNGRADED_FROM: HeaderName = name("x-tollgate-downgraded-from");
const LIMIT_MINUTE: HeaderName = name("x-ratelimit-limit-minute");
const REMAINING_MINUTE: HeaderName = name("x-ratelimit-remaining-minute");
const LIMIT_HOUR: HeaderName = name("x-ratelimit-limit-hour");
const REMAINING_HOUR: HeaderName = name("x-ratelimit-remaining-hour");
/// OpenAI's trio for requests: limit, remaining, reset.
const REQUESTS: [HeaderName; 3] = [
    name("x-ratelimit-limit-requests"),
    name("x-ratelimit-remaining-requests"),
    name("x-ratelimit-reset-requests"),
];
/// OpenAI's trio for tokens.
const TOKENS: [HeaderName; 3] = [
    name("x-ratelimit-limit-tokens"),
    name("x-ratelimit-remaining-tokens"),
    name("x-ratelimit-reset-tokens"),
];

/// Adds the limit headers (and `x-tollgate-downgraded-from`) to a response.
pub fn apply(
    headers: &mut HeaderMap,
    report: Option<&LimitReport>,
    downgraded_from: Option<&Arc<str>>,
) {
    if let Some(model) = downgraded_from.and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert(DOWNGRADED_FROM, model);
    }
    let Some(report) = report else {
        return;
    };
    let mut values = Values::default();
    if let Some(r) = report.get(LimitKind::Rpm) {
        values.number(LIMIT_MINUTE, r.limit);
        values.number(REMAINING_MINUTE, r.remaining);
    }
    if let Some(r) = report.get(LimitKind::Rph) {
        values.number(LIMIT_HOUR, r.limit);
        values.number(REMAINING_HOUR, r.remaining);
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
            values.number(limit, r.limit);
            values.number(remaining, r.remaining);
            values.duration(reset, r.reset_s);
        }
    }
    values.insert_into(headers);
}

/// The most limit headers one answer gets.
const MAX_VALUES: usize = 10;

/// Header values written one after another into one buffer, then handed out as
/// slices of it: one allocation for all of an answer's limit headers, where
/// `HeaderValue::from(u64)` allocates each.
#[derive(Default)]
struct Values {
    text: BytesMut,
    /// Each header's name and where its value is in `text`.
    spans: Vec<(HeaderName, usize, usize)>,
}

impl Values {
    /// Adds a header whose value `write` puts into `text`.
    fn push(&mut self, name: HeaderName, write: impl FnOnce(&mut BytesMut)) {
        if self.spans.is_empty() {
            self.text.reserve(MAX_VALUES * 12);
            self.spans.reserve(MAX_VALUES);
        }
        let start = self.text.len();
        write(&mut self.text);
        self.spans.push((name, start, self.text.len()));
    }

    fn number(&mut self, name: HeaderName, n: u64) {
        self.push(name, |text| put_number(text, n));
    }

    /// OpenAI's reset format: `45s`, `6m0s`, `2h3m0s`.
    fn duration(&mut self, name: HeaderName, seconds: u64) {
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        self.push(name, |text| {
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
        });
    }

    fn insert_into(self, headers: &mut HeaderMap) {
        let text = self.text.freeze();
        headers.reserve(self.spans.len());
        for (name, start, end) in self.spans {
            if let Ok(value) = HeaderValue::from_maybe_shared(text.slice(start..end)) {
                headers.insert(name, value);
            }
        }
    }
}

/// Writes `n` in decimal (itoa: `core::fmt` costs more than the headers' other work).
fn put_number(text: &mut BytesMut, n: u64) {
    text.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::counters::Remaining;

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
        let mut h = HeaderMap::new();
        apply(&mut h, Some(&report), Some(&Arc::from("gpt-4o")));
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
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
        let mut none = HeaderMap::new();
        apply(&mut none, None, None);
        assert!(none.is_empty());
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
            let mut h = HeaderMap::new();
            apply(&mut h, Some(&report), None);
            assert_eq!(h["x-ratelimit-reset-tokens"], text);
            assert_eq!(h["x-ratelimit-limit-tokens"], u64::MAX.to_string().as_str());
            assert_eq!(h["x-ratelimit-remaining-tokens"], "0");
            assert_eq!(h.len(), 3);
        }
    }
}
