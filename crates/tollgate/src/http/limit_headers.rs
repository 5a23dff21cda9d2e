//! The limit headers of SPEC §3, written from the caller's [`LimitReport`]:
//! `X-RateLimit-{Limit,Remaining}-{Minute,Hour}` and OpenAI's
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.

use std::sync::Arc;

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
    if let Some(r) = report.get(LimitKind::Rpm) {
        headers.insert(LIMIT_MINUTE, HeaderValue::from(r.limit));
        headers.insert(REMAINING_MINUTE, HeaderValue::from(r.remaining));
    }
    if let Some(r) = report.get(LimitKind::Rph) {
        headers.insert(LIMIT_HOUR, HeaderValue::from(r.limit));
        headers.insert(REMAINING_HOUR, HeaderValue::from(r.remaining));
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
            headers.insert(limit, HeaderValue::from(r.limit));
            headers.insert(remaining, HeaderValue::from(r.remaining));
            if let Ok(v) = HeaderValue::from_str(&duration_text(r.reset_s)) {
                headers.insert(reset, v);
            }
        }
    }
}

/// OpenAI's reset format: `45s`, `6m0s`, `2h3m0s`.
fn duration_text(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
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
}
