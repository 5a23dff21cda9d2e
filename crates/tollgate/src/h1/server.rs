//! The server's side: the request head a client sends, and the response head the
//! gateway writes back.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};

use super::{chunked_is_final, content_length, field_spans, keeps_alive, Framing, MAX_HEAD};

/// The most header fields read in a request head.
pub const MAX_HEADERS: usize = 100;

/// Why a request head is refused. The connection is answered with
/// [`RequestError::status`] and closed: what follows the head cannot be trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The request line or a header line is not HTTP/1.x.
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    /// The head did not end within [`MAX_HEAD`] bytes or [`MAX_HEADERS`] fields.
    #[error("the request head is larger than {MAX_HEAD} bytes or {MAX_HEADERS} fields")]
    HeadTooLarge,
    /// A method, target, header name or value that HTTP does not allow.
    #[error("invalid {0} in the request")]
    Invalid(&'static str),
    /// `content-length` is not one number (or several equal ones).
    #[error("invalid content-length in the request")]
    ContentLength,
    /// A transfer coding other than a final `chunked`: the body's length is unknown.
    #[error("the request's transfer-encoding is not chunked")]
    TransferEncoding,
}

impl RequestError {
    /// The status the server answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// How the body is delimited: `Length(0)` when there is none.
    pub body: Framing,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a `100 Continue` before the body.
    pub expect_continue: bool,
}

/// Parses the request head at the start of `buf` and removes it; `None` while it is
/// incomplete. Empty lines before the request line are skipped (RFC 9112 §2.2).
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, RequestError> {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(RequestError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(e) => return Err(RequestError::Malformed(e)),
    };
    if len > MAX_HEAD {
        return Err(RequestError::HeadTooLarge);
    }
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| RequestError::Invalid("method"))?;
    let version = if request.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Where the target and each field are in the head, so that they share its bytes.
    let target = request.path.unwrap_or_default();
    let target_start = target.as_ptr() as usize - buf.as_ptr() as usize;
    let target_end = target_start + target.len();
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let count = request.headers.len();
    field_spans(buf.as_ptr(), request.headers, &mut spans);
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target_start..target_end))
        .map_err(|_| RequestError::Invalid("request target"))?;
    let mut headers = HeaderMap::with_capacity(count);
    for &[name_start, name_end, value_start, value_end] in &spans[..count] {
        let name = http::HeaderName::from_bytes(&head[name_start as usize..name_end as usize])
            .map_err(|_| RequestError::Invalid("header name"))?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_start as usize..value_end as usize))
                .map_err(|_| RequestError::Invalid("header value"))?;
        headers.append(name, value);
    }
    let body = request_framing(&headers)?;
    // A body framed both ways is read as chunked, and the connection is not trusted
    // with another request (RFC 9112 §6.1).
    let keep_alive = keep_alive(version, &headers)
        && !(headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH));
    let expect_continue = version == Version::HTTP_11
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        headers,
        body,
        keep_alive,
        expect_continue,
    }))
}

/// A request body's framing (RFC 9112 §6.3): chunked when that is the final transfer
/// coding, else `content-length`, else none.
fn request_framing(headers: &HeaderMap) -> Result<Framing, RequestError> {
    if let Some(last) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        return if chunked_is_final(last.as_bytes()) {
            Ok(Framing::Chunked)
        } else {
            Err(RequestError::TransferEncoding)
        };
    }
    let values = headers
        .get_all(CONTENT_LENGTH)
        .into_iter()
        .map(HeaderValue::as_bytes);
    let length = content_length(values).map_err(|()| RequestError::ContentLength)?;
    Ok(Framing::Length(length.unwrap_or(0)))
}

