//! The service hyper serves: every request gets its id, then POSTs to the relay routes
//! go straight to their handler behind client authentication, and everything else
//! (other methods on those paths, the read-only client routes, admin, dashboard,
//! operations, unknown paths) goes through the axum router.
//!
//! The direct path exists for speed: through the router, every call paid for a route
//! lookup and for boxing (and cloning) the route, each layer on it and the handler
//! separately — about 6% of the gateway's CPU per call. Here a relay call costs one
//! boxed future. The router keeps the relay routes too, so their other methods get its
//! answers (405, CORS preflights through the same authentication layer).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::layers::{ClientAuth, ClientAuthFuture, ClientAuthLayer, Dialect};
use super::{anthropic_api, client_api, Handler, CLIENT_ROUTES};
use crate::app::AppState;

/// A relay handler's answer on its way.
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Routes a request to its relay handler or to the router.
#[derive(Clone)]
pub struct Dispatch {
    /// The relaying client routes: path and its authenticated handler.
    relays: Vec<(&'static str, ClientAuth<RelayHandler>)>,
    rest: Router,
}

impl Dispatch {
    /// The relay routes of [`CLIENT_ROUTES`] served directly, the rest by `rest`.
    pub fn new(state: AppState, rest: Router) -> Self {
        let relays = CLIENT_ROUTES
            .iter()
            .filter(|route| route.relays)
            .map(|route| {
                let dialect = match route.handler {
                    Handler::Messages => Dialect::Anthropic,
                    _ => Dialect::OpenAi,
                };
                let handler = RelayHandler {
                    state: state.clone(),
                    handler: route.handler,
                };
                let auth = ClientAuthLayer::new(state.clone(), dialect).layer(handler);
                (route.path, auth)
            })
            .collect();
        Dispatch { relays, rest }
    }
}

impl Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = DispatchFuture;

    /// Always ready: the router and the relay handlers take every request as it comes.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == http::Method::POST {
            let path = request.uri().path();
            if let Some((_, relay)) = self.relays.iter_mut().find(|(p, _)| *p == path) {
                return DispatchFuture::Relay {
                    inner: relay.call(request),
                };
            }
        }
        DispatchFuture::Routed {
            inner: self.rest.call(request),
        }
    }
}

pin_project! {
    /// The answer of a relay handler or of the router.
    #[project = DispatchProj]
    pub enum DispatchFuture {
        Relay {
            #[pin]
            inner: ClientAuthFuture<HandlerFuture>,
        },
        Routed {
            #[pin]
            inner: axum::routing::future::RouteFuture<Infallible>,
        },
    }
}

impl Future for DispatchFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DispatchProj::Relay { inner } => inner.poll(cx),
            DispatchProj::Routed { inner } => inner.poll(cx),
        }
    }
}

/// One relay route's handler as a service.
#[derive(Clone)]
pub struct RelayHandler {
    state: AppState,
    handler: Handler,
}

impl Service<Request> for RelayHandler {
    type Response = Response;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = State(self.state.clone());
        let handler = self.handler;
        Box::pin(async move {
            Ok(match handler {
                Handler::ChatCompletions => client_api::chat_completions(state, request).await,
                Handler::Completions => client_api::completions(state, request).await,
                Handler::Embeddings => client_api::embeddings(state, request).await,
                Handler::Messages => anthropic_api::messages(state, request).await,
                Handler::Models => client_api::models(state, request).await,
                Handler::Usage => client_api::usage(state, request).await,
            })
        })
    }
}
