//! Metering a call: [`CallMeter`] guarantees exactly one usage row per call, whatever
//! path the call takes (success, error, or a client that hangs up), and
//! [`MeteredBody`] relays a stream frame by frame while reading its usage.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wire::openai::{is_usage_only_chunk, peek_usage, Usage};
use wire::sse::{SseLine, SseLineSplitter};

use super::{Prices, UsageRow, UsageSink};
use crate::admission::{Actual, Admission, Ticket};
use crate::pool::Lease;

/// Status logged for a call whose client went away before it finished.
pub const CLIENT_CLOSED: u16 = 499;

/// Owns a call's usage row until the call ends; records it exactly once.
#[derive(Debug)]
pub struct CallMeter {
    row: UsageRow,
    prices: Prices,
    started: Instant,
    sink: Arc<UsageSink>,
    first_byte: Option<Instant>,
    /// The upstream key's reservation, settled with the real usage.
    lease: Option<Lease>,
    /// The caller's admission, settled with the real usage.
    admitted: Option<(Arc<Admission>, Ticket)>,
    /// The prompt tokens counted at admission, for answers that report no usage.
    prompt_estimate: u64,
    recorded: bool,
}

impl CallMeter {
    /// Starts metering; `row` carries what is known at admission.
    pub fn start(row: UsageRow, started: Instant, sink: Arc<UsageSink>) -> Self {
        CallMeter {
            row,
            prices: Prices::default(),
            started,
            sink,
            first_byte: None,
            lease: None,
            admitted: None,
            prompt_estimate: 0,
            recorded: false,
        }
    }

    /// The row being built, for the route and pool to fill in.
    pub fn row_mut(&mut self) -> &mut UsageRow {
        &mut self.row
    }

    /// Sets the prices of the model that serves the call.
    pub fn set_prices(&mut self, prices: Prices) {
        self.prices = prices;
    }

    /// Keeps the upstream key's lease until the usage is known.
    pub fn hold_lease(&mut self, lease: Lease) {
        self.lease = Some(lease);
    }

    /// Keeps the caller's admission ticket until the usage is known; `prompt_tokens`
    /// is the prompt as counted at admission.
    pub fn hold_ticket(&mut self, admission: Arc<Admission>, ticket: Ticket, prompt_tokens: u64) {
        self.admitted = Some((admission, ticket));
        self.prompt_estimate = prompt_tokens;
    }

    /// Usage for an answer that reported none: the counted prompt and the counted
    /// answer, marked as estimated on the row.
    pub fn estimate_usage(&mut self, completion_tokens: u64) -> Usage {
        self.row.usage_estimated = true;
        Usage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens,
            total_tokens: self.prompt_estimate + completion_tokens,
        }
    }

    /// Marks the first response byte from the upstream.
    pub fn first_byte(&mut self) {
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
    }

    /// Records the call's outcome.
    pub fn finish(mut self, status: u16, error_type: Option<&'static str>, usage: Option<Usage>) {
        self.record(status, error_type, usage);
    }

    fn record(&mut self, status: u16, error_type: Option<&'static str>, usage: Option<Usage>) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let now = Instant::now();
        let mut row = std::mem::take(&mut self.row);
        row.status = status;
        row.error_type = error_type.map(Cow::Borrowed);
        row.latency_ms = now.duration_since(self.started).as_millis() as i64;
        row.ttfb_ms = self
            .first_byte
            .map(|t| t.duration_since(self.started).as_millis() as i64);
        if let Some(u) = usage {
            row.prompt_tokens = u.prompt_tokens;
            row.completion_tokens = u.completion_tokens;
        }
        row.cost_nanos = self
            .prices
            .cost_nanos(row.prompt_tokens, row.completion_tokens);
        if let Some(lease) = self.lease.take() {
            lease.settle(row.prompt_tokens + row.completion_tokens, row.cost_nanos);
        }
        if let Some((admission, ticket)) = self.admitted.take() {
            let actual = Actual {
                prompt_tokens: row.prompt_tokens,
                completion_tokens: row.completion_tokens,
                cost_nanos: row.cost_nanos,
            };
            admission.settle(&ticket, actual);
        }
        self.sink.record(row);
    }
}

