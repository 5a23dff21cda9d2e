//! The server handle: start, inspect, script, shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;

use crate::admit::KeyHeader;
use crate::errors;
use crate::messages_errors;
use crate::options::MockOptions;
use crate::record::RecordedRequest;
use crate::script::Step;
use crate::shared::Shared;
use crate::{chat, completions, embeddings, messages, models};

/// A running mock server. Clones share the same server. Dropping it does NOT stop
/// it; call [`MockServer::shutdown`].
#[derive(Clone)]
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/completions", post(completions::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/messages", post(messages::handle))
        .route("/v1/models", get(models::handle))
        .route("/health", get(health))
        .fallback(unknown)
        .with_state(shared)
}

/// `GET /health`: always `{"status":"ok"}`, never counted.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Any other path: recorded (so tests see a wrong path), then 404, in Anthropic's
/// shape when the request looks like one (`x-api-key` or `anthropic-version`
/// without `Authorization`), else in OpenAI's.
async fn unknown(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let headers = &parts.headers;
    let anthropic = !headers.contains_key(header::AUTHORIZATION)
        && (headers.contains_key("x-api-key") || headers.contains_key("anthropic-version"));
    shared
        .recorder
        .record(&path, KeyHeader::Any, parts.headers, Bytes::new());
    if anthropic {
        messages_errors::status(404, None, shared.next_id())
    } else {
        errors::unknown_route()
    }
}

impl MockServer {
    /// Serves on an already bound listener: spawns a tokio task and returns at once.
    /// Must be called inside a tokio runtime.
    pub fn start(listener: TcpListener, options: MockOptions) -> std::io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared::new(options));
        let app = router(Arc::clone(&shared));
        let listener = listener.tap_io(|stream| {
            // Without it small SSE frames can wait for delayed ACKs.
            let _ = stream.set_nodelay(true);
        });
        let stop = Arc::clone(&shared);
        runtime.spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.stopped().await });
            // Errors here mean the listener died; there is no one to tell.
            let _ = serve.await;
        });
        Ok(MockServer { shared, addr })
    }

    /// Binds `127.0.0.1:0` and starts.
    pub async fn start_local(options: MockOptions) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        MockServer::start(listener, options)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, the base URL an OpenAI client is given.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues scripted answers for requests carrying `key`: `Authorization: Bearer
    /// <key>`, or `x-api-key: <key>` on `/v1/messages`. They are consumed in order,
    /// one per request, whatever the path; then normal replies resume.
    pub fn script(&self, key: &str, steps: Vec<Step>) {
        self.shared.scripts.push(key, steps);
    }

    /// Requests received in total (every path but `/health`, unknown paths included).
    pub fn total_requests(&self) -> u64 {
        self.shared.recorder.total()
    }

    /// Requests received with `key` (as a Bearer token, or as `x-api-key` on
    /// `/v1/messages` and unknown paths).
    pub fn requests_for_key(&self, key: &str) -> u64 {
        self.shared.recorder.for_key(key)
    }

    /// Requests received on `path`, e.g. `"/v1/chat/completions"`.
    pub fn requests_for_path(&self, path: &str) -> u64 {
        self.shared.recorder.for_path(path)
    }

    /// The last request's JSON body and headers (lower-case names) received on
    /// `path`, if any.
    pub fn last_request(&self, path: &str) -> Option<RecordedRequest> {
        self.shared.recorder.last(path)
    }

    /// Stops accepting, ends hanging requests and cut streams, and closes idle
    /// connections. Returns at once; the port is freed shortly after.
    pub fn shutdown(&self) {
        self.shared.shut_down();
    }
}
