//! A provider's pool of upstream keys: which key serves the next call (strategies,
//! region preference, dedicated keys), the quotas no key may exceed (rpm, tpm, daily
//! budget), and failover state (cooldowns, invalid keys).
//!
//! Each key has its own small lock ([`state::KeyState`]); the pool itself holds none
//! on the request path. The state is plain counters and windows so that it can move
//! to Redis (one script per pick) when replicas must share it.

mod lease;
mod order;
pub mod state;
mod stats;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

use http::HeaderValue;

pub use lease::Lease;
pub use state::{Demand, Headroom, Health};
pub use stats::KeyStats;

use crate::config::{Secret, Strategy};
use state::{KeyState, Refusal};

/// How long a call may wait for a key to come free before it gets 503.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// A key's quotas; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub daily_budget_nanos: Option<i64>,
}

/// How a key is chosen beside the strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyAttributes {
    pub limits: Limits,
    pub weight: u32,
    pub region: Option<String>,
    pub tier: Option<String>,
}

/// One upstream key: a public id, its secret (for providers that need one), its
/// quotas and its state.
#[derive(Debug)]
pub struct UpstreamKey {
    pub id: Arc<str>,
    secret: Option<Secret>,
    authorization: Option<HeaderValue>,
    api_key: Option<HeaderValue>,
    pub attributes: KeyAttributes,
    /// The stored row's last change (0 for configured keys): a changed stamp gives the
    /// key fresh live state when the pool's keys are replaced.
    stamp: i64,
    state: Mutex<KeyState>,
}

impl UpstreamKey {
    /// A key; `secret` is `None` for keyless servers.
    pub fn new(id: &str, secret: Option<Secret>, attributes: KeyAttributes) -> Self {
        let sensitive = |text: String| {
            let mut v = HeaderValue::from_str(&text).ok()?;
            v.set_sensitive(true);
            Some(v)
        };
        let api_key = secret
            .as_ref()
            .and_then(|s| sensitive(s.expose().to_owned()));
        let authorization = secret
            .as_ref()
            .and_then(|s| sensitive(format!("Bearer {}", s.expose())));
        UpstreamKey {
            id: id.into(),
            secret,
            authorization,
            api_key,
            attributes,
            stamp: 0,
            state: Mutex::new(KeyState::new(false)),
        }
    }

    /// The key with the stamp of its stored row (when it last changed).
    pub fn with_stamp(mut self, stamp: i64) -> Self {
        self.stamp = stamp;
        self
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

    /// Runs `f` on the key's state.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut KeyState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The key's health now.
    pub fn health(&self) -> Health {
        self.with_state(|s| s.health)
    }

    /// Takes the key out of rotation, or puts it back (clearing cooldown and
    /// invalidity).
    pub fn set_enabled(&self, enabled: bool) {
        self.with_state(|s| {
            s.health = if enabled {
                Health::Ok
            } else {
                Health::Disabled
            };
            s.consecutive_failures = 0;
        });
    }
}

/// Who is calling, for the strategies that care.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The upstream key id this client is bound to, if any.
    pub dedicated: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// No key can take the call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoUsableKey {
    /// When one may; `None` when none will without an operator.
    pub retry_after: Option<Duration>,
}

/// The keys of one provider and how one is picked.
#[derive(Debug)]
pub struct KeyPool {
    /// Swapped whole when keys are added, changed or removed at run time.
    set: ArcSwap<KeySet>,
    strategy: Strategy,
    cursor: AtomicUsize,
    /// When every key got a 429 at once (the account or IP is limited), the provider
    /// rests until this many milliseconds after `epoch`; 0: not resting.
    cooldown_until_ms: AtomicU64,
    epoch: Instant,
}

/// A pool's keys at one moment.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<UpstreamKey>>,
    /// Smooth weighted round-robin order of key indexes, one slot per unit of weight.
    weighted: Vec<usize>,
}

impl KeySet {
    fn new(keys: Vec<Arc<UpstreamKey>>) -> Self {
        let weights: Vec<u32> = keys.iter().map(|k| k.attributes.weight.max(1)).collect();
        KeySet {
            weighted: order::smooth_weighted(&weights),
            keys,
        }
    }
}