impl Drop for CallMeter {
    fn drop(&mut self) {
        self.record(CLIENT_CLOSED, Some("client_closed"), None);
    }
}

/// A relayed event stream: every upstream frame goes to the client as it arrives,
/// while the final usage chunk is read (and removed when the gateway, not the
/// client, asked for it).
pub struct MeteredBody<B> {
    inner: B,
    meter: Option<CallMeter>,
    splitter: SseLineSplitter,
    usage: Option<Usage>,
    strip_usage_chunk: bool,
    skip_event_end: bool,
    /// The frames relayed so far (shared, not copied), counted only if the stream
    /// ends without a usage chunk; dropped past [`RETAIN_LIMIT`] bytes.
    seen: Vec<Bytes>,
    seen_bytes: usize,
}

/// The most stream bytes kept for counting an answer that reports no usage; past it
/// the answer is estimated from its size.
const RETAIN_LIMIT: usize = 4 << 20;

impl<B> MeteredBody<B> {
    /// Wraps an upstream stream body. With `strip_usage_chunk`, the usage-only chunk
    /// is consumed instead of relayed.
    pub fn new(inner: B, meter: CallMeter, strip_usage_chunk: bool) -> Self {
        MeteredBody {
            inner,
            meter: Some(meter),
            splitter: SseLineSplitter::new(),
            usage: None,
            strip_usage_chunk,
            skip_event_end: false,
            seen: Vec::new(),
            seen_bytes: 0,
        }
    }

    fn retain(&mut self, data: &Bytes) {
        self.seen_bytes += data.len();
        if self.seen_bytes <= RETAIN_LIMIT {
            self.seen.push(data.clone());
        } else {
            self.seen = Vec::new();
        }
    }

    /// The stream's usage: reported, else counted from what was relayed.
    fn usage_or_estimate(&mut self, meter: &mut CallMeter) -> Usage {
        if let Some(usage) = self.usage {
            return usage;
        }
        let completion = if self.seen_bytes <= RETAIN_LIMIT {
            let text: Vec<u8> = self.seen.concat();
            wire::openai::count_stream_answer_tokens(&text)
        } else {
            self.seen_bytes as u64 / 16
        };
        meter.estimate_usage(completion)
    }

    fn observe(&mut self, data: &[u8]) {
        let usage = &mut self.usage;
        self.splitter.feed(data, |line| {
            if let SseLine::Data(payload) = line {
                if mentions_usage(payload) {
                    if let Some(u) = peek_usage(payload) {
                        *usage = Some(u);
                    }
                }
            }
        });
    }

