//! The provider client's side: the request head it writes and the response head it
//! reads.

use std::io::Write;
use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::{Framing, H1Error, MAX_HEAD};

/// The most header fields read in a response head.
const MAX_HEADERS: usize = 100;

/// Writes a request head into `out`: request line, `host` unless `headers` has one,
/// the headers (framing headers are the client's: `content-length` is written from
/// `body_len`), and the blank line.
pub fn encode_request(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    host: &HeaderValue,
    body_len: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(HOST) {
        line(out, HOST.as_str().as_bytes(), host.as_bytes());
    }
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let has_body = body_len > 0 || !matches!(*method, Method::GET | Method::HEAD);
    if has_body {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "content-length: {body_len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once this body has been read.
    pub keep_alive: bool,
}

/// Parses the response head at the start of `buf` and removes it (with any interim
/// 1xx answers before it); `None` while the head is incomplete.
pub fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, H1Error> {
    loop {
        // Uninitialised: zeroing a hundred fields for every answer costs more than
        // parsing the dozen it has.
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut fields,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(H1Error::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(H1Error::Head(e)),
        };
        let code = response.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| H1Error::Head(httparse::Error::Status))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue, 103 Early Hints…: the real answer follows.
            buf.advance(len);
            continue;
        }
        let version = if response.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where each field is in the head, so that values share its bytes.
        let base = buf.as_ptr() as usize;
        let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let count = response.headers.len();
        // Offsets within the head (refused long before 4 GiB).
        let offset = |ptr: *const u8| (ptr as usize - base) as u32;
        for (span, field) in spans.iter_mut().zip(response.headers.iter()) {
            let name = offset(field.name.as_ptr());
            let value = offset(field.value.as_ptr());
            *span = (
                name,
                name + field.name.len() as u32,
                value,
                value + field.value.len() as u32,
            );
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        for &(name_start, name_end, value_start, value_end) in &spans[..count] {
            let (name_start, name_end) = (name_start as usize, name_end as usize);
            let (value_start, value_end) = (value_start as usize, value_end as usize);
            let name = header_name(&head[name_start..name_end])?;
            let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
                .map_err(|_| H1Error::Header(name.to_string()))?;
            headers.append(name, value);
        }
        let framing = framing(status, &headers, head_request)?;
        let keep_alive = framing != Framing::UntilClose && keep_alive(version, &headers);
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Names providers send that HTTP does not define, built at compile time: parsing one
/// of these from bytes copies it into a new allocation every time.
pub(super) static PROVIDER_HEADERS: [HeaderName; 29] = {
    const fn n(name: &'static str) -> HeaderName {
        HeaderName::from_static(name)
    }
    [
        n("x-request-id"),
        n("request-id"),
        n("x-ratelimit-limit-requests"),
        n("x-ratelimit-limit-tokens"),
        n("x-ratelimit-remaining-requests"),
        n("x-ratelimit-remaining-tokens"),
        n("x-ratelimit-reset-requests"),
        n("x-ratelimit-reset-tokens"),
        n("openai-processing-ms"),
        n("openai-organization"),
        n("openai-project"),
        n("openai-version"),
        n("x-envoy-upstream-service-time"),
        n("anthropic-ratelimit-requests-limit"),
        n("anthropic-ratelimit-requests-remaining"),
        n("anthropic-ratelimit-requests-reset"),
        n("anthropic-ratelimit-tokens-limit"),
        n("anthropic-ratelimit-tokens-remaining"),
        n("anthropic-ratelimit-tokens-reset"),
        n("anthropic-ratelimit-input-tokens-limit"),
        n("anthropic-ratelimit-input-tokens-remaining"),
        n("anthropic-ratelimit-input-tokens-reset"),
        n("anthropic-ratelimit-output-tokens-limit"),
        n("anthropic-ratelimit-output-tokens-remaining"),
        n("anthropic-ratelimit-output-tokens-reset"),
        n("anthropic-organization-id"),
        n("cf-ray"),
        n("cf-cache-status"),
        n("x-robots-tag"),
    ]
};

/// A header name from the wire: one of [`PROVIDER_HEADERS`] without a copy, else parsed
/// (HTTP's own names are constants of the `http` crate either way).
pub(super) fn header_name(bytes: &[u8]) -> Result<HeaderName, H1Error> {
    let known = PROVIDER_HEADERS.iter().find(|known| {
        let known = known.as_str().as_bytes();
        known.len() == bytes.len() && known.eq_ignore_ascii_case(bytes)
    });
    match known {
        Some(known) => Ok(known.clone()),
        None => HeaderName::from_bytes(bytes)
            .map_err(|_| H1Error::Header(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// The body's framing (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    headers: &HeaderMap,
    head_request: bool,
) -> Result<Framing, H1Error> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if let Some(last) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let final_coding = last
            .as_bytes()
            .rsplit(|&b| b == b',')
            .next()
            .unwrap_or_default();
        return Ok(
            if final_coding.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else {
                Framing::UntilClose
            },
        );
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(H1Error::ContentLength);
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(H1Error::ContentLength)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(H1Error::ContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether the server lets the connection carry another request.
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut keep = version == Version::HTTP_11;
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                return false;
            }
            if token.eq_ignore_ascii_case(b"keep-alive") {
                keep = true;
            }
        }
    }
    keep
}
