//! Client authentication: key format and hashing (`secret`), the in-memory key index
//! (`index`), and how a key is presented on a request; admin credentials (`admin`).

pub mod admin;
pub mod index;
pub mod secret;

use std::sync::Arc;

pub use index::KeyIndex;

use crate::admission::hmac::HmacSecret;
use crate::secrets::{MasterKey, SecretsError};
use crate::store::{KeyRecord, KeyStatus};

/// An authenticated client key, as the request path sees it.
#[derive(Debug)]
pub struct ClientKey {
    /// Public id (`key_…`).
    pub id: Arc<str>,
    /// What the key is for.
    pub name: String,
    /// The user the key belongs to (owner budgets apply).
    pub owner: Option<Arc<str>>,
    /// The tier whose models and limits apply.
    pub tier: String,
    /// Active, suspended or revoked.
    pub status: KeyStatus,
    /// Unix milliseconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// The upstream key only this client uses (dedicated/hybrid strategies).
    pub dedicated_upstream: Option<String>,
    /// The upstream key region this client prefers.
    pub region: Option<String>,
    /// The masked secret, safe to log.
    pub masked: String,
    /// Permissions, limits, budgets, IP and origin rules.
    pub policy: crate::admission::KeyPolicy,
    /// The HMAC signing secret, opened: when present, every request must be signed
    /// with it (`admission::hmac::verify`). Its Debug never shows it.
    pub hmac_secret: Option<HmacSecret>,
}

impl ClientKey {
    /// The in-memory form of a stored key; its sealed HMAC signing secret, if any, is
    /// opened with `master`. A secret that cannot be opened is an error: the key is
    /// never used without it.
    pub fn from_record(r: KeyRecord, master: &MasterKey) -> Result<Self, SecretsError> {
        let hmac_secret = r
            .hmac_secret
            .as_deref()
            .map(|sealed| HmacSecret::open(sealed, master))
            .transpose()?;
        Ok(ClientKey {
            id: r.id.into(),
            name: r.name,
            owner: r.owner.map(Into::into),
            tier: r.tier,
            status: r.status,
            expires_at: r.expires_at,
            dedicated_upstream: r.dedicated_upstream,
            region: r.region,
            masked: r.masked,
            policy: r.policy,
            hmac_secret,
        })
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` or `x-api-key` header.
    #[error("missing API key")]
    MissingKey,
    /// The key is not one Tollgate issued.
    #[error("unknown API key")]
    UnknownKey,
    /// The key was revoked.
    #[error("revoked API key")]
    Revoked,
    /// The key is suspended.
    #[error("suspended API key")]
    Suspended,
    /// The key is past its expiry.
    #[error("expired API key")]
    Expired,
}

/// The secret a request presents: `Authorization: Bearer <key>`, else `x-api-key`.
pub fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    bearer.or_else(|| {
        let value = headers.get("x-api-key")?.to_str().ok()?.trim();
        (!value.is_empty()).then_some(value)
    })
}

fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None if value.eq_ignore_ascii_case("bearer") => return None,
        None => value,
    };
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_then_x_api_key() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", http::HeaderValue::from_static("tg-live-b"));
        assert_eq!(presented_key(&h), Some("tg-live-b"));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer tg-live-a"),
        );
        assert_eq!(presented_key(&h), Some("tg-live-a"));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer "),
        );
        // An empty or non-bearer Authorization falls back to x-api-key.
        assert_eq!(presented_key(&h), Some("tg-live-b"));
        h.remove("x-api-key");
        assert_eq!(presented_key(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic abc"),
        );
        assert_eq!(presented_key(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("tg-live-raw"),
        );
        assert_eq!(presented_key(&h), Some("tg-live-raw"));
    }
}
