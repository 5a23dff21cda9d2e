//! The in-memory index of client keys that every request is checked against, and
//! the task that keeps it in step with the database.
//!
//! Reads are lock-free (`ArcSwap`); the refresher polls the store's change counter
//! and swaps in a new map when it moves, so a key created or revoked by the CLI or
//! another replica applies within [`REFRESH_EVERY`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::secret::{self, SecretHash};
use super::{AuthError, ClientKey};
use crate::fast_map::FastMap;
use crate::secrets::MasterKey;
use crate::store::{KeyStatus, Store, StoreError};

/// How often the refresher polls the change counter.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// Client keys by secret hash.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: ArcSwap<FastMap<SecretHash, Arc<ClientKey>>>,
    /// Upstream key ids some active client is bound to: nobody else uses them.
    bound_upstreams: ArcSwap<HashSet<Arc<str>>>,
    /// One reload at a time: an admin write reloads while the refresher may be
    /// reloading too, and a slower reload that read the keys earlier must not swap
    /// in its older map after a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl KeyIndex {
    /// Loads every key from the store; `master` opens sealed HMAC signing secrets.
    pub async fn load(store: &Store, master: &MasterKey) -> Result<(KeyIndex, i64), StoreError> {
        let index = KeyIndex::default();
        let revision = index.reload(store, master).await?;
        Ok((index, revision))
    }

    /// Replaces the index with the store's current keys; returns the revision read.
    /// A key whose HMAC signing secret cannot be opened with `master` is logged by id
    /// and left out (it is refused as unknown): it is never served unsigned.
    pub async fn reload(&self, store: &Store, master: &MasterKey) -> Result<i64, StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let revision = store.keys_revision().await?;
        let mut map = FastMap::default();
        let mut bound = HashSet::new();
        for record in store.list_keys().await? {
            if let (Some(upstream), KeyStatus::Active) = (&record.dedicated_upstream, record.status)
            {
                bound.insert(Arc::from(upstream.as_str()));
            }
            let Some(hash) = secret::parse_hash_hex(&record.secret_hash) else {
                tracing::error!(key_id = %record.id, "stored key hash is malformed; key skipped");
                continue;
            };
            let id = record.id.clone();
            match ClientKey::from_record(record, master) {
                Ok(key) => {
                    map.insert(hash, Arc::new(key));
                }
                Err(e) => {
                    tracing::error!(key_id = %id, error = %e, "the key's HMAC signing secret cannot be opened with the current master key; key skipped until it can");
                }
            }
        }
        self.keys.store(Arc::new(map));
        self.bound_upstreams.store(Arc::new(bound));
        Ok(revision)
    }

    /// Checks a presented secret: unknown, revoked, suspended and expired keys are refused.
    pub fn authenticate(&self, presented: &str, now_ms: i64) -> Result<Arc<ClientKey>, AuthError> {
        let hash = secret::hash(presented);
        let key = self
            .keys
            .load()
            .get(&hash)
            .cloned()
            .ok_or(AuthError::UnknownKey)?;
        match key.status {
            KeyStatus::Active => {}
            KeyStatus::Suspended => return Err(AuthError::Suspended),
            KeyStatus::Revoked => return Err(AuthError::Revoked),
        }
        if key.expires_at.is_some_and(|t| t <= now_ms) {
            return Err(AuthError::Expired);
        }
        Ok(key)
    }

    /// Upstream key ids bound to a client (see [`ClientKey::dedicated_upstream`]).
    pub fn bound_upstreams(&self) -> Arc<HashSet<Arc<str>>> {
        self.bound_upstreams.load_full()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Polls the store until `stop` and reloads the index whenever the keys change;
/// `master` opens sealed HMAC signing secrets.
pub async fn refresh_until(
    index: Arc<KeyIndex>,
    store: Store,
    master: MasterKey,
    mut revision: i64,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.keys_revision().await {
            Ok(current) if current == revision => {}
            Ok(_) => match index.reload(&store, &master).await {
                Ok(new_revision) => {
                    revision = new_revision;
                    tracing::debug!(keys = index.len(), "client key index reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "client key reload failed; keeping the previous keys")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the client key revision; keeping the current keys")
            }
        }
    }
}