    fn filter(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let usage = &mut self.usage;
        let skip = &mut self.skip_event_end;
        self.splitter.feed(data, |line| match line {
            SseLine::Data(payload) => {
                if mentions_usage(payload) {
                    if let Some(u) = peek_usage(payload) {
                        *usage = Some(u);
                    }
                    if is_usage_only_chunk(payload) {
                        *skip = true;
                        return;
                    }
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(payload);
                out.push(b'\n');
            }
            SseLine::EventEnd => {
                if !std::mem::take(skip) {
                    out.push(b'\n');
                }
            }
            SseLine::Other(l) => {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
        });
        out
    }

    fn finish(&mut self, status: u16, error_type: Option<&'static str>) {
        if let Some(mut meter) = self.meter.take() {
            let usage = self.usage_or_estimate(&mut meter);
            meter.finish(status, error_type, Some(usage));
        }
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        // The client went away mid-stream: keep what was metered so far.
        if let Some(mut meter) = self.meter.take() {
            let usage = self.usage_or_estimate(&mut meter);
            meter.finish(CLIENT_CLOSED, Some("client_closed"), Some(usage));
        }
    }
}

fn mentions_usage(payload: &[u8]) -> bool {
    payload.windows(7).any(|w| w == b"\"usage\"")
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes> + Unpin,
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
                Poll::Ready(None) => {
                    if this.strip_usage_chunk && !this.splitter.pending().is_empty() {
                        let tail = this.splitter.pending().to_vec();
                        this.splitter = SseLineSplitter::new();
                        this.finish(200, None);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(tail)))));
                    }
                    this.finish(200, None);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish(200, Some("upstream_stream_broken"));
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Some(data) = frame.data_ref() else {
                return Poll::Ready(Some(Ok(frame)));
            };
            if let Some(meter) = this.meter.as_mut() {
                meter.first_byte();
            }
            if this.usage.is_none() {
                this.retain(data);
            }
            if this.strip_usage_chunk {
                let out = this.filter(data);
                if out.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
            this.observe(data);
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        // Only once the row is settled: hyper stops polling (and drops the body) as
        // soon as this is true, and the end must reach `poll_frame` first.
        self.meter.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn sink() -> (Arc<UsageSink>, crate::usage::queue::UsageQueue) {
        let (sink, queue) = UsageSink::new(16, None);
        (Arc::new(sink), queue)
    }

    type TestFrames = std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>;

    fn stream_of(parts: &[&'static str]) -> StreamBody<futures_util::stream::Iter<TestFrames>> {
        let frames: Vec<_> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    const USAGE: &str = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n";

    #[tokio::test]
    async fn relays_unchanged_and_reads_usage() {
        let (sink, mut rx) = sink();
        let meter = CallMeter::start(UsageRow::default(), Instant::now(), sink);
        let body = MeteredBody::new(
            stream_of(&[
                "data: {\"choices\":[{\"delta\":{}}]}\n",
                "\n",
                USAGE,
                "data: [DONE]\n\n",
            ]),
            meter,
            false,
        );
        let bytes = body.collect().await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("\"usage\""));
        let row = rx.recv().await.expect("row");
        assert_eq!(
            (row.status, row.prompt_tokens, row.completion_tokens),
            (200, 5, 7)
        );
        assert!(row.ttfb_ms.is_some());
    }

    #[tokio::test]
    async fn strips_the_usage_chunk_the_gateway_asked_for() {
        let (sink, mut rx) = sink();
        let meter = CallMeter::start(UsageRow::default(), Instant::now(), sink);
        let body = MeteredBody::new(
            stream_of(&[
                "data: {\"choices\":[{\"delta\":{}}]}\n\n",
                &USAGE[..40],
                &USAGE[40..],
                "data: [DONE]\n\n",
            ]),
            meter,
            true,
        );
        let text = String::from_utf8(body.collect().await.expect("body").to_bytes().to_vec())
            .expect("utf8");
        assert_eq!(
            text,
            "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(rx.recv().await.expect("row").completion_tokens, 7);
    }

    /// Polls like hyper does: stops (and drops the body) once `is_end_stream` says so.
    async fn drain_like_hyper<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Vec<u8> {
        let mut out = Vec::new();
        while !body.is_end_stream() {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    out.extend_from_slice(frame.data_ref().map(|d| &d[..]).unwrap_or_default())
                }
                _ => break,
            }
        }
        out
    }

    #[tokio::test]
    async fn a_body_that_ends_with_its_last_frame_is_settled_not_dropped() {
        let (sink, mut rx) = sink();
        let meter = CallMeter::start(UsageRow::default(), Instant::now(), sink);
        // `Full` reports end-of-stream as soon as its one frame is taken.
        let inner = http_body_util::Full::new(Bytes::from_static(USAGE.as_bytes()));
        let out = drain_like_hyper(MeteredBody::new(inner, meter, false)).await;
        assert_eq!(out, USAGE.as_bytes());
        let row = rx.recv().await.expect("row");
        assert_eq!((row.status, row.completion_tokens), (200, 7));
    }

    #[tokio::test]
    async fn a_dropped_call_is_still_recorded() {
        let (sink, mut rx) = sink();
        let meter = CallMeter::start(UsageRow::default(), Instant::now(), sink);
        drop(MeteredBody::new(stream_of(&["data: x\n\n"]), meter, false));
        let row = rx.recv().await.expect("row");
        assert_eq!(row.status, CLIENT_CLOSED);
        assert_eq!(row.error_type.as_deref(), Some("client_closed"));
    }
}
