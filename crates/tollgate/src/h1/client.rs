//! The provider client's side: the request head it writes and the response head it
//! reads.

use std::io::Write;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Method, StatusCode, Version};

use super::{
    chunked_is_final, content_length, field_spans, keeps_alive, Framing, H1Error, MAX_HEAD,
};

/// The most header fields read in a response head.
const MAX_HEADERS: usize = 100;

/// Writes a request head into `out`: request line, `host` unless `headers` has one,
/// the headers and then the `credential` field, when there is one (framing headers
/// are the client's: `content-length` is written from `body_len`), and the blank line.
pub fn encode_request(
    method: &Method,
    target: &str,
    headers: &[(HeaderName, HeaderValue)],
    credential: Option<(&HeaderName, &HeaderValue)>,
    host: &HeaderValue,
    body_len: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.iter().any(|(name, _)| name == HOST) {
        line(out, HOST.as_str().as_bytes(), host.as_bytes());
    }
    for (name, value) in headers.iter().map(|(n, v)| (n, v)).chain(credential) {
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

/// A response head's fields as slices of its bytes. No map is built: an answer is
/// asked for a handful of fields, which a scan of its dozen finds sooner than a map
/// is filled.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    head: Bytes,
    /// Where each field's name and value are in `head`.
    spans: Vec<[u32; 4]>,
}

impl Fields {
    /// The fields, in order: name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|&[name, name_end, value, value_end]| {
                (
                    &self.head[name as usize..name_end as usize],
                    &self.head[value as usize..value_end as usize],
                )
            })
    }

    /// Where the values of the field `name` are (ASCII, matched without regard to
    /// case): start and end in the head.
    fn value_spans<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.spans
            .iter()
            .filter(move |[n, n_end, _, _]| {
                self.head[*n as usize..*n_end as usize].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|&[_, _, value, value_end]| (value as usize, value_end as usize))
    }

    /// Every value of the field `name`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.value_spans(name)
            .map(|(start, end)| &self.head[start..end])
    }

    /// The first value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let (start, end) = self.value_spans(name).next()?;
        Some(&self.head[start..end])
    }

    /// The first value of `name` as text, trimmed; `None` when absent or not UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.get(name)?).ok().map(str::trim)
    }

    /// The first value of `name` as a header value sharing the head's bytes.
    pub fn value(&self, name: &str) -> Option<HeaderValue> {
        let (start, end) = self.value_spans(name).next()?;
        HeaderValue::from_maybe_shared(self.head.slice(start..end)).ok()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: Fields,
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
        let mut spans = vec![[0u32; 4]; response.headers.len()];
        field_spans(buf.as_ptr(), response.headers, &mut spans);
        let headers = Fields {
            head: buf.split_to(len).freeze(),
            spans,
        };
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

/// The body's framing (RFC 9112 §6.3).
fn framing(status: StatusCode, headers: &Fields, head_request: bool) -> Result<Framing, H1Error> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if let Some(last) = headers.get_all(TRANSFER_ENCODING.as_str()).last() {
        return Ok(if chunked_is_final(last) {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let length = content_length(headers.get_all(CONTENT_LENGTH.as_str()))
        .map_err(|()| H1Error::ContentLength)?;
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether the server lets the connection carry another request.
fn keep_alive(version: Version, headers: &Fields) -> bool {
    keeps_alive(version, headers.get_all(CONNECTION.as_str()))
}
