//! The HTTP/1.1 client of one provider: keep-alive connections to its one origin,
//! each driven by the task of the call using it. hyper-util's pooled client runs every
//! connection on a task of its own, so each call crossed between tasks a few times;
//! here the call's task polls the connection itself, while it waits for the answer's
//! head and while it reads the body, and puts the connection back in the pool when the
//! body has ended.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Sender = http1::SendRequest<Full<Bytes>>;
type Driver = http1::Connection<Io, Full<Bytes>>;

/// Idle connections kept per origin at most.
const MAX_IDLE: usize = 1024;
/// The most data joined into one body frame from frames that have already arrived.
const COALESCE_MAX: usize = 64 * 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// No connection could be opened (DNS, TCP, TLS, connect timeout).
    #[error("cannot connect: {0}")]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed or closed before the answer's head arrived.
    #[error(transparent)]
    Http(#[from] hyper::Error),
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

/// A connection: the handle requests are sent through, and the connection itself,
/// which makes progress only while someone polls it. Boxed wherever it goes (pool,
/// futures, bodies): it is large, and moving it by value cost more than the rest of
/// the client.
struct Conn {
    sender: Sender,
    driver: Driver,
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

    /// Sends `request` (its URI's path and query; the origin is this client's) and
    /// answers with the response head once it arrives. A request that an idle
    /// connection could not take (closed meanwhile) goes on a new one.
    pub async fn request(
        &self,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<ResponseBody>, OriginError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *request.uri_mut() = http::Uri::from(path);
        request
            .headers_mut()
            .entry(http::header::HOST)
            .or_insert_with(|| self.shared.host.clone());
        loop {
            let (conn, reused) = match self.checkout().await {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            match send(conn, request).await {
                Ok((head, conn)) => {
                    let (parts, incoming) = head.into_parts();
                    let body = ResponseBody {
                        incoming,
                        conn,
                        shared: self.shared.clone(),
                        held: None,
                    };
                    return Ok(http::Response::from_parts(parts, body));
                }
                Err(mut failed) => match failed.message.take() {
                    // Never written: safe to send again, on a fresh connection.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(OriginError::Http(failed.error)),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and ready.
    async fn checkout(&self) -> Option<Box<Conn>> {
        loop {
            let idle = self
                .shared
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if idle.since.elapsed() > self.shared.idle_timeout {
                continue;
            }
            if let Some(conn) = ready(idle.conn).await {
                return Some(conn);
            }
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, OriginError> {
        let io =
            tower::ServiceExt::oneshot(self.shared.connector.clone(), self.shared.origin.clone())
                .await
                .map_err(OriginError::Connect)?;
        let (sender, driver) = http1::Builder::new().handshake(io).await?;
        Ok(Box::new(Conn { sender, driver }))
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

impl Shared {
    fn release(&self, mut conn: Box<Conn>) {
        // One poll lets the connection finish the answer it just delivered and get
        // ready for the next request (nobody is to be woken by an idle connection).
        let mut quiet = Context::from_waker(std::task::Waker::noop());
        if Pin::new(&mut conn.driver).poll(&mut quiet).is_ready() || conn.sender.is_closed() {
            return;
        }
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

/// A request that got no answer: the error, and the request when it was never written.
struct SendFailed {
    error: hyper::Error,
    message: Option<http::Request<Full<Bytes>>>,
}

/// The connection once its sender can take a request; `None` when it closed. A
/// connection released ready is used as it is: polling it here would register this
/// task to be woken by the request about to be queued on it, for nothing.
async fn ready(mut conn: Box<Conn>) -> Option<Box<Conn>> {
    if conn.sender.is_ready() {
        return Some(conn);
    }
    let ok = poll_fn(|cx| {
        if Pin::new(&mut conn.driver).poll(cx).is_ready() {
            // Closed (or failed): no request can go on it.
            return Poll::Ready(false);
        }
        match conn.sender.poll_ready(cx) {
            Poll::Ready(result) => Poll::Ready(result.is_ok()),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    ok.then_some(conn)
}

/// Sends one request on `conn`, polling the connection until the answer's head is in.
/// A connection that ends first is dropped at once: that fails the request (and hands
/// it back when it was never written) instead of leaving it waiting.
async fn send(
    mut conn: Box<Conn>,
    request: http::Request<Full<Bytes>>,
) -> Result<(http::Response<Incoming>, Option<Box<Conn>>), SendFailed> {
    let mut answer = std::pin::pin!(conn.sender.try_send_request(request));
    let mut conn = Some(conn);
    let outcome = poll_fn(|cx| {
        if let Some(c) = conn.as_mut() {
            if Pin::new(&mut c.driver).poll(cx).is_ready() {
                conn = None;
            }
        }
        if conn.is_none() {
            return answer.as_mut().poll(cx);
        }
        // Only the connection, polled just above in this task, completes the answer:
        // asked without a waker, it cannot wake this task for nothing.
        answer
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
    })
    .await;
    match outcome {
        Ok(head) => Ok((head, conn)),
        Err(mut e) => Err(SendFailed {
            message: e.take_message(),
            error: e.into_error(),
        }),
    }
}

/// An answer's body. Polling it drives the connection; when it has ended, the
/// connection goes back to the pool. Dropped before its end, it closes the connection.
pub struct ResponseBody {
    incoming: Incoming,
    conn: Option<Box<Conn>>,
    shared: Arc<Shared>,
    /// What was read ahead while joining data frames: a frame, the end or an error.
    held: Option<Option<Result<Frame<Bytes>, hyper::Error>>>,
}

impl ResponseBody {
    fn release_if_ended(&mut self) {
        if self.incoming.is_end_stream() {
            if let Some(conn) = self.conn.take() {
                self.shared.release(conn);
            }
        }
    }

    /// The next frame the connection has delivered (or will, once polled).
    fn poll_one(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut frame = Pin::new(&mut self.incoming).poll_frame(cx);
        if frame.is_pending() {
            if let Some(conn) = &mut self.conn {
                if Pin::new(&mut conn.driver).poll(cx).is_ready() {
                    // The connection ended; the body has what it delivered.
                    self.conn = None;
                }
                frame = Pin::new(&mut self.incoming).poll_frame(cx);
            }
        }
        match &frame {
            Poll::Ready(None) => {
                if let Some(conn) = self.conn.take() {
                    self.shared.release(conn);
                }
            }
            Poll::Ready(Some(Ok(_))) => self.release_if_ended(),
            Poll::Ready(Some(Err(_))) => self.conn = None,
            Poll::Pending => {}
        }
        frame
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    /// The next data frame, joined with the data frames that have already arrived
    /// behind it (up to [`COALESCE_MAX`]): a burst of stream events goes to the client
    /// in one write instead of one write each. Nothing waits for more data.
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(held) = this.held.take() {
            return Poll::Ready(held);
        }
        let first = match ready!(this.poll_one(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let first = match first.into_data() {
            Ok(data) => data,
            Err(frame) => return Poll::Ready(Some(Ok(frame))),
        };
        let mut joined: Option<BytesMut> = None;
        let mut len = first.len();
        while len < COALESCE_MAX {
            match this.poll_one(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(more) => {
                        len += more.len();
                        joined
                            .get_or_insert_with(|| BytesMut::from(&first[..]))
                            .extend_from_slice(&more);
                    }
                    Err(frame) => {
                        this.held = Some(Some(Ok(frame)));
                        break;
                    }
                },
                Poll::Ready(end_or_error) => {
                    this.held = Some(end_or_error);
                    break;
                }
            }
        }
        let data = joined.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.held {
            Some(None) => true,
            Some(Some(_)) => false,
            None => self.incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
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

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    fn post(base: &http::Uri) -> http::Request<Full<Bytes>> {
        http::Request::post(format!("{base}/chat/completions"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request")
    }

    async fn call(client: &OriginClient, base: &http::Uri) -> Bytes {
        let response = client.request(post(base)).await.expect("answer");
        assert_eq!(response.status(), 200);
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
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
        // Answers one request per connection, then closes it without saying so.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base: http::Uri = format!("http://{}/v1", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                // Closed after the client has put the connection back in its pool.
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(stream);
            }
        });
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
        let mut body = client
            .request(post(&base))
            .await
            .expect("answer")
            .into_body();
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
        let mut body = response.into_body();
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
