//! What every adapter does on the wire: send with connect and first-byte timeouts,
//! read bounded bodies, and turn an error answer into an [`UpstreamError`].

use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::HeaderValue;
use http_body_util::{BodyExt, Limited};
use wire::openai::ErrorEnvelope;

use super::origin::{Answer, OriginClient, OriginRequest, ResponseBody};
use super::{UpstreamError, UpstreamErrorKind};
use crate::h1::{Fields, Joined};
use crate::pool::{Headroom, UpstreamKey};

/// `application/json`, built once (a `&str` value is copied on every request).
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// What adapters accept: a JSON answer or an event stream.
pub const JSON_OR_EVENTS: HeaderValue =
    HeaderValue::from_static("application/json, text/event-stream");

/// The largest non-stream upstream answer read.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The largest upstream error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sends a request; answers with the response head, whatever its status.
pub async fn send(
    client: &OriginClient,
    request: OriginRequest<'_>,
    first_byte_timeout: Duration,
) -> Result<Answer, UpstreamError> {
    match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
        Err(_) => {
            let waited = first_byte_timeout.as_millis();
            Err(UpstreamError::new(
                UpstreamErrorKind::Timeout,
                format!("the upstream did not answer within {waited} ms"),
            ))
        }
        Ok(Err(e)) => {
            let message = format!("cannot reach the upstream: {}", error_chain(&e));
            Err(UpstreamError::new(UpstreamErrorKind::Connect, message))
        }
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// Reads a whole answer body, bounded in size and time.
pub async fn read_whole(body: ResponseBody, timeout: Duration) -> Result<Bytes, UpstreamError> {
    let read = read_to_end(body, MAX_BODY);
    tokio::pin!(read);
    // Usually the body came with the head: no timer (nor clock read) for that.
    let read = match read.as_mut().now_or_never() {
        Some(done) => Ok(done),
        None => tokio::time::timeout(timeout, read).await,
    };
    match read {
        Ok(Ok(whole)) => Ok(whole),
        Ok(Err(why)) => Err(UpstreamError::new(UpstreamErrorKind::BadResponse, why)),
        Err(_) => {
            let waited = timeout.as_millis();
            Err(UpstreamError::new(
                UpstreamErrorKind::Timeout,
                format!("the upstream answer did not complete within {waited} ms"),
            ))
        }
    }
}

/// The body's data, at most `max` bytes. An answer that arrives as one frame (the
/// usual case) is handed on as it is; more frames are joined.
async fn read_to_end(mut body: ResponseBody, max: usize) -> Result<Bytes, String> {
    let mut whole = Joined::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the upstream answer broke off: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if whole.len() + data.len() > max {
            return Err(format!("the upstream answer is longer than {max} bytes"));
        }
        whole.push(data);
    }
    Ok(whole.into_bytes().unwrap_or_default())
}

/// The rate-limit header names of a provider family: limit and remaining, for
/// requests and for tokens.
pub struct RateLimitHeaders {
    pub limit_requests: &'static str,
    pub remaining_requests: &'static str,
    pub limit_tokens: &'static str,
    pub remaining_tokens: &'static str,
}

/// OpenAI's (and most OpenAI-compatible servers') rate-limit headers.
pub const OPENAI_RATELIMIT_HEADERS: RateLimitHeaders = RateLimitHeaders {
    limit_requests: "x-ratelimit-limit-requests",
    remaining_requests: "x-ratelimit-remaining-requests",
    limit_tokens: "x-ratelimit-limit-tokens",
    remaining_tokens: "x-ratelimit-remaining-tokens",
};

/// Anthropic's rate-limit headers.
pub const ANTHROPIC_RATELIMIT_HEADERS: RateLimitHeaders = RateLimitHeaders {
    limit_requests: "anthropic-ratelimit-requests-limit",
    remaining_requests: "anthropic-ratelimit-requests-remaining",
    limit_tokens: "anthropic-ratelimit-tokens-limit",
    remaining_tokens: "anthropic-ratelimit-tokens-remaining",
};

/// The remaining quota an answer reports, if it reports any.
pub fn headroom(headers: &Fields, names: RateLimitHeaders) -> Option<Headroom> {
    let number = |name: &str| headers.text(name)?.parse::<u64>().ok();
    let headroom = Headroom {
        limit_requests: number(names.limit_requests),
        remaining_requests: number(names.remaining_requests),
        limit_tokens: number(names.limit_tokens),
        remaining_tokens: number(names.remaining_tokens),
    };
    (headroom != Headroom::default()).then_some(headroom)
}

/// When a rate-limited key may go again: `Retry-After` (seconds), else the later of
/// OpenAI's `x-ratelimit-reset-requests` / `-tokens` (`1s`, `6m0s`, `20ms`).
pub fn retry_after(headers: &Fields) -> Option<Duration> {
    let seconds = headers
        .text("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    seconds.or_else(|| {
        ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
            .iter()
            .filter_map(|name| headers.text(name).and_then(parse_reset))
            .max()
    })
}