/// Whether the client lets the connection carry another request.
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let values = headers
        .get_all(CONNECTION)
        .into_iter()
        .map(HeaderValue::as_bytes);
    keeps_alive(version, values)
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body and no length (1xx, 204, 304).
    None,
    /// `content-length` bytes (for a HEAD request: the length a GET would have, and no
    /// body).
    Length(u64),
    /// The chunked transfer coding: a body of unknown length to an HTTP/1.1 client.
    Chunked,
    /// Until the connection closes: a body of unknown length to an HTTP/1.0 client.
    UntilClose,
}

impl ResponseFraming {
    /// The framing for a response of `status` whose body is `exact` bytes long (when
    /// known), to a client speaking `version`.
    pub fn of(status: StatusCode, exact: Option<u64>, version: Version) -> Self {
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return ResponseFraming::None;
        }
        match exact {
            Some(n) => ResponseFraming::Length(n),
            None if version == Version::HTTP_11 => ResponseFraming::Chunked,
            None => ResponseFraming::UntilClose,
        }
    }
}

/// Writes a response head into `out`: the status line, the response's headers (but
/// its framing and connection headers, which are the server's), the header lines in
/// `encoded` as they are, `date` unless the headers have one, the framing header,
/// `connection: close` when the connection ends after it (`keep-alive` to an HTTP/1.0
/// client that keeps it), and the blank line.
pub fn encode_response(
    status: StatusCode,
    headers: &HeaderMap,
    encoded: &[u8],
    framing: ResponseFraming,
    client_version: Version,
    close: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(encoded);
    if !headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        write_date(out);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ResponseFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::None | ResponseFraming::UntilClose => {}
    }
    if close || framing == ResponseFraming::UntilClose {
        out.extend_from_slice(b"connection: close\r\n");
    } else if client_version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The line that starts a chunk of `len` bytes: its size in hex and CRLF.
