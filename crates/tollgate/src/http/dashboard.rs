//! The dashboard at `/admin/` (SPEC §8): the static single-page app in
//! `crates/tollgate/dashboard/`, embedded into the binary at build time (in every
//! profile), so building needs only cargo and the binary needs no files beside it.
//!
//! `GET /admin/` and `/admin/<asset>` answer the embedded files with their content
//! type, a strong `ETag` (SHA-256 of the content; `If-None-Match` answers 304) and
//! `Cache-Control`: `no-cache` (revalidate every time) for the app's own files, a year
//! and `immutable` for the pinned third-party files under `vendor/<name>-<version>/`.
//! Any other path under `/admin/` without a file extension answers `index.html`, so a
//! reload on a deep link works. The admin API keeps `/admin/api/`: its routes are
//! matched first (static segments beat the wildcard), and an unknown `/admin/api/…`
//! path is the API's JSON 404, never the app. The app has no inline script or style,
//! so its pages carry a strict Content-Security-Policy.
//!
//! Third-party: `vendor/uplot-1.6.32/` is uPlot 1.6.32 as published on npm
//! (`dist/uPlot.iife.min.js`, `dist/uPlot.min.css`; MIT, its LICENSE beside it).
//! Cargo rebuilds when an embedded file changes, but not when a file is added: after
//! adding one, touch this file (or `cargo clean -p tollgate`) before building.

use axum::extract::Request;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::Router;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rust_embed::RustEmbed;

use super::error::ApiError;

/// The app's files, from `crates/tollgate/dashboard/`.
#[derive(RustEmbed)]
#[folder = "dashboard/"]
struct Assets;

/// Where the dashboard lives.
const PREFIX: &str = "/admin/";

/// The app's pages load only their own scripts, styles and API; nothing may frame them.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes, to merge into the gateway's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent(PREFIX) }))
        .route("/admin/", get(index))
        .route("/admin/{*path}", any(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(missing_index)
}

async fn asset(request: Request) -> Response {
    let full = request.uri().path();
    let path = full.strip_prefix(PREFIX).unwrap_or_default();
    if is_api(path) || !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::UnknownPath(full.to_owned()).into_response();
    }
    if let Some(response) = serve(path, request.headers()) {
        return response;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        // A file that does not exist: a 404, not the app in its place.
        return ApiError::UnknownPath(full.to_owned()).into_response();
    }
    serve("index.html", request.headers()).unwrap_or_else(missing_index)
}

/// True for the admin API's paths, which the app must never answer.
fn is_api(path: &str) -> bool {
    path == "api" || path.starts_with("api/")
}

/// The embedded file at `path` with its headers, or `None` when there is none.
fn serve(path: &str, request_headers: &HeaderMap) -> Option<Response> {
    let file = Assets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control(path)));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    if path.ends_with(".html") {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if etag_matches(request_headers, &etag) {
        return Some((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Some((headers, file.data.into_owned()).into_response())
}

/// True when `If-None-Match` lists `etag` (or is `*`).
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The content type of an embedded file, by extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ if path.ends_with("LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Pinned third-party files (`vendor/<name>-<version>/…`) never change under their
/// name; the app's own files are revalidated (cheaply, by ETag) on every load.
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("vendor/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Only a build without `dashboard/index.html` gets here.
fn missing_index() -> Response {
    ApiError::UnknownPath("/admin/".to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    /// The dashboard beside a stand-in for the admin API, as the gateway merges them.
    fn app() -> Router {
        Router::new()
            .route("/admin/api/login", post(|| async { "login" }))
            .route("/admin/api/keys/{id}", get(|| async { "key" }))
            .merge(routes())
    }

    async fn call(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Body::empty()).expect("request");
        let response = app().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn index_and_assets_have_their_types_and_caching() {
        let (status, h, body) = call("GET", "/admin/", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert_eq!(header(&h, "cache-control"), "no-cache");
        assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
        assert!(body.contains("<title>"), "{body}");

        let (status, h, _) = call("GET", "/admin/app.js", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&h, "content-type").starts_with("text/javascript"));
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");

        let (status, h, _) = call("GET", "/admin/app.css", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&h, "content-type").starts_with("text/css"));

        let (status, h, _) = call("GET", "/admin/vendor/uplot-1.6.32/uPlot.iife.min.js", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&h, "cache-control").contains("immutable"));

        let (status, _, _) = call("GET", "/admin", &[]).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    }

    #[tokio::test]
    async fn etag_revalidates() {
        let (_, h, _) = call("GET", "/admin/app.js", &[]).await;
        let etag = header(&h, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        let (status, _, body) = call("GET", "/admin/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, _, _) = call("GET", "/admin/app.js", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn deep_links_get_the_app_and_missing_files_a_404() {
        let (status, h, body) = call("GET", "/admin/keys/key_abc", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert!(body.contains("<title>"));
        let (status, _, body) = call("GET", "/admin/nothing-here.js", &[]).await;
        assert_eq!(status, 404);
        assert!(body.contains("unknown_url"), "{body}");
        let (status, _, _) = call("POST", "/admin/keys", &[]).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn the_admin_api_is_never_shadowed() {
        let (status, _, body) = call("POST", "/admin/api/login", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "login"));
        let (status, _, body) = call("GET", "/admin/api/keys/k1", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "key"));
        for uri in ["/admin/api/nope", "/admin/api", "/admin/api/keys/k1/x.js"] {
            let (status, h, body) = call("GET", uri, &[]).await;
            assert_eq!(status, 404, "{uri}");
            assert!(
                header(&h, "content-type").starts_with("application/json"),
                "{uri}"
            );
            assert!(body.contains("unknown_url"), "{uri}: {body}");
        }
        let (status, _, body) = call("POST", "/admin/api/nope", &[]).await;
        assert_eq!(status, 404);
        assert!(body.contains("unknown_url"), "{body}");
    }
}
