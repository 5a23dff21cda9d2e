//! Message bodies on the wire: how one is delimited, and reading it out of a
//! connection's buffer as it arrives.

use bytes::{Buf, Bytes, BytesMut};

use super::H1Error;

/// The longest chunk-size line (with its extensions), in bytes.
pub(super) const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The largest trailer section skipped after a chunked body, in bytes.
const MAX_TRAILERS: usize = 64 * 1024;

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `content-length` bytes (none at all for 0: also a response to HEAD, a 204 or a
    /// 304, and a request without either framing header).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection (responses only).
    UntilClose,
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
