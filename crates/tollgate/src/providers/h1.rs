//! HTTP/1.1 on the wire for the provider client (RFC 9112), as pure functions over
//! byte buffers: the request head, the response head, and the response body's framing
//! (`content-length`, `chunked`, or until the connection closes). [`super::origin`]
//! does the I/O.

use std::io::Write;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

/// The most header fields read in a response head.
const MAX_HEADERS: usize = 100;
/// The largest response head read, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (with its extensions), in bytes.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The largest trailer section skipped after a chunked body, in bytes.
const MAX_TRAILERS: usize = 64 * 1024;

/// What is wrong with an answer's bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum H1Error {
    /// The status line or a header line is not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The head did not end within [`MAX_HEAD`] bytes.
    #[error("the response head is longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// A header name or value that HTTP does not allow.
    #[error("invalid header in the response: {0}")]
    Header(String),
    /// `content-length` is not one number (or several equal ones).
    #[error("invalid content-length in the response")]
    ContentLength,
    /// The chunked body breaks the chunked coding.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

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

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `content-length` bytes (no body at all for 0, a HEAD request, 204 and 304).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
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
static PROVIDER_HEADERS: [HeaderName; 29] = {
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
fn header_name(bytes: &[u8]) -> Result<HeaderName, H1Error> {
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

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Body data, joined into one piece.
    pub data: Option<Bytes>,
    /// The body has ended.
    pub done: bool,
}

/// Reads a body's bytes out of the connection's buffer as they arrive.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes of a `content-length` body are still to come.
    Length(u64),
    /// At a chunk-size line.
    ChunkSize,
    /// This many bytes of the current chunk are still to come.
    ChunkData(u64),
    /// At the CRLF that ends a chunk's data.
    ChunkEnd,
    /// In the trailer section; this many bytes of it were skipped.
    Trailers(usize),
    /// Everything until the connection closes.
    UntilClose,
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// The body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The bytes still to come, when the framing says.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The connection closed: true when that ends the body (an until-close body),
    /// false when it came too early.
    pub fn closed(&mut self) -> bool {
        let ended = matches!(self.state, State::UntilClose | State::Done);
        if ended {
            self.state = State::Done;
        }
        ended
    }

    /// Takes the body bytes at the start of `buf`, at most about `max` of them joined
    /// into one piece, and consumes the framing around them.
    pub fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Decoded, H1Error> {
        let mut joined = Joined::default();
        loop {
            match self.state {
                State::Done => return Ok(joined.finish(true)),
                State::Length(left) | State::ChunkData(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    if take == 0 || joined.len() >= max {
                        return Ok(joined.finish(false));
                    }
                    joined.push(buf.split_to(take).freeze());
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::UntilClose => {
                    if buf.is_empty() || joined.len() >= max {
                        return Ok(joined.finish(false));
                    }
                    let all = buf.len();
                    joined.push(buf.split_to(all).freeze());
                }
                State::ChunkSize => {
                    let Some(end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                        return Ok(joined.finish(false));
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 2);
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(joined.finish(false));
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(H1Error::Chunked("chunk data is not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers(skipped) => {
                    let Some(end) = find_crlf(buf, MAX_TRAILERS - skipped)? else {
                        return Ok(joined.finish(false));
                    };
                    buf.advance(end + 2);
                    self.state = if end == 0 {
                        State::Done
                    } else {
                        State::Trailers(skipped + end + 2)
                    };
                }
            }
        }
    }
}

/// The offset of the first CRLF in `buf`; an error when none is within `limit` bytes.
fn find_crlf(buf: &[u8], limit: usize) -> Result<Option<usize>, H1Error> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at <= limit => Ok(Some(at)),
        Some(_) => Err(H1Error::Chunked("a chunk-size or trailer line is too long")),
        None if buf.len() > limit => {
            Err(H1Error::Chunked("a chunk-size or trailer line is too long"))
        }
        None => Ok(None),
    }
}

/// The size on a chunk-size line: hex digits, then optional extensions.
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    if digits == 0 || digits > 15 {
        return Err(H1Error::Chunked("invalid chunk size"));
    }
    let rest = rest.trim_ascii();
    let extension_ok = rest.is_empty() || rest.starts_with(b";");
    if !extension_ok {
        return Err(H1Error::Chunked("invalid chunk size"));
    }
    let text =
        std::str::from_utf8(&line[..digits]).map_err(|_| H1Error::Chunked("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| H1Error::Chunked("invalid chunk size"))
}

/// Body pieces joined into one: the first is kept as it is (no copy), later ones are
/// appended to a copy.
#[derive(Default)]
pub struct Joined {
    first: Option<Bytes>,
    more: Option<BytesMut>,
}

impl Joined {
    /// The bytes joined so far.
    pub fn len(&self) -> usize {
        match (&self.more, &self.first) {
            (Some(more), _) => more.len(),
            (None, Some(first)) => first.len(),
            (None, None) => 0,
        }
    }

    /// Nothing joined yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `piece`.
    pub fn push(&mut self, piece: Bytes) {
        if let Some(more) = &mut self.more {
            more.extend_from_slice(&piece);
        } else if let Some(first) = self.first.take() {
            let mut more = BytesMut::with_capacity(first.len() + piece.len());
            more.extend_from_slice(&first);
            more.extend_from_slice(&piece);
            self.more = Some(more);
        } else {
            self.first = Some(piece);
        }
    }

    /// The pieces as one, `None` when there were none.
    pub fn into_bytes(self) -> Option<Bytes> {
        match (self.more, self.first) {
            (Some(more), _) => Some(more.freeze()),
            (None, first) => first,
        }
    }

    fn finish(self, done: bool) -> Decoded {
        Decoded {
            data: self.into_bytes(),
            done,
        }
    }
}

#[cfg(test)]
mod tests;