pub fn chunk_start(len: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[(len >> (shift * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// What ends a chunked body: the last (empty) chunk and no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `date` value of the current second, formatted once per second per thread.
    static CURRENT_DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Writes the current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn write_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CURRENT_DATE.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            let formatted = httpdate::fmt_http_date(now);
            if formatted.len() == text.len() {
                text.copy_from_slice(formatted.as_bytes());
                *cached = second;
            } else {
                out.extend_from_slice(formatted.as_bytes());
                return;
            }
        }
        out.extend_from_slice(text);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (RequestHead, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        let head = parse_request(&mut buf)
            .expect("valid head")
            .expect("complete head");
        (head, buf)
    }

    fn refused(bytes: &[u8]) -> RequestError {
        parse_request(&mut BytesMut::from(bytes)).expect_err("refused")
    }

    #[test]
    fn an_sdk_request_head_is_read_and_the_body_left_in_the_buffer() {
        let wire = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer tg-live-abc\r\nContent-Type: application/json\r\nContent-Length: 2\r\nUser-Agent: OpenAI/Python 1.55.0\r\n\r\n{}POST";
        let (head, rest) = parse(wire);
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri.path(), "/v1/chat/completions");
        assert_eq!(head.uri.query(), Some("x=1"));
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers["authorization"], "Bearer tg-live-abc");
        assert_eq!(head.headers["user-agent"], "OpenAI/Python 1.55.0");
        assert_eq!(head.body, Framing::Length(2));
        assert!(head.keep_alive);
        assert!(!head.expect_continue);
        assert_eq!(&rest[..], b"{}POST");
    }

    #[test]
    fn an_incomplete_head_waits_for_more_at_every_split() {
        let wire = b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Api-Key: k\r\n\r\n";
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            assert!(
                parse_request(&mut buf).expect("valid so far").is_none(),
                "{split}"
            );
            buf.extend_from_slice(&wire[split..]);
            let head = parse_request(&mut buf).expect("valid").expect("complete");
            assert_eq!(head.headers["x-api-key"], "k");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let cases: [(&[u8], Framing, bool); 8] = [
            (b"GET / HTTP/1.1\r\n\r\n", Framing::Length(0), true),
            (b"GET / HTTP/1.0\r\n\r\n", Framing::Length(0), false),
            (
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                Framing::Length(0),
                true,
            ),
            (
                b"POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
                Framing::Length(5),
                false,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            // Both: chunked wins, and the connection ends after the answer.
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n",
                Framing::Length(7),
                true,
            ),
        ];
        for (wire, framing, keep_alive) in cases {
            let (head, _) = parse(wire);
            let text = String::from_utf8_lossy(wire);
            assert_eq!(head.body, framing, "{text}");
            assert_eq!(head.keep_alive, keep_alive, "{text}");
        }
    }

    #[test]
    fn bad_heads_are_refused_with_the_right_status() {
        let cases: [(&[u8], StatusCode); 7] = [
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (b"GET / HTTP/2.0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"GET /\x01 HTTP/1.1\r\n\r\n", StatusCode::BAD_REQUEST),
            (
                b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (wire, status) in cases {
            assert_eq!(
                refused(wire).status(),
                status,
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: v\r\n"))
            .collect();
        let wire = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            refused(wire.as_bytes()).status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let endless = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(refused(endless.as_bytes()), RequestError::HeadTooLarge);
    }

    #[test]
    fn expect_continue_is_seen() {
        let (head, _) =
            parse(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(head.expect_continue);
    }

    #[test]
    fn response_heads_carry_the_servers_framing_and_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("content-length", HeaderValue::from_static("999"));
        headers.insert("x-request-id", HeaderValue::from_static("req_1"));
        let mut out = Vec::new();
        let framing = ResponseFraming::of(StatusCode::OK, Some(2), Version::HTTP_11);
        encode_response(
            StatusCode::OK,
            &headers,
            b"x-ratelimit-limit-minute: 10\r\n",
            framing,
            Version::HTTP_11,
            false,
            &mut out,
        );
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_1\r\nx-ratelimit-limit-minute: 10\r\ndate: "), "{text}");
        assert!(
            text.ends_with(" GMT\r\ncontent-length: 2\r\n\r\n"),
            "{text}"
        );

        let mut out = Vec::new();
        let framing = ResponseFraming::of(StatusCode::OK, None, Version::HTTP_11);
        assert_eq!(framing, ResponseFraming::Chunked);
        encode_response(
            StatusCode::OK,
            &HeaderMap::new(),
            b"",
            framing,
            Version::HTTP_11,
            true,
            &mut out,
        );
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.ends_with("transfer-encoding: chunked\r\nconnection: close\r\n\r\n"),
            "{text}"
        );

        // An HTTP/1.0 client gets a stream until the connection closes.
        let framing = ResponseFraming::of(StatusCode::OK, None, Version::HTTP_10);
        assert_eq!(framing, ResponseFraming::UntilClose);
        let mut out = Vec::new();
        encode_response(
            StatusCode::OK,
            &HeaderMap::new(),
            b"",
            framing,
            Version::HTTP_10,
            false,
            &mut out,
        );
        assert!(out.ends_with(b"GMT\r\nconnection: close\r\n\r\n"));

        for status in [
            StatusCode::NO_CONTENT,
            StatusCode::NOT_MODIFIED,
            StatusCode::SWITCHING_PROTOCOLS,
        ] {
            assert_eq!(
                ResponseFraming::of(status, Some(0), Version::HTTP_11),
                ResponseFraming::None
            );
        }
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for (len, text) in [
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (65535, "ffff\r\n"),
            (4096, "1000\r\n"),
        ] {
            let mut out = Vec::new();
            chunk_start(len, &mut out);
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn the_date_is_an_imf_fixdate() {
        let mut out = Vec::new();
        write_date(&mut out);
        write_date(&mut out);
        let text = String::from_utf8(out).expect("ascii");
        assert_eq!(text.len(), 58);
        assert!(httpdate::parse_http_date(&text[..29]).is_ok(), "{text}");
    }
}
