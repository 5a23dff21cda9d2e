//! The HTTP/1.1 client of one provider: keep-alive connections to its one origin,
//! each used by one call at a time and driven by that call's task. The request goes
//! out in one write; the answer's head and body are read straight off the connection
//! ([`crate::h1`] parses them), and the connection goes back to the pool when the body
//! has ended. No task, channel or waker sits between the call and its socket (hyper's
//! client sends every request through a channel to the connection's dispatcher).

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::h1::{self, BodyDecoder, Fields, H1Error, Joined};

/// A connection as tokio reads and writes it: TCP, or TLS over TCP.
type Io = TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>;

/// Idle connections kept per origin at most.
const MAX_IDLE: usize = 1024;
/// The most body data handed out in one frame: what has already arrived is joined up
/// to this, so a burst of stream events goes to the client in one write.
const COALESCE_MAX: usize = 64 * 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// Why a request got no answer, or its body broke off.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// No connection could be opened (DNS, TCP, TLS, connect timeout).
    /// (The cause is the error's source, so that its own causes are reported too.)
    #[error("cannot connect")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not HTTP/1.x as RFC 9112 has it.
    #[error(transparent)]
    Protocol(#[from] H1Error),
    /// The server closed the connection before the answer was complete.
    #[error("the connection closed before the answer was complete")]
    Closed,
}

/// A request to the origin.
#[derive(Debug)]
pub struct OriginRequest<'a> {
    pub method: http::Method,
    /// The path and query.
    pub target: &'a str,
    /// Header fields (`host` is the client's unless given; framing is always its own).
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// The key's field (`authorization`, `x-api-key`), written after `headers`; none
    /// for a keyless server.
    pub credential: Option<(&'a HeaderName, &'a HeaderValue)>,
    pub body: Bytes,
}

/// An answer: its head, and its body as it arrives.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: Fields,
    pub body: ResponseBody,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// One origin's pooled HTTP/1.1 client (cheap to clone).
#[derive(Clone)]
pub struct OriginClient {
    shared: Arc<Shared>,
}

