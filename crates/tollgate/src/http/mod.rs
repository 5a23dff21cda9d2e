//! The only module that knows axum: routes, layers, handlers and the error mapping.
//!
//! Layer order, outermost first: request id → (on `/v1`) authentication → CORS →
//! handler; on `/admin/api` (but login and the OpenAPI document): request id → admin
//! session → handler. POSTs to the relay routes skip the router ([`dispatch`]).

pub mod admin;
pub mod anthropic_api;
pub mod client_api;
pub mod dashboard;
pub mod dispatch;
pub mod error;
pub mod layers;
pub mod limit_headers;
pub mod ops;
pub mod server;
pub mod usage_report;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::app::AppState;
use error::ApiError;

/// A client route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRoute {
    pub method: &'static str,
    pub path: &'static str,
    /// True when the route reaches an upstream, so limits and budgets apply; read-only
    /// routes pass authentication and policy but count nothing (SPEC §6).
    pub relays: bool,
    handler: Handler,
}

/// The handler behind a client route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    ChatCompletions,
    Completions,
    Embeddings,
    Messages,
    Models,
    Usage,
}

/// Every client route. The router is built from this table, and tests walk it to
/// prove that no route skips authentication, policy or limits.
pub const CLIENT_ROUTES: [ClientRoute; 6] = [
    ClientRoute {
        method: "POST",
        path: "/v1/chat/completions",
        relays: true,
        handler: Handler::ChatCompletions,
    },
    ClientRoute {
        method: "POST",
        path: "/v1/completions",
        relays: true,
        handler: Handler::Completions,
    },
    ClientRoute {
        method: "POST",
        path: "/v1/embeddings",
        relays: true,
        handler: Handler::Embeddings,
    },
    ClientRoute {
        method: "POST",
        path: "/v1/messages",
        relays: true,
        handler: Handler::Messages,
    },
    ClientRoute {
        method: "GET",
        path: "/v1/models",
        relays: false,
        handler: Handler::Models,
    },
    ClientRoute {
        method: "GET",
        path: "/v1/usage",
        relays: false,
        handler: Handler::Usage,
    },
];

fn method_router(handler: Handler) -> MethodRouter<AppState> {
    match handler {
        Handler::ChatCompletions => post(client_api::chat_completions),
        Handler::Completions => post(client_api::completions),
        Handler::Embeddings => post(client_api::embeddings),
        Handler::Messages => post(anthropic_api::messages),
        Handler::Models => get(client_api::models),
        Handler::Usage => get(client_api::usage),
    }
}

/// The service the server runs for every request: its id, then the relay routes
/// directly and everything else through [`router`].
pub fn service(state: AppState) -> layers::WithRequestId<dispatch::Dispatch> {
    let rest = router(state.clone());
    tower::Layer::layer(
        &layers::RequestIdLayer,
        dispatch::Dispatch::new(state, rest),
    )
}

/// The most a request body may be for the routes outside the client API (axum's
/// default body limit, which their extractors apply).
const OTHER_ROUTES_MAX_BODY: usize = 2 * 1024 * 1024;

/// What the server reads per request for `config`: bodies up to the larger of the
/// client API's limit and the other routes'.
pub fn server_limits(config: &crate::config::Config) -> server::ServerLimits {
    server::ServerLimits {
        max_body: config.server.max_body_bytes.max(OTHER_ROUTES_MAX_BODY),
    }
}

/// Every route the gateway serves (request ids are given outside it, by [`service`]).
pub fn router(state: AppState) -> Router {
    let mut client_api = Router::new();
    let mut anthropic_api = Router::new();
    for route in CLIENT_ROUTES {
        let handler = method_router(route.handler);
        if route.handler == Handler::Messages {
            anthropic_api = anthropic_api.route(route.path, handler);
        } else {
            client_api = client_api.route(route.path, handler);
        }
    }
    // Authentication, then CORS (which needs the caller), in one layer.
    let client_api = client_api.route_layer(layers::ClientAuthLayer::new(
        state.clone(),
        layers::Dialect::OpenAi,
    ));
    let anthropic_api = anthropic_api.route_layer(layers::ClientAuthLayer::new(
        state.clone(),
        layers::Dialect::Anthropic,
    ));
    Router::new()
        .merge(client_api)
        .merge(anthropic_api)
        .merge(admin::routes(state.clone()))
        .merge(dashboard::routes())
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(unknown_path)
        .with_state(state)
}

async fn unknown_path(request: Request) -> Response {
    ApiError::UnknownPath(request.uri().path().to_owned()).into_response()
}