impl KeyPool {
    /// A pool over `keys`, choosing with `strategy`.
    pub fn new(keys: Vec<UpstreamKey>, strategy: Strategy) -> Self {
        KeyPool {
            set: ArcSwap::from_pointee(KeySet::new(keys.into_iter().map(Arc::new).collect())),
            strategy,
            cursor: AtomicUsize::new(0),
            cooldown_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Replaces the keys (run-time changes from the store): a key that stays, with the
    /// same secret, attributes and stamp, keeps its live state (an invalid key stays
    /// invalid); a key whose stored row changed (enabled again, updated) starts afresh;
    /// `enabled` false disables it.
    pub fn replace(&self, keys: Vec<(UpstreamKey, bool)>) {
        let current = self.set.load();
        let next: Vec<Arc<UpstreamKey>> = keys
            .into_iter()
            .map(|(key, enabled)| {
                let kept = current
                    .keys
                    .iter()
                    .find(|k| {
                        k.id == key.id
                            && k.secret == key.secret
                            && k.attributes == key.attributes
                            && k.stamp == key.stamp
                    })
                    .cloned();
                let key = kept.unwrap_or_else(|| Arc::new(key));
                let disabled = key.health() == Health::Disabled;
                if disabled == enabled {
                    key.set_enabled(enabled);
                }
                key
            })
            .collect();
        self.set.store(Arc::new(KeySet::new(next)));
    }

    /// [`KeyPool::pick_at`] the current time (calls pick at their own time).
    #[cfg(test)]
    pub fn pick(
        &self,
        caller: Caller<'_>,
        bound: &HashSet<Arc<str>>,
        tried: &[Arc<str>],
        demand: Demand,
    ) -> Result<Lease, NoUsableKey> {
        self.pick_at(caller, bound, tried, demand, crate::store::now_ms())
    }

    /// Picks and reserves a key for a call of `demand` at `now_ms` (Unix ms; the
    /// call's time, read once per call), skipping `tried` keys and keys bound to other
    /// clients (`bound`); answers when one may come free otherwise.
    pub fn pick_at(
        &self,
        caller: Caller<'_>,
        bound: &HashSet<Arc<str>>,
        tried: &[Arc<str>],
        demand: Demand,
        now_ms: i64,
    ) -> Result<Lease, NoUsableKey> {
        let now = Instant::now();
        let resting_until = self.cooldown_until_ms.load(Ordering::Relaxed);
        let since_epoch = now.duration_since(self.epoch).as_millis() as u64;
        if resting_until > since_epoch {
            return Err(NoUsableKey {
                retry_after: Some(Duration::from_millis(resting_until - since_epoch)),
            });
        }
        let set = self.set.load();
        let (today, _) = utc_day(now_ms);
        let mut soonest: Option<Duration> = None;
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        for index in order::candidates(&set, self.strategy, n, caller, bound, tried, now, today) {
            let key = &set.keys[index];
            match key.with_state(|s| s.reserve(&key.attributes.limits, demand, now, now_ms)) {
                Ok(reservation) => return Ok(Lease::new(key.clone(), reservation, now)),
                Err(Refusal::Wait(wait)) => soonest = Some(soonest.map_or(wait, |s| s.min(wait))),
                Err(Refusal::Unavailable) => {}
            }
        }
        Err(NoUsableKey {
            retry_after: soonest,
        })
    }

    /// [`KeyPool::pick_at`] `now_ms`, waiting up to [`MAX_WAIT`] for a key to come
    /// free.
    pub async fn pick_waiting(
        &self,
        caller: Caller<'_>,
        bound: &HashSet<Arc<str>>,
        tried: &[Arc<str>],
        demand: Demand,
        now_ms: i64,
    ) -> Result<Lease, NoUsableKey> {
        let mut now_ms = now_ms;
        let mut deadline: Option<Instant> = None;
        loop {
            let refused = match self.pick_at(caller, bound, tried, demand, now_ms) {
                Ok(lease) => return Ok(lease),
                Err(refused) => refused,
            };
            // The clock is read again only when the call has to wait.
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + MAX_WAIT);
            match refused.retry_after {
                Some(wait) if now + wait <= deadline => {
                    // Come back a little after the slot frees, so concurrent waiters
                    // do not all retry in the same instant.
                    let jitter = Duration::from_millis(rand::random_range(1..10));
                    tokio::time::sleep(wait + jitter).await;
                    now_ms = crate::store::now_ms();
                }
                _ => return Err(refused),
            }
        }
    }

    /// Called on a 429: when every usable key has now been told to wait, the
    /// provider itself rests until the soonest of them may go again.
    fn note_rate_limited(&self) {
        let now = Instant::now();
        let mut soonest: Option<Instant> = None;
        for key in &self.set.load().keys {
            match key.health() {
                Health::CoolingDown { until } if until > now => {
                    soonest = Some(soonest.map_or(until, |s| s.min(until)))
                }
                Health::Invalid | Health::Disabled => {}
                Health::Ok | Health::CoolingDown { .. } => return,
            }
        }
        if let Some(until) = soonest {
            let until_ms = until.duration_since(self.epoch).as_millis() as u64;
            self.cooldown_until_ms.store(until_ms, Ordering::Relaxed);
            tracing::warn!(
                retry_in_ms = until.saturating_duration_since(now).as_millis() as u64,
                "every key of the provider is rate limited; the provider cools down"
            );
        }
    }

    /// The pool's keys now.
    pub fn keys(&self) -> Vec<Arc<UpstreamKey>> {
        self.set.load().keys.clone()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.set.load().keys.len()
    }

    /// True when the pool has no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Days since the Unix epoch (UTC) at `now` (Unix ms), and the time left until the
/// next UTC midnight.
fn utc_day(now: i64) -> (i64, Duration) {
    let day_ms = 86_400_000;
    (
        now.div_euclid(day_ms),
        Duration::from_millis((day_ms - now.rem_euclid(day_ms)) as u64),
    )
}

#[cfg(test)]
mod tests;