/// Parses a Go-style duration as OpenAI sends it: `1s`, `6m0s`, `1h2m3.5s`, `20ms`.
fn parse_reset(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return None;
        };
        total += value * unit;
        rest = &rest[len..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// Turns an error answer into an [`UpstreamError`]: `parse` reads the provider's error
/// body into OpenAI's envelope; any occurrence of the key's secret is masked.
pub async fn error_answer(
    answer: Answer,
    key: &UpstreamKey,
    timeout: Duration,
    parse: impl FnOnce(u16, &[u8]) -> ErrorEnvelope,
) -> UpstreamError {
    let status = answer.status.as_u16();
    let retry_after = retry_after(&answer.headers);
    let body =
        match tokio::time::timeout(timeout, Limited::new(answer.body, MAX_ERROR_BODY).collect())
            .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
    let envelope = parse(status, &body);
    UpstreamError {
        kind: UpstreamErrorKind::Status,
        status: Some(status),
        retry_after,
        message: format!(
            "upstream answered HTTP {status}: {}",
            key.scrub(&envelope.error.message)
        ),
        code: envelope.error.code,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_parse_like_openai_sends_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("soon"), None);
    }

    /// The fields of an answer whose head has `lines` (each ending in CRLF).
    fn fields(lines: &str) -> Fields {
        let head = format!("HTTP/1.1 200 OK\r\n{lines}content-length: 0\r\n\r\n");
        let mut buf = bytes::BytesMut::from(head.as_bytes());
        crate::h1::parse_head(&mut buf, false)
            .expect("valid")
            .expect("complete")
            .headers
    }

    #[test]
    fn retry_after_prefers_the_header_then_the_later_reset() {
        let resets = "x-ratelimit-reset-requests: 2s\r\nx-ratelimit-reset-tokens: 500ms\r\n";
        assert_eq!(retry_after(&fields(resets)), Some(Duration::from_secs(2)));
        let both = format!("Retry-After: 7\r\n{resets}");
        assert_eq!(retry_after(&fields(&both)), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&fields("retry-after: soon\r\n")), None);
    }

    #[test]
    fn headroom_reads_the_family_headers() {
        assert_eq!(headroom(&fields(""), OPENAI_RATELIMIT_HEADERS), None);
        let reported =
            fields("X-RateLimit-Limit-Requests: 100\r\nx-ratelimit-remaining-requests:  25 \r\n");
        let found = headroom(&reported, OPENAI_RATELIMIT_HEADERS).expect("headroom");
        assert_eq!(found.utilization(), Some(0.75));
        assert_eq!(headroom(&reported, ANTHROPIC_RATELIMIT_HEADERS), None);
    }

    /// A server that answers each request with `parts`, written 30 ms apart.
    async fn answering(parts: &'static [&'static [u8]]) -> OriginClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base: http::Uri = format!("http://{}/v1", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        for part in parts {
                            if stream.write_all(part).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                    }
                });
            }
        });
        OriginClient::new(&base, Duration::from_secs(1)).expect("client")
    }

    async fn body_of(client: &OriginClient) -> ResponseBody {
        client
            .request(chat_request(Bytes::from_static(b"{}")))
            .await
            .expect("answer")
            .body
    }

    fn chat_request(body: Bytes) -> OriginRequest<'static> {
        OriginRequest {
            method: http::Method::POST,
            target: "/v1/chat/completions",
            headers: &[],
            credential: None,
            body,
        }
    }

    const ONE_FRAME: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"id\":\"x\"}"];

    #[tokio::test]
    async fn a_whole_body_is_read_from_one_frame_or_joined_from_many() {
        let one = answering(ONE_FRAME).await;
        let whole = read_to_end(body_of(&one).await, 64).await.expect("whole");
        assert_eq!(&whole[..], b"{\"id\":\"x\"}");
        let three = answering(&[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n",
            b"5\r\n\":1}\n\r\n",
            b"2\r\n[]\r\n0\r\n\r\n",
        ])
        .await;
        let whole = read_to_end(body_of(&three).await, 64).await.expect("whole");
        assert_eq!(&whole[..], b"{\"a\":1}\n[]");
    }

    #[tokio::test]
    async fn a_body_longer_than_the_limit_is_refused() {
        let one = answering(ONE_FRAME).await;
        let why = read_to_end(body_of(&one).await, 9)
            .await
            .expect_err("too long");
        assert_eq!(why, "the upstream answer is longer than 9 bytes");
        let two = answering(&[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\n123456\r\n",
            b"6\r\n789012\r\n0\r\n\r\n",
        ])
        .await;
        let why = read_to_end(body_of(&two).await, 10)
            .await
            .expect_err("too long");
        assert_eq!(why, "the upstream answer is longer than 10 bytes");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_says_why() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base: http::Uri = format!("http://{}/v1", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        drop(listener);
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        let error = send(&client, chat_request(Bytes::new()), Duration::from_secs(1))
            .await
            .expect_err("nothing listens");
        assert_eq!(error.kind, UpstreamErrorKind::Connect);
        assert!(
            error.message.to_lowercase().contains("refused"),
            "the OS's reason is kept: {}",
            error.message
        );
    }
}
