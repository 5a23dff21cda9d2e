//! HTTP/1.1 on the wire (RFC 9112), as pure functions over byte buffers, for both
//! ends the gateway speaks: [`client`] (the provider client's request head and the
//! response head it reads), [`server`] (the request head a client sends and the
//! response head the gateway writes), and [`body`] (bodies framed by `content-length`,
//! `chunked`, or the end of the connection). [`crate::providers::origin`] and
//! [`crate::http::server`] do the I/O.

pub mod body;
pub mod client;
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

#[cfg(test)]
mod tests;
