//! Nonces seen by this process, for replay protection of signed requests when the
//! counters are in-process (with Redis, `SET NX EX` does the same across replicas).

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// Entries past which expired nonces are purged.
const PURGE_AT: usize = 65_536;

/// Nonces with the Unix millisecond at which each may be used again.
#[derive(Debug)]
pub struct ReplaySet {
    seen: DashMap<String, i64>,
    /// Size that triggers the next purge: doubled while the live nonces fill it, so a
    /// busy set is not scanned on every claim.
    purge_at: AtomicUsize,
}

impl Default for ReplaySet {
    fn default() -> Self {
        ReplaySet {
            seen: DashMap::new(),
            purge_at: AtomicUsize::new(PURGE_AT),
        }
    }
}

impl ReplaySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `nonce` for `ttl_s` seconds (at least 1) from now; true when it was
    /// not seen (or its time had run out).
    pub fn claim(&self, nonce: &str, ttl_s: u64) -> bool {
        self.claim_at(nonce, ttl_s, chrono::Utc::now().timestamp_millis())
    }

    /// [`ReplaySet::claim`] at `now_ms`.
    pub fn claim_at(&self, nonce: &str, ttl_s: u64, now_ms: i64) -> bool {
        let ttl_ms = i64::try_from(ttl_s.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let until = now_ms.saturating_add(ttl_ms);
        let fresh = match self.seen.entry(nonce.to_owned()) {
            Entry::Occupied(mut e) => {
                if *e.get() > now_ms {
                    false
                } else {
                    e.insert(until);
                    true
                }
            }
            Entry::Vacant(e) => {
                e.insert(until);
                true
            }
        };
        if fresh && self.seen.len() > self.purge_at.load(Ordering::Relaxed) {
            self.purge(now_ms);
        }
        fresh
    }

    /// Drops the nonces whose time has run out.
    fn purge(&self, now_ms: i64) {
        self.seen.retain(|_, until| *until > now_ms);
        let next = (self.seen.len() * 2).max(PURGE_AT);
        self.purge_at.store(next, Ordering::Relaxed);
    }

    /// Nonces held (live or not yet purged).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_nonce_is_fresh_once_until_it_expires() {
        let set = ReplaySet::new();
        assert!(set.claim_at("n1", 10, 1_000));
        assert!(!set.claim_at("n1", 10, 5_000));
        assert!(set.claim_at("n2", 10, 5_000));
        assert!(set.claim_at("n1", 10, 11_000));
        assert!(!set.claim_at("n1", 10, 12_000));
    }

    #[test]
    fn expired_nonces_are_purged_when_the_set_grows() {
        let set = ReplaySet::new();
        for i in 0..PURGE_AT {
            assert!(set.claim_at(&format!("old{i}"), 1, 0));
        }
        assert_eq!(set.len(), PURGE_AT);
        // Past the size, a claim after they expired purges them.
        assert!(set.claim_at("new", 60, 10_000));
        assert_eq!(set.len(), 1);
    }
}
