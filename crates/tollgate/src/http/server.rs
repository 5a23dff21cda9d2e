//! The HTTP/1.1 server: accept connections, read each request off its connection, hand
//! it to the service, write the answer back; shut down gracefully (stop accepting, let
//! in-flight requests finish within the grace period). The wire format is
//! [`crate::h1::server`]'s; this module does the I/O.
//!
//! Each connection is one task that reads a request head, reads the whole body (the
//! handlers read every body whole anyway; at most [`ServerLimits::max_body`] plus one
//! byte is buffered, so a handler can still refuse a larger one), calls the service
//! and writes the answer: a whole body goes out with its head in one write, a stream
//! frame by frame as each arrives (chunked). There is no channel, dispatcher task or
//! per-request boxing between the socket and the service.

use std::convert::Infallible;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use bytes::BytesMut;
use futures_util::FutureExt;
use http::{Method, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::h1::io::write_all;
use crate::h1::server::{
    chunk_start, encode_response, parse_request, RequestError, RequestHead, ResponseFraming,
    CONTINUE, LAST_CHUNK,
};
use crate::h1::{BodyDecoder, Framing, Joined};

/// Room made in a connection's read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// How long a connection closed with request bytes unread keeps reading (and
/// discarding) them, so that the client gets the answer rather than a reset.
const LINGER: Duration = Duration::from_secs(2);

/// Header lines a response carries already encoded (`name: value` and CRLF each),
/// which the server writes into its head after the map's fields. The answer to
/// every relayed call has up to ten such fields (its limit headers): as one block
/// they cost no allocation, check and hash each in the map.
#[derive(Debug, Clone)]
pub struct EncodedHeaders(pub bytes::Bytes);

/// What the server holds per request.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// The largest request body read: a larger one reaches the service cut to this
    /// plus one byte (or, when its `content-length` says so, unread), for the handler
    /// to refuse.
    pub max_body: usize,
}

/// Serves `service` on `listener` until `stop`; then waits up to `grace` for the
/// connections' in-flight requests to finish.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    stop: CancellationToken,
    grace: Duration,
    limits: ServerLimits,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let connections = TaskTracker::new();
    // Set when the server stops: what a connection reads after each answer (the
    // token's own check takes a lock).
    let stopping = Arc::new(AtomicBool::new(false));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => {
                stopping.store(true, Ordering::Relaxed);
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Every SSE event is its own write: without TCP_NODELAY each would wait for
        // the client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            io: stream,
            peer,
            read: BytesMut::new(),
            head: Vec::new(),
            chunk: Vec::new(),
            service: service.clone(),
            limits,
        };
        connections.spawn(connection.run(stop.clone(), stopping.clone()));
    }
    drop(listener);
    connections.close();
    tokio::select! {
        _ = connections.wait() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace_s = grace.as_secs(), "shutdown grace period over; closing the remaining connections");
        }
    }
}

/// One client connection and the service its requests go to.
struct Connection<S> {
    io: TcpStream,
    peer: SocketAddr,
    /// Bytes read and not yet used (the start of the next request, when pipelined).
    read: BytesMut,
    /// The response head being written (kept to reuse its allocation).
    head: Vec<u8>,
    /// A chunk-size line being written.
    chunk: Vec<u8>,
    service: S,
    limits: ServerLimits,
}

/// Why a connection ends early.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("invalid chunked request body: {0}")]
    Body(#[from] crate::h1::H1Error),
    #[error("the connection closed in the middle of a request")]
    Incomplete,
    #[error("the response body failed: {0}")]
    ResponseBody(axum::Error),
    #[error("the response body does not have the length it announced")]
    ResponseLength,
}

