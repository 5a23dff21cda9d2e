//! Admin sessions: `POST /admin/api/login` and `/logout`, the layer that admits only
//! requests with a live session (bearer token or the `tollgate_session` cookie), and
//! the in-memory limit on failed logins (per client address and per username).
//!
//! Sessions live in the database (the token's SHA-256 only), so every replica
//! accepts them and a logout applies everywhere on the next request. Nothing here
//! logs a password or a token.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_body, json_response, AdminError};
use crate::admission::network;
use crate::app::AppState;
use crate::auth::admin as credentials;
use crate::store::now_ms;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tollgate_session";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per address and per username within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window failed logins are counted over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Addresses and usernames tracked at most; past it, expired entries are purged and
/// new usernames go untracked (their address is still limited).
const MAX_TRACKED: usize = 10_000;

/// `POST /admin/api/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The admin's username (`admin` on a new database).
    pub username: String,
    /// The admin's password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <access_token>`; also set as the
    /// `tollgate_session` cookie (HttpOnly, SameSite=Strict, Path=/admin).
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the session ends.
    pub expires_in: u64,
}

/// The admin a request is made by, attached by [`require_admin`].
#[derive(Debug, Clone)]
pub struct AdminIdentity {
    /// The admin's username.
    pub username: String,
    /// Hex SHA-256 of the session token, to end the session at logout.
    token_hash: String,
}