struct Shared {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority/`: what is connected to.
    origin: http::Uri,
    host: http::HeaderValue,
    /// Idle connections, oldest first (each is pushed when released).
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
}

/// A connection and what has been read from it but not yet used. Boxed wherever it
/// goes (pool, futures, bodies): moving it by value costs more than the box.
struct Conn {
    io: Io,
    read: BytesMut,
    /// The request head being written (kept to reuse its allocation).
    head: Vec<u8>,
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

impl std::fmt::Debug for OriginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginClient")
            .field("origin", &self.shared.origin)
            .finish()
    }
}

impl OriginClient {
    /// A client for the origin of `base_url` (its path is ignored).
    pub fn new(base_url: &http::Uri, connect_timeout: Duration) -> Result<Self, String> {
        Self::with_idle_timeout(base_url, connect_timeout, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(
        base_url: &http::Uri,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, String> {
        let scheme = base_url
            .scheme()
            .cloned()
            .unwrap_or(http::uri::Scheme::HTTP);
        let authority = base_url
            .authority()
            .cloned()
            .ok_or_else(|| format!("{base_url} names no host"))?;
        let host = http::HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("{base_url}: the host is not a header value: {e}"))?;
        let origin = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| format!("{base_url}: {e}"))?;
        let connector = super::client::connector(connect_timeout);
        Ok(OriginClient {
            shared: Arc::new(Shared {
                connector,
                origin,
                host,
                idle: Mutex::new(Vec::new()),
                idle_timeout,
            }),
        })
    }

    /// Sends `request` (the origin is this client's) and answers with the response
    /// head once it arrives. A request that an idle connection could not take (closed
    /// meanwhile) goes on a new one.
    pub async fn request(&self, request: OriginRequest<'_>) -> Result<Answer, OriginError> {
        let head_request = request.method == http::Method::HEAD;
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            conn.head.clear();
            h1::encode_request(
                &request.method,
                request.target,
                request.headers,
                request.credential,
                &self.shared.host,
                request.body.len(),
                &mut conn.head,
            );
            if let Err(e) = conn.write_request(&request.body).await {
                if reused {
                    // Closed while idle: the server cannot have taken the request.
                    continue;
                }
                return Err(e.into());
            }
            let head = conn.read_head(head_request).await?;
            let mut body = ResponseBody {
                decoder: BodyDecoder::new(head.framing),
                conn: Some(conn),
                keep_alive: head.keep_alive,
                shared: self.shared.clone(),
            };
            body.release_if_done();
            return Ok(Answer {
                status: head.status,
                headers: head.headers,
                body,
            });
        }
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Box<Conn>> {
        loop {
            let mut idle = self
                .shared
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if idle.since.elapsed() > self.shared.idle_timeout {
                continue;
            }
            if idle.conn.is_quiet() {
                return Some(idle.conn);
            }
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, OriginError> {
        let io =
            tower::ServiceExt::oneshot(self.shared.connector.clone(), self.shared.origin.clone())
                .await
                .map_err(OriginError::Connect)?;
        Ok(Box::new(Conn {
            io: TokioIo::new(io),
            read: BytesMut::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(512),
        }))
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        self.shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Conn {
    /// Writes the encoded head and then `body`, in as few writes as the socket takes.
    async fn write_request(&mut self, body: &[u8]) -> std::io::Result<()> {
        h1::io::write_all(
            &mut self.io,
            &mut [IoSlice::new(&self.head), IoSlice::new(body)],
        )
        .await?;
        self.io.flush().await
    }

    /// Reads until the answer's head is complete.
    async fn read_head(&mut self, head_request: bool) -> Result<h1::Head, OriginError> {
        loop {
            if !self.read.is_empty() {
                if let Some(head) = h1::parse_head(&mut self.read, head_request)? {
                    return Ok(head);
                }
            }
            self.read.reserve(READ_CHUNK);
            if self.io.read_buf(&mut self.read).await? == 0 {
                return Err(OriginError::Closed);
            }
        }
    }

    /// An idle connection on which nothing has arrived: not closed by the server, and
    /// no stray bytes (either makes it unusable).
    fn is_quiet(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut quiet = Context::from_waker(std::task::Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut quiet, &mut buf),
            Poll::Pending
        )
    }
}

impl Shared {
    fn release(&self, conn: Box<Conn>) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Calls take the newest connections, so ones left over from a burst age at the
        // front: close those past the idle timeout (the server has likely closed them).
        let expired = idle.partition_point(|i| now.duration_since(i.since) > self.idle_timeout);
        let mut closing: Vec<Idle> = idle.drain(..expired).collect();
        if idle.len() >= MAX_IDLE {
            closing.push(idle.remove(0));
        }
        idle.push(Idle { conn, since: now });
        drop(idle);
        drop(closing);
    }
}

/// An answer's body, read off its connection as the caller polls it. When it has
/// ended, the connection goes back to the pool (unless the server is closing it).
/// Dropped before its end, it closes the connection.
pub struct ResponseBody {
    decoder: BodyDecoder,
    conn: Option<Box<Conn>>,
    keep_alive: bool,
    shared: Arc<Shared>,
}

impl ResponseBody {
    /// Once the body has ended: the connection goes back to the pool when it can
    /// carry another request (nothing read beyond the answer).
    fn release_if_done(&mut self) {
        if !self.decoder.is_done() {
            return;
        }
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.read.is_empty() {
                self.shared.release(conn);
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = OriginError;

    /// The data that has arrived (at most [`COALESCE_MAX`] of it joined into one
    /// frame); waits only when nothing has.
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, OriginError>>> {
        let this = &mut *self;
        let mut joined = Joined::default();
        let frame = |joined: Joined| joined.into_bytes().map(|data| Ok(Frame::data(data)));
        loop {
            let Some(conn) = this.conn.as_mut() else {
                // Ended (or failed, and already told).
                return Poll::Ready(frame(joined));
            };
            let decoded = match this
                .decoder
                .decode(&mut conn.read, COALESCE_MAX - joined.len())
            {
                Ok(decoded) => decoded,
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            };
            if let Some(data) = decoded.data {
                joined.push(data);
            }
            if decoded.done {
                this.release_if_done();
                return Poll::Ready(frame(joined));
            }
            if joined.len() >= COALESCE_MAX {
                return Poll::Ready(frame(joined));
            }
            // Everything buffered is used: read what else has arrived.
            conn.read.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.read) {
                Poll::Pending if joined.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(frame(joined)),
                Poll::Ready(Ok(0)) => {
                    let ended = this.decoder.closed();
                    this.conn = None;
                    if !ended {
                        return Poll::Ready(Some(Err(OriginError::Closed)));
                    }
                    return Poll::Ready(frame(joined));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A keep-alive HTTP/1 server answering `body` to every request; counts the
    /// connections it accepted.
    async fn keep_alive_server(body: &'static [u8]) -> (http::Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            body,
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}/v1").parse().expect("uri"), accepted)
    }

    /// `POST /v1/chat/completions` with a small body (every test base ends in `/v1`).
    fn post(base: &http::Uri) -> OriginRequest<'static> {
        assert_eq!(base.path(), "/v1");
        OriginRequest {
            method: http::Method::POST,
            target: "/v1/chat/completions",
            headers: &[],
            credential: None,
            body: Bytes::from_static(b"{}"),
        }
    }

    async fn call(client: &OriginClient, base: &http::Uri) -> Bytes {
        let response = client.request(post(base)).await.expect("answer");
        assert_eq!(response.status, 200);
        response.body.collect().await.expect("body").to_bytes()
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_connection() {
        let (base, accepted) = keep_alive_server(b"hello").await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        for _ in 0..5 {
            assert_eq!(&call(&client, &base).await[..], b"hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(client.idle_connections(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_each_get_a_connection_and_return_it() {
        let (base, accepted) = keep_alive_server(b"hi").await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        for _round in 0..3 {
            let calls: Vec<_> = (0..40)
                .map(|_| {
                    let (client, base) = (client.clone(), base.clone());
                    tokio::spawn(async move { call(&client, &base).await })
                })
                .collect();
            for c in calls {
                assert_eq!(&c.await.expect("task")[..], b"hi");
            }
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!(
            (1..=40).contains(&opened),
            "{opened} connections for 40 in flight"
        );
        assert_eq!(client.idle_connections(), opened);
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_server_while_idle_is_replaced() {
        // Answers one request per connection, then closes it without saying so, after
        // the client has put the connection back in its pool.
        let (base, accepted) = raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Duration::from_millis(20),
        )
        .await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        for _ in 0..3 {
            assert_eq!(&call(&client, &base).await[..], b"ok");
            assert_eq!(
                client.idle_connections(),
                1,
                "kept while the server said nothing"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        static BIG: [u8; 1 << 20] = [b'x'; 1 << 20];
        let (base, accepted) = keep_alive_server(&BIG).await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        let response = client.request(post(&base)).await.expect("answer");
        drop(response);
        assert_eq!(client.idle_connections(), 0);
        assert_eq!(call(&client, &base).await.len(), BIG.len());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(client.idle_connections(), 1);
    }

    /// A server that reads one request per connection, writes `answer` as it is and
    /// closes the connection `linger` later; counts the connections it accepted.
    async fn raw_server(answer: &'static [u8], linger: Duration) -> (http::Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer).await;
                tokio::time::sleep(linger).await;
            }
        });
        (base.parse().expect("uri"), accepted)
    }

    /// A client of a [`raw_server`] answering `answer`.
    async fn raw_client(answer: &'static [u8]) -> (OriginClient, http::Uri, Arc<AtomicUsize>) {
        let (base, accepted) = raw_server(answer, Duration::ZERO).await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        (client, base, accepted)
    }

    #[tokio::test]
    async fn the_request_goes_out_as_http_1_1_with_host_and_length() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"{}") {
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed early");
                request.extend_from_slice(&buf[..n]);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
            String::from_utf8(request).expect("ascii")
        });
        let base: http::Uri = format!("http://{addr}/v1").parse().expect("uri");
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        let headers = [(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-test"),
        )];
        let request = OriginRequest {
            method: http::Method::POST,
            target: "/v1/chat/completions?x=1",
            headers: &headers,
            credential: None,
            body: Bytes::from_static(b"{}"),
        };
        let response = client.request(request).await.expect("answer");
        assert!(response.body.is_end_stream());
        assert_eq!(
            seen.await.expect("server"),
            format!(
                "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: {addr}\r\n\
                 authorization: Bearer sk-test\r\ncontent-length: 2\r\n\r\n{{}}"
            )
        );
        assert_eq!(client.idle_connections(), 1, "an empty body ends at once");
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_reused() {
        let (client, base, accepted) =
            raw_client(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
                .await;
        for _ in 0..2 {
            assert_eq!(&call(&client, &base).await[..], b"ok");
            assert_eq!(client.idle_connections(), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_without_length_runs_until_the_server_closes() {
        let (client, base, _) = raw_client(b"HTTP/1.1 200 OK\r\n\r\nuntil the end").await;
        assert_eq!(&call(&client, &base).await[..], b"until the end");
        assert_eq!(client.idle_connections(), 0);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let (client, base, _) =
            raw_client(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf").await;
        let response = client.request(post(&base)).await.expect("head");
        let error = response.body.collect().await.expect_err("cut short");
        assert!(matches!(error, OriginError::Closed), "{error}");
        assert_eq!(client.idle_connections(), 0);
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_is_a_protocol_error() {
        let (client, base, _) = raw_client(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        let error = client.request(post(&base)).await.expect_err("garbage");
        assert!(matches!(error, OriginError::Protocol(_)), "{error}");
        let (client, base, _) = raw_client(b"").await;
        let error = client.request(post(&base)).await.expect_err("no answer");
        assert!(matches!(error, OriginError::Closed), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_origin_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base: http::Uri = format!("http://{}/v1", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        drop(listener);
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        let error = client.request(post(&base)).await.expect_err("no server");
        assert!(matches!(error, OriginError::Connect(_)), "{error}");
    }

    /// A server answering one chunked body: `first`, then after `pause` the rest.
    async fn chunked_server(pause: Duration) -> http::Uri {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = stream
                .write_all(format!("{head}3\r\none\r\n3\r\ntwo\r\n").as_bytes())
                .await;
            tokio::time::sleep(pause).await;
            let _ = stream.write_all(b"5\r\nthree\r\n0\r\n\r\n").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        base.parse().expect("uri")
    }

    #[tokio::test]
    async fn frames_that_already_arrived_go_out_as_one_and_nothing_waits_for_more() {
        let base = chunked_server(Duration::from_millis(300)).await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        let started = Instant::now();
        let mut body = client.request(post(&base)).await.expect("answer").body;
        let mut first = Bytes::new();
        // The head and the first two chunks may arrive in one read or two.
        while first.len() < 6 {
            let frame = body.frame().await.expect("a frame").expect("data");
            let data = frame.into_data().expect("data frame");
            first = [first, data].concat().into();
        }
        assert_eq!(&first[..], b"onetwo");
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "the first frames did not wait for the rest"
        );
        let rest = body.collect().await.expect("rest").to_bytes();
        assert_eq!(&rest[..], b"three");
    }

    #[tokio::test]
    async fn a_burst_of_chunks_is_one_frame() {
        let base = chunked_server(Duration::ZERO).await;
        let client = OriginClient::new(&base, Duration::from_secs(1)).expect("client");
        // Give the whole answer time to arrive before reading it.
        let response = client.request(post(&base)).await.expect("answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut body = response.body;
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(&frame.into_data().expect("data frame")[..], b"onetwothree");
        assert!(body.frame().await.is_none());
        assert_eq!(client.idle_connections(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_left_idle_past_the_timeout_are_closed() {
        let (base, _) = keep_alive_server(b"hi").await;
        let client = OriginClient::with_idle_timeout(
            &base,
            Duration::from_secs(1),
            Duration::from_millis(100),
        )
        .expect("client");
        // A burst leaves three connections idle.
        let burst: Vec<_> = (0..3)
            .map(|_| {
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move { call(&client, &base).await })
            })
            .collect();
        for c in burst {
            c.await.expect("task");
        }
        let after_burst = client.idle_connections();
        assert!(after_burst >= 2, "{after_burst} idle after the burst");
        // Calls one at a time keep reusing the newest; the rest age past the timeout
        // and are closed when a connection is released.
        tokio::time::sleep(Duration::from_millis(70)).await;
        call(&client, &base).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        call(&client, &base).await;
        assert_eq!(client.idle_connections(), 1);
    }
}
