//! HTTP/1.1 on the wire (RFC 9112), as pure functions over byte buffers, for both
//! ends the gateway speaks: [`client`] (the provider client's request head and the
//! response head it reads), [`server`] (the request head a client sends and the
//! response head the gateway writes), and [`body`] (bodies framed by `content-length`,
//! `chunked`, or the end of the connection). [`crate::providers::origin`] and
//! [`crate::http::server`] do the I/O, with the one write helper they share in [`io`].

pub mod body;
pub mod client;
pub mod io;
pub mod server;

pub use body::{BodyDecoder, Decoded, Framing, Joined};
pub use client::{encode_request, parse_head, Fields, Head};

/// The largest head read (a response head by the client, a request head by the
/// server), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// What is wrong with an answer's bytes (or with any chunked body).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum H1Error {
    /// The status line or a header line is not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The head did not end within [`MAX_HEAD`] bytes.
    #[error("the response head is longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// `content-length` is not one number (or several equal ones).
    #[error("invalid content-length in the response")]
    ContentLength,
    /// The chunked body breaks the chunked coding.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// Where each header field's name and value are in a head that starts at `base`, as
/// byte offsets (a head is refused long before 4 GiB): once the head is split off
/// its buffer, its values can be slices of it.
fn field_spans(base: *const u8, fields: &[httparse::Header<'_>], out: &mut [[u32; 4]]) {
    let offset = |ptr: *const u8| (ptr as usize - base as usize) as u32;
    for (span, field) in out.iter_mut().zip(fields) {
        let name = offset(field.name.as_ptr());
        let value = offset(field.value.as_ptr());
        *span = [
            name,
            name + field.name.len() as u32,
            value,
            value + field.value.len() as u32,
        ];
    }
}

/// True when the last coding of a `transfer-encoding` value is `chunked`.
fn chunked_is_final(transfer_encoding: &[u8]) -> bool {
    let last = transfer_encoding.rsplit(|&b| b == b',').next();
    last.is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The length the `content-length` values say: `Ok(None)` without one, `Err` when a
/// value is not a number or they disagree (lists of equal numbers are one length).
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, ()> {
    let mut length: Option<u64> = None;
    for value in values {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(())?;
            if length.is_some_and(|seen| seen != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Whether a message lets its connection carry another one: HTTP/1.1 unless a
/// `connection` value says `close`, HTTP/1.0 only when one says `keep-alive`.
fn keeps_alive<'a>(version: http::Version, connection: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut keep = version == http::Version::HTTP_11;
    for value in connection {
        for token in value.split(|&b| b == b',') {
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

#[cfg(test)]
mod tests;
