//! A pooled HTTP(S) client for any URL (alert webhooks, `tollgate stats`): keep-alive,
//! no Nagle, connect timeout. Providers use [`super::origin`] instead.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The client type: HTTP/1.1 over plain TCP or rustls.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How every outgoing connection is opened: TCP with a connect timeout and no Nagle,
/// then TLS (rustls, webpki roots) for `https` URLs; HTTP/1.1 only.
pub fn connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// A new pooled client.
pub fn build(connect_timeout: Duration) -> HttpClient {
    let https = connector(connect_timeout);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(https)
}
