//! A provider's pool of upstream keys and how the next one is chosen.
//!
//! This version rotates round-robin and skips keys already tried for the request;
//! strategies, quotas and cooldowns (SPEC §5) build on [`KeyPool::pick`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderValue;

use crate::config::Secret;

/// One upstream key: a public id and, for providers that need one, its secret.
#[derive(Debug)]
pub struct UpstreamKey {
    pub id: Arc<str>,
    secret: Option<Secret>,
    authorization: Option<HeaderValue>,
    api_key: Option<HeaderValue>,
}

impl UpstreamKey {
    /// A key; `secret` is `None` for keyless servers.
    pub fn new(id: &str, secret: Option<Secret>) -> Self {
        let api_key = secret.as_ref().and_then(|s| {
            let mut v = HeaderValue::from_str(s.expose()).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        let authorization = secret.as_ref().and_then(|s| {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", s.expose())).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        UpstreamKey {
            id: id.into(),
            secret,
            authorization,
            api_key,
        }
    }

    /// The `Authorization` header value, if the key has a secret.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    /// The bare secret as a header value (`x-api-key`), if the key has one.
    pub fn api_key(&self) -> Option<&HeaderValue> {
        self.api_key.as_ref()
    }

    /// Replaces the secret wherever it appears in `text` (e.g. an upstream error).
    pub fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(s) if s.expose().len() >= 8 && text.contains(s.expose()) => {
                text.replace(s.expose(), &format!("<upstream key {}>", self.id))
            }
            _ => text.to_owned(),
        }
    }
}

/// The keys of one provider.
#[derive(Debug)]
pub struct KeyPool {
    keys: Vec<Arc<UpstreamKey>>,
    cursor: AtomicUsize,
}

impl KeyPool {
    /// A pool over `keys`.
    pub fn new(keys: Vec<UpstreamKey>) -> Self {
        KeyPool {
            keys: keys.into_iter().map(Arc::new).collect(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next key in rotation that is not in `tried`.
    pub fn pick(&self, tried: &[Arc<str>]) -> Option<Arc<UpstreamKey>> {
        let n = self.keys.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.keys[(start + i) % n])
            .find(|k| !tried.iter().any(|t| *t == k.id))
            .cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the pool has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_skips_tried_keys() {
        let pool = KeyPool::new(vec![
            UpstreamKey::new("a", None),
            UpstreamKey::new("b", None),
        ]);
        let first = pool.pick(&[]).expect("key").id.clone();
        let second = pool.pick(&[]).expect("key").id.clone();
        assert_ne!(first, second);
        let tried: Vec<Arc<str>> = vec!["a".into()];
        assert_eq!(&*pool.pick(&tried).expect("key").id, "b");
        let all: Vec<Arc<str>> = vec!["a".into(), "b".into()];
        assert!(pool.pick(&all).is_none());
    }

    #[test]
    fn scrub_hides_the_secret() {
        let key = UpstreamKey::new("oa-1", Some(Secret::new("sk-secret-value-123")));
        assert_eq!(
            key.scrub("bad key sk-secret-value-123!"),
            "bad key <upstream key oa-1>!"
        );
        assert!(format!("{key:?}").contains("Secret(****)"));
    }
}
