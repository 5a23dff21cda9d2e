//! An event stream rewritten event by event as it passes: each complete `data:`
//! payload goes to a translator, and whatever it writes is sent on at once. Nothing
//! is held back but an unfinished line. The inner body is always read to its end,
//! also after the translator is done, so an inner meter settles its row.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wire::sse::{SseLine, SseLineSplitter};

/// Rewrites one stream dialect into another, one event's data at a time.
pub trait SseTranslator {
    /// Feeds one event's `data:` payload, appending complete output events to `out`;
    /// answers false once the stream is over and no more input is wanted.
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool;
}

/// A body whose events are rewritten by `T` as they arrive.
pub struct TranslatedSse<B, T> {
    inner: B,
    translator: T,
    splitter: SseLineSplitter,
    over: bool,
}

impl<B, T> TranslatedSse<B, T> {
    /// Wraps `inner`.
    pub fn new(inner: B, translator: T) -> Self {
        TranslatedSse {
            inner,
            translator,
            splitter: SseLineSplitter::new(),
            over: false,
        }
    }
}

impl<B, T> Body for TranslatedSse<B, T>
where
    B: Body<Data = Bytes> + Unpin,
    T: SseTranslator + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Some(data) = frame.data_ref() else {
                continue; // trailers: nothing to translate
            };
            if this.over {
                continue; // the translated stream is complete; drain the rest
            }
            let mut out = Vec::new();
            let (translator, over) = (&mut this.translator, &mut this.over);
            this.splitter.feed(data, |line| {
                if let SseLine::Data(payload) = line {
                    if !*over && !translator.push(payload, &mut out) {
                        *over = true;
                    }
                }
            });
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Never before the inner body ended: hyper drops a body once this is true.
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use http_body_util::{BodyExt, StreamBody};

    struct Upper;
    impl SseTranslator for Upper {
        fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
            if data == b"stop" {
                return false;
            }
            out.extend_from_slice(b"data: ");
            out.extend(data.iter().map(u8::to_ascii_uppercase));
            out.extend_from_slice(b"\n\n");
            true
        }
    }

    #[tokio::test]
    async fn rewrites_each_event_and_stops_when_told() {
        let pieces: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = [
            "event: x\ndata: a",
            "b\n\n",
            "data: c\n\ndata: stop\n\ndata: d\n\n",
        ]
        .into_iter()
        .map(|p| Ok(Frame::data(Bytes::from(p))))
        .collect();
        let body = TranslatedSse::new(StreamBody::new(futures_util::stream::iter(pieces)), Upper);
        let out = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        assert_eq!(&out[..], b"data: AB\n\ndata: C\n\n");
    }

    /// An inner body that records whether it was read to its end.
    struct Counted(std::vec::IntoIter<&'static str>, Arc<AtomicBool>);

    impl Body for Counted {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.next() {
                Some(p) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(p))))),
                None => {
                    self.1.store(true, Ordering::SeqCst);
                    Poll::Ready(None)
                }
            }
        }
    }

    #[tokio::test]
    async fn the_inner_body_is_read_to_its_end_after_the_translator_is_done() {
        let ended = Arc::new(AtomicBool::new(false));
        let pieces = vec!["data: a\n\ndata: stop\n\n", "data: late\n\n"];
        let mut body = TranslatedSse::new(Counted(pieces.into_iter(), ended.clone()), Upper);
        // Poll as hyper does: until the body says it has ended.
        while !body.is_end_stream() {
            if std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
                .await
                .is_none()
            {
                break;
            }
        }
        assert!(
            ended.load(Ordering::SeqCst),
            "inner body dropped before its end"
        );
    }
}