impl<S> Connection<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    /// Serves the connection's requests one after another until it closes.
    async fn run(mut self, stop: CancellationToken, stopping: Arc<AtomicBool>) {
        // One wait for the stop signal for the connection's whole life (registering a
        // new one for every request costs a lock each time).
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        let result = self.serve_requests(&stopping, stopped).await;
        let unread = match result {
            Ok(unread) => unread,
            Err(ConnectionError::Request(e)) => {
                // A head that cannot be read: answer how, and close.
                let status = e.status();
                tracing::debug!(peer = %self.peer, error = %e, "refused a request head");
                let answer = format!(
                    "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    status.as_str(),
                    status.canonical_reason().unwrap_or("")
                );
                if self.io.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                true
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                return;
            }
        };
        if unread {
            self.linger().await;
        }
    }

    /// Answers requests until the connection is to close; whether request bytes were
    /// left unread.
    async fn serve_requests(
        &mut self,
        stopping: &AtomicBool,
        mut stopped: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Result<bool, ConnectionError> {
        loop {
            let Some(head) = self.read_head(stopped.as_mut()).await? else {
                return Ok(false);
            };
            let (body, body_read) = self.read_body(&head).await?;
            let head_request = head.method == Method::HEAD;
            let version = head.version;
            let keep_alive = head.keep_alive;
            let request = self.request(head, body);
            std::future::poll_fn(|cx| self.service.poll_ready(cx))
                .await
                .unwrap_or_else(|never| match never {});
            let response = match self.service.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let close = !keep_alive || !body_read || stopping.load(Ordering::Relaxed);
            let close = self
                .write_response(response, head_request, version, close)
                .await?;
            if close {
                return Ok(!body_read);
            }
        }
    }

    /// Reads the next request head; `None` when the client closed the connection (or
    /// the server is stopping) between requests.
    async fn read_head(
        &mut self,
        mut stopped: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Result<Option<RequestHead>, ConnectionError> {
        loop {
            if !self.read.is_empty() {
                if let Some(head) = parse_request(&mut self.read)? {
                    return Ok(Some(head));
                }
            }
            self.read.reserve(READ_CHUNK);
            let read = if self.read.is_empty() {
                // Idle between requests: a stopping server closes the connection. The
                // read goes first: when the next request wakes the task, the stop
                // signal's wait (a lock each time) is not polled again.
                tokio::select! {
                    biased;
                    read = self.io.read_buf(&mut self.read) => read?,
                    () = stopped.as_mut() => return Ok(None),
                }
            } else {
                self.io.read_buf(&mut self.read).await?
            };
            if read == 0 {
                return if self.read.iter().all(|b| b.is_ascii_whitespace()) {
                    Ok(None)
                } else {
                    Err(ConnectionError::Incomplete)
                };
            }
        }
    }

    /// Reads the request's body, at most `max_body` + 1 bytes of it; answers it and
    /// whether all of it was read.
    async fn read_body(&mut self, head: &RequestHead) -> Result<(Body, bool), ConnectionError> {
        let max = self.limits.max_body;
        match head.body {
            Framing::Length(0) => Ok((Body::empty(), true)),
            // Not read at all: the handler refuses it by its declared length.
            Framing::Length(n) if n > max as u64 => Ok((Body::empty(), false)),
            Framing::Length(n) => {
                let n = n as usize;
                if head.expect_continue && self.read.len() < n {
                    self.io.write_all(CONTINUE).await?;
                }
                while self.read.len() < n {
                    self.read.reserve(n - self.read.len());
                    if self.io.read_buf(&mut self.read).await? == 0 {
                        return Err(ConnectionError::Incomplete);
                    }
                }
                Ok((Body::from(self.read.split_to(n).freeze()), true))
            }
            // (`UntilClose` frames responses only: a request head never has it.)
            Framing::Chunked | Framing::UntilClose => {
                if head.expect_continue && self.read.is_empty() {
                    self.io.write_all(CONTINUE).await?;
                }
                let mut decoder = BodyDecoder::new(Framing::Chunked);
                let mut whole = Joined::default();
                loop {
                    let decoded = decoder.decode(&mut self.read, max + 1 - whole.len())?;
                    if let Some(data) = decoded.data {
                        whole.push(data);
                    }
                    if decoded.done {
                        let body = whole.into_bytes().map_or_else(Body::empty, Body::from);
                        return Ok((body, true));
                    }
                    if whole.len() > max {
                        let mut over = whole.into_bytes().unwrap_or_default();
                        over.truncate(max + 1);
                        return Ok((Body::from(over), false));
                    }
                    self.read.reserve(READ_CHUNK);
                    if self.io.read_buf(&mut self.read).await? == 0 {
                        return Err(ConnectionError::Incomplete);
                    }
                }
            }
        }
    }

    /// The request the service gets.
    fn request(&self, head: RequestHead, body: Body) -> Request {
        let mut request = Request::new(body);
        *request.method_mut() = head.method;
        *request.uri_mut() = head.uri;
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers;
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request
    }

    /// Writes the answer: a body that is ready goes out with the head in one write, a
    /// stream frame by frame as each arrives. Answers whether the connection closes.
    async fn write_response(
        &mut self,
        response: Response,
        head_request: bool,
        version: Version,
        close: bool,
    ) -> Result<bool, ConnectionError> {
        let (parts, mut body) = response.into_parts();
        let framing = ResponseFraming::of(parts.status, body.size_hint().exact(), version);
        let close = close || framing == ResponseFraming::UntilClose;
        self.head.clear();
        let encoded = parts.extensions.get::<EncodedHeaders>();
        encode_response(
            parts.status,
            &parts.headers,
            encoded.map_or(&b""[..], |e| &e.0[..]),
            framing,
            version,
            close,
            &mut self.head,
        );
        if head_request || framing == ResponseFraming::None {
            self.io.write_all(&self.head).await?;
            return Ok(close);
        }
        let mut head_sent = false;
        let mut sent: u64 = 0;
        loop {
            let frame = if head_sent {
                body.frame().await
            } else if let Some(frame) = body.frame().now_or_never() {
                frame
            } else {
                // The body is not ready: the head goes now (a stream's client sees
                // the answer begin), the body as it comes.
                self.io.write_all(&self.head).await?;
                head_sent = true;
                continue;
            };
            let data = match frame {
                None => {
                    if matches!(framing, ResponseFraming::Length(n) if n != sent) {
                        return Err(ConnectionError::ResponseLength);
                    }
                    let last: &[u8] = match framing {
                        ResponseFraming::Chunked => LAST_CHUNK,
                        _ => b"",
                    };
                    let head: &[u8] = if head_sent { b"" } else { &self.head };
                    write_all(&mut self.io, &mut [IoSlice::new(head), IoSlice::new(last)]).await?;
                    return Ok(close);
                }
                Some(Err(e)) => return Err(ConnectionError::ResponseBody(e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue, // trailers, or nothing
                },
            };
            sent += data.len() as u64;
            if matches!(framing, ResponseFraming::Length(n) if sent > n) {
                return Err(ConnectionError::ResponseLength);
            }
            let end = body.is_end_stream();
            let chunked = framing == ResponseFraming::Chunked;
            self.chunk.clear();
            if chunked {
                chunk_start(data.len(), &mut self.chunk);
            }
            let head: &[u8] = if head_sent { b"" } else { &self.head };
            let after: &[u8] = match (chunked, end) {
                (true, true) => b"\r\n0\r\n\r\n",
                (true, false) => b"\r\n",
                (false, _) => b"",
            };
            let mut parts = [
                IoSlice::new(head),
                IoSlice::new(&self.chunk),
                IoSlice::new(&data),
                IoSlice::new(after),
            ];
            write_all(&mut self.io, &mut parts).await?;
            head_sent = true;
            if end {
                if matches!(framing, ResponseFraming::Length(n) if n != sent) {
                    return Err(ConnectionError::ResponseLength);
                }
                return Ok(close);
            }
        }
    }

    /// Closes after an answer while request bytes are still coming: the write side
    /// first, then whatever arrives is read and dropped for a moment, so that the
    /// client reads the answer instead of a reset.
    async fn linger(&mut self) {
        if self.io.shutdown().await.is_err() {
            return;
        }
        let drain = async {
            loop {
                self.read.clear();
                self.read.reserve(READ_CHUNK);
                match self.io.read_buf(&mut self.read).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::{parse_head, Head};
    use bytes::Bytes;
    use http::StatusCode;
    use std::net::SocketAddr;

    /// A test service: `/echo` answers the body it got (and the client's address in
    /// `x-peer`), `/stream` three frames 20 ms apart, `/limit` 413 when the declared
    /// length is over 1 KiB, anything else `hello`.
    async fn answer(request: Request) -> Result<Response, Infallible> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let response = match request.uri().path() {
            "/echo" => {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                let mut response = Response::new(Body::from(body));
                response
                    .headers_mut()
                    .insert("x-peer", peer.parse().expect("value"));
                response
            }
            "/stream" => {
                let frames = futures_util::stream::unfold(0, |n| async move {
                    if n == 3 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((
                        Ok::<_, Infallible>(Bytes::from(format!("event {n}\n"))),
                        n + 1,
                    ))
                });
                Response::new(Body::from_stream(frames))
            }
            "/limit" if declared.is_some_and(|n| n > 1024) => {
                let mut response = Response::new(Body::from("too large"));
                *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                response
            }
            _ => Response::new(Body::from("hello")),
        };
        Ok(response)
    }

    struct Server {
        addr: SocketAddr,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(max_body: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let service = tower::service_fn(answer);
        let limits = ServerLimits { max_body };
        let task = tokio::spawn(serve(
            listener,
            service,
            stop.clone(),
            Duration::from_secs(5),
            limits,
        ));
        Server { addr, stop, task }
    }

    /// Reads one response off `io` (`head_request`: it has no body); the body is
    /// decoded from its framing.
    async fn response(
        io: &mut TcpStream,
        buf: &mut BytesMut,
        head_request: bool,
    ) -> (Head, Vec<u8>) {
        let head = loop {
            if let Some(head) = parse_head(buf, head_request).expect("valid head") {
                if head.status != StatusCode::CONTINUE {
                    break head;
                }
            }
            buf.reserve(4096);
            assert!(
                io.read_buf(buf).await.expect("read") > 0,
                "closed before the head"
            );
        };
        let mut decoder = BodyDecoder::new(head.framing);
        let mut body = Vec::new();
        loop {
            let decoded = decoder.decode(buf, usize::MAX).expect("valid body");
            if let Some(data) = decoded.data {
                body.extend_from_slice(&data);
            }
            if decoded.done {
                return (head, body);
            }
            buf.reserve(4096);
            if io.read_buf(buf).await.expect("read") == 0 {
                assert!(decoder.closed(), "closed in the middle of the body");
                return (head, body);
            }
        }
    }

    /// True when the server closes the connection (after what was already read).
    async fn closes(io: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), io.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }

    #[tokio::test]
    async fn keep_alive_and_pipelined_requests_are_answered_in_order() {
        let server = start(1024).await;
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        // Two requests in one write, then a third on the same connection.
        io.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo")
            .await
            .expect("write");
        let mut buf = BytesMut::new();
        for expected in [&b"one"[..], b"two"] {
            let (head, body) = response(&mut io, &mut buf, false).await;
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(body, expected);
            assert!(head.keep_alive);
            assert!(head.headers.get("date").is_some());
            let peer = head.headers.text("x-peer").expect("x-peer").to_owned();
            assert_eq!(peer, io.local_addr().expect("addr").to_string());
        }
        io.write_all(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let (_, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(body, b"hello");
        server.stop.cancel();
        assert!(closes(&mut io).await, "an idle connection closes on stop");
        server.task.await.expect("server ends");
    }

    #[tokio::test]
    async fn chunked_and_expect_continue_bodies_are_read() {
        let server = start(1024).await;
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = BytesMut::new();
        let (_, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(body, b"abcdefg");
        // Expect: 100-continue: the interim answer comes before the body is sent.
        io.write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        )
        .await
        .expect("write");
        let mut interim = vec![0u8; CONTINUE.len()];
        io.read_exact(&mut interim).await.expect("100 Continue");
        assert_eq!(interim, CONTINUE);
        io.write_all(b"ok").await.expect("write");
        let (_, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(body, b"ok");
    }

    #[tokio::test]
    async fn a_stream_is_chunked_and_its_head_goes_before_its_first_frame() {
        let server = start(1024).await;
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let mut buf = BytesMut::new();
        // The head alone arrives first: the body's first frame is 20 ms away.
        let head = loop {
            buf.reserve(4096);
            assert!(io.read_buf(&mut buf).await.expect("read") > 0);
            if let Some(head) = parse_head(&mut buf, false).expect("valid head") {
                break head;
            }
        };
        assert_eq!(head.headers.text("transfer-encoding"), Some("chunked"));
        assert!(buf.is_empty(), "no body yet");
        let mut decoder = BodyDecoder::new(head.framing);
        let mut body = Vec::new();
        while !decoder.is_done() {
            buf.reserve(4096);
            assert!(io.read_buf(&mut buf).await.expect("read") > 0);
            if let Some(data) = decoder.decode(&mut buf, usize::MAX).expect("chunked").data {
                body.extend_from_slice(&data);
            }
        }
        assert_eq!(body, b"event 0\nevent 1\nevent 2\n");
        // An HTTP/1.0 client gets the stream until the connection closes.
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"GET /stream HTTP/1.0\r\n\r\n")
            .await
            .expect("write");
        let mut buf = BytesMut::new();
        let (head, body) = response(&mut io, &mut buf, false).await;
        assert!(head.headers.get("transfer-encoding").is_none());
        assert_eq!(body, b"event 0\nevent 1\nevent 2\n");
    }

    #[tokio::test]
    async fn head_requests_get_the_length_and_no_body() {
        let server = start(1024).await;
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(
            b"HEAD /other HTTP/1.1\r\nHost: t\r\n\r\nGET /other HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await
        .expect("write");
        let mut buf = BytesMut::new();
        let (head, body) = response(&mut io, &mut buf, true).await;
        assert_eq!(head.headers.text("content-length"), Some("5"));
        assert!(body.is_empty());
        let (_, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(
            body, b"hello",
            "the next answer starts right after the head"
        );
    }

    #[tokio::test]
    async fn http_1_0_closes_unless_kept_alive() {
        let server = start(1024).await;
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"GET /other HTTP/1.0\r\n\r\n")
            .await
            .expect("write");
        let mut buf = BytesMut::new();
        let (head, _) = response(&mut io, &mut buf, false).await;
        assert_eq!(head.headers.text("connection"), Some("close"));
        assert!(closes(&mut io).await);
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"GET /other HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("write");
        let (head, _) = response(&mut io, &mut buf, false).await;
        assert_eq!(head.headers.text("connection"), Some("keep-alive"));
        io.write_all(b"GET /other HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("write");
        let (_, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(body, b"hello");
    }

    #[tokio::test]
    async fn bad_heads_are_answered_and_closed() {
        let server = start(1024).await;
        for (wire, status) in [
            (&b"GARBAGE\r\n\r\n"[..], StatusCode::BAD_REQUEST),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let mut io = TcpStream::connect(server.addr).await.expect("connect");
            io.write_all(wire).await.expect("write");
            let mut buf = BytesMut::new();
            let (head, _) = response(&mut io, &mut buf, false).await;
            assert_eq!(head.status, status);
            assert!(closes(&mut io).await);
        }
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        let huge = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(70 * 1024));
        let _ = io.write_all(huge.as_bytes()).await;
        let mut buf = BytesMut::new();
        let (head, _) = response(&mut io, &mut buf, false).await;
        assert_eq!(head.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_the_client_reads_the_answer() {
        let server = start(1024).await;
        // Declared too large: not read; the answer comes while the client still sends.
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        io.write_all(b"POST /limit HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
            .await
            .expect("write");
        let _ = io.write_all(&vec![b'x'; 200_000]).await;
        let mut buf = BytesMut::new();
        let (head, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(head.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body, b"too large");
        assert_eq!(head.headers.text("connection"), Some("close"));
        // Chunked past the limit: the service gets the limit plus one byte.
        let mut io = TcpStream::connect(server.addr).await.expect("connect");
        let chunk = format!("800\r\n{}\r\n", "y".repeat(0x800));
        io.write_all(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}")
                .as_bytes(),
        )
        .await
        .expect("write");
        let mut buf = BytesMut::new();
        let (head, body) = response(&mut io, &mut buf, false).await;
        assert_eq!(body.len(), 1025);
        assert_eq!(head.headers.text("connection"), Some("close"));
    }
}
