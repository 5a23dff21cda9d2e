//! Server-sent-event framing: splits a byte stream that arrives in arbitrary pieces
//! into complete lines, keeping only the unfinished tail between pieces.

/// One complete line of an event stream.
#[derive(Debug, PartialEq, Eq)]
pub enum SseLine<'a> {
    /// A `data:` field (leading space removed).
    Data(&'a [u8]),
    /// An empty line: the end of an event.
    EventEnd,
    /// Any other field or comment.
    Other(&'a [u8]),
}

/// Incremental line splitter for `text/event-stream` bodies.
#[derive(Debug, Default)]
pub struct SseLineSplitter {
    tail: Vec<u8>,
}

impl SseLineSplitter {
    /// A splitter with no pending bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one piece of the stream and calls `on_line` for every line it completes.
    pub fn feed(&mut self, piece: &[u8], mut on_line: impl FnMut(SseLine<'_>)) {
        let mut rest = piece;
        if !self.tail.is_empty() {
            match memchr_newline(rest) {
                None => {
                    self.tail.extend_from_slice(rest);
                    return;
                }
                Some(i) => {
                    self.tail.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    let line = std::mem::take(&mut self.tail);
                    on_line(classify(&line));
                }
            }
        }
        while let Some(i) = memchr_newline(rest) {
            on_line(classify(&rest[..=i]));
            rest = &rest[i + 1..];
        }
        self.tail.extend_from_slice(rest);
    }

    /// Bytes of an unfinished last line, if the stream ended without a newline.
    pub fn pending(&self) -> &[u8] {
        &self.tail
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn classify(line: &[u8]) -> SseLine<'_> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return SseLine::EventEnd;
    }
    match line.strip_prefix(b"data:") {
        Some(data) => SseLine::Data(data.strip_prefix(b" ").unwrap_or(data)),
        None => SseLine::Other(line),
    }
}

/// Formats one `data:` event.
pub fn data_event(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    out
}

/// The terminator OpenAI streams end with.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(pieces: &[&[u8]]) -> Vec<String> {
        let mut s = SseLineSplitter::new();
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, |l| {
                out.push(match l {
                    SseLine::Data(d) => format!("D:{}", String::from_utf8_lossy(d)),
                    SseLine::EventEnd => "END".to_owned(),
                    SseLine::Other(o) => format!("O:{}", String::from_utf8_lossy(o)),
                })
            });
        }
        out
    }

    #[test]
    fn splits_lines_across_pieces() {
        let out = collect(&[b"data: {\"a\"", b":1}\n\n: ping\r\ndata:[DONE]\n", b"\n"]);
        assert_eq!(
            out,
            vec!["D:{\"a\":1}", "END", "O:: ping", "D:[DONE]", "END"]
        );
    }

    #[test]
    fn keeps_unfinished_tail() {
        let mut s = SseLineSplitter::new();
        s.feed(b"data: x", |_| panic!("no complete line yet"));
        assert_eq!(s.pending(), b"data: x");
    }

    #[test]
    fn formats_events() {
        assert_eq!(data_event(b"{}"), b"data: {}\n\n".to_vec());
    }
}