/// Failed logins in memory: per key (`ip:…` or `user:…`) the times of the failures
/// within the window. An attempt in progress counts as a failure until it succeeds,
/// so concurrent guesses cannot pass the limit together.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// Starts an attempt for every key: refused with the seconds to wait when any key
    /// has [`MAX_FAILURES`] failures within the window; otherwise each key counts the
    /// attempt as a failure until [`LoginLimiter::succeeded`] says otherwise.
    pub fn begin(&self, keys: &[&str], now: Instant) -> Result<(), u64> {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(times) = map.get_mut(*key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= MAX_FAILURES {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max(FAILURE_WINDOW.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        if map.len() >= MAX_TRACKED {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
        }
        for key in keys {
            if let Some(times) = map.get_mut(*key) {
                times.push_back(now);
            } else if map.len() < MAX_TRACKED {
                map.insert((*key).to_owned(), VecDeque::from([now]));
            }
        }
        Ok(())
    }

    /// The attempt begun at `at` succeeded: the user's failures are forgotten, and the
    /// address's count loses this attempt (its earlier failures stay).
    pub fn succeeded(&self, ip_key: &str, user_key: &str, at: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(user_key);
        if let Some(times) = map.get_mut(ip_key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                map.remove(ip_key);
            }
        }
    }
}

/// The caller's address (behind trusted proxies, the forwarded one).
fn client_address(state: &AppState, request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            network::client_ip(c.0.ip(), forwarded, &state.config.server.trusted_proxies)
                .to_string()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Log in.
///
/// Answers a bearer token and sets the same token as an HttpOnly, SameSite=Strict
/// session cookie. After 5 failed logins within 5 minutes from one address or for one
/// username, further attempts (even with the right password) get 429 with
/// Retry-After until the oldest failure is 5 minutes old.
#[utoipa::path(
    post,
    operation_id = "login",
    path = "/admin/api/login",
    tag = "session",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse,
            headers(("set-cookie" = String, description = "tollgate_session=…; HttpOnly; SameSite=Strict; Path=/admin"))),
        (status = 400, description = "Malformed body", body = super::ErrorEnvelope),
        (status = 401, description = "Wrong username or password", body = super::ErrorEnvelope),
        (status = 429, description = "Too many failed logins", body = super::ErrorEnvelope,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    match try_login(state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn try_login(state: AppState, request: Request) -> Result<Response, AdminError> {
    let ip_key = format!("ip:{}", client_address(&state, &request));
    let secure = is_https(request.headers());
    let body: LoginRequest = json_body(request).await?;
    let user_key = format!("user:{}", body.username.to_lowercase());
    let started = Instant::now();
    state
        .admin_logins
        .begin(&[&ip_key, &user_key], started)
        .map_err(|retry_after_s| AdminError::LoginThrottled { retry_after_s })?;

    let stored = state
        .store
        .find_admin(&body.username)
        .await
        .map_err(AdminError::Store)?;
    let password = body.password;
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(user) => credentials::verify_password(&password, &user.password_hash),
        None => {
            credentials::verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?;
    if !verified {
        return Err(AdminError::BadCredentials);
    }
    state.admin_logins.succeeded(&ip_key, &user_key, started);

    let token = credentials::new_session_token();
    let ttl_ms = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    state
        .store
        .insert_admin_session(
            &credentials::session_token_hash(&token),
            &body.username,
            now_ms().saturating_add(ttl_ms),
        )
        .await
        .map_err(AdminError::Store)?;
    tracing::info!(username = %body.username, "admin logged in");
    let cookie = session_cookie(&token, SESSION_TTL.as_secs(), secure);
    let mut response = json_response(
        StatusCode::OK,
        &LoginResponse {
            access_token: token,
            token_type: "bearer",
            expires_in: SESSION_TTL.as_secs(),
        },
    );
    set_cookie(&mut response, &cookie)?;
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Log out.
///
/// Ends the session the request was made with (token or cookie) on every replica, and
/// clears the cookie. The token is refused with 401 from the next request on.
#[utoipa::path(
    post,
    operation_id = "logout",
    path = "/admin/api/logout",
    tag = "session",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared"),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let secure = is_https(request.headers());
    let Some(identity) = request.extensions().get::<AdminIdentity>().cloned() else {
        return AdminError::Unauthenticated.into_response();
    };
    if let Err(e) = state.store.delete_admin_session(&identity.token_hash).await {
        return AdminError::Store(e).into_response();
    }
    tracing::info!(username = %identity.username, "admin logged out");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Err(e) = set_cookie(&mut response, &session_cookie("", 0, secure)) {
        return e.into_response();
    }
    response
}

/// Admits only requests with a live admin session, attaching [`AdminIdentity`];
/// anything else gets 401 in OpenAI's error envelope.
pub async fn require_admin(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = presented_token(request.headers()) else {
        return AdminError::Unauthenticated.into_response();
    };
    let token_hash = credentials::session_token_hash(&token);
    match state.store.find_admin_session(&token_hash, now_ms()).await {
        Ok(Some(session)) => {
            request.extensions_mut().insert(AdminIdentity {
                username: session.username,
                token_hash,
            });
            next.run(request).await
        }
        Ok(None) => AdminError::Unauthenticated.into_response(),
        Err(e) => AdminError::Store(e).into_response(),
    }
}

/// The session token from `Authorization: Bearer …`, else from the session cookie.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    if bearer.is_some() {
        return bearer;
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// True when the client reached a TLS-terminating proxy (the cookie is then `Secure`).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The session cookie: `token` for `max_age_s` seconds (0 and an empty token clear it).
fn session_cookie(token: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age={max_age_s}{secure}")
}

fn set_cookie(response: &mut Response, cookie: &str) -> Result<(), AdminError> {
    let value = HeaderValue::from_str(cookie)
        .map_err(|_| AdminError::Internal("cannot form the session cookie".to_owned()))?;
    response
        .headers_mut()
        .insert(http::header::SET_COOKIE, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_address_and_the_user_for_the_window() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            let at = t0 + Duration::from_secs(i as u64);
            assert_eq!(
                limiter.begin(&["ip:a", "user:u"], at),
                Ok(()),
                "attempt {i}"
            );
        }
        let later = t0 + Duration::from_secs(10);
        let wait = limiter
            .begin(&["ip:a", "user:v"], later)
            .expect_err("ip locked");
        assert_eq!(wait, 290);
        assert!(
            limiter.begin(&["ip:b", "user:u"], later).is_err(),
            "user locked"
        );
        assert_eq!(limiter.begin(&["ip:b", "user:v"], later), Ok(()));
        // Once the oldest failure leaves the window, one more attempt may go.
        let after = t0 + FAILURE_WINDOW;
        assert_eq!(limiter.begin(&["ip:a", "user:u"], after), Ok(()));
    }

    #[test]
    fn a_success_forgets_the_user_and_its_own_attempt() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES - 1 {
            let at = t0 + Duration::from_secs(i as u64);
            assert_eq!(limiter.begin(&["ip:a", "user:u"], at), Ok(()));
        }
        let ok_at = t0 + Duration::from_secs(9);
        assert_eq!(limiter.begin(&["ip:a", "user:u"], ok_at), Ok(()));
        limiter.succeeded("ip:a", "user:u", ok_at);
        // The address keeps its 4 failures: one more is allowed, then it locks.
        let next = t0 + Duration::from_secs(10);
        assert_eq!(limiter.begin(&["ip:a", "user:w"], next), Ok(()));
        assert!(limiter.begin(&["ip:a", "user:x"], next).is_err());
        assert_eq!(limiter.begin(&["ip:c", "user:u"], next), Ok(()));
    }

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_token(&h), None);
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_static("a=b; tollgate_session=abc; c=d"),
        );
        assert_eq!(presented_token(&h).as_deref(), Some("abc"));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(presented_token(&h).as_deref(), Some("xyz"));
        assert!(session_cookie("t", 60, true).ends_with("Max-Age=60; Secure"));
    }
}
