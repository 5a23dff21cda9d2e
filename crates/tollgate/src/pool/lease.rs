//! A picked key, with its reservation: the call reports how it went, and the usage
//! settles the reservation (or dropping the lease gives it back).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{Headroom, Health, Reservation};
use super::{KeyPool, UpstreamKey};
use crate::providers::{UpstreamError, UpstreamErrorKind};

/// How long a 429 without `Retry-After` keeps a key out.
pub const DEFAULT_RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(60);
/// The longest cooldown after consecutive failures (5xx, timeouts, connect errors).
pub const MAX_FAILURE_COOLDOWN: Duration = Duration::from_secs(30);

/// A key reserved for one call.
#[derive(Debug)]
pub struct Lease {
    key: Arc<UpstreamKey>,
    reservation: Option<Reservation>,
    /// When the key was picked: the time an answer's headroom is kept under.
    picked_at: Instant,
}

impl Lease {
    pub(super) fn new(key: Arc<UpstreamKey>, reservation: Reservation, picked_at: Instant) -> Self {
        Lease {
            key,
            reservation: Some(reservation),
            picked_at,
        }
    }

    /// The key.
    pub fn key(&self) -> &Arc<UpstreamKey> {
        &self.key
    }

    /// The call succeeded: failures are forgotten and the upstream's reported
    /// headroom is kept for `least_loaded`.
    pub fn succeeded(&self, headroom: Option<Headroom>) {
        self.key.with_state(|s| {
            s.consecutive_failures = 0;
            if let Some(h) = headroom {
                s.headroom = Some((h, self.picked_at));
            }
        });
    }

    /// The call failed: a 429 rests the key until the upstream's time (default 60 s),
    /// a 401/403 takes it out of rotation, a 5xx, timeout or connect error rests it
    /// briefly (longer with each consecutive failure). The reservation is released.
    pub fn failed(mut self, error: &UpstreamError, pool: &KeyPool) {
        let now = Instant::now();
        let mut rate_limited = false;
        self.key.with_state(|s| {
            *s.counters.errors.entry(error.label()).or_insert(0) += 1;
            match (error.kind, error.status) {
                (UpstreamErrorKind::Status, Some(429)) => {
                    let wait = error.retry_after.unwrap_or(DEFAULT_RATE_LIMIT_COOLDOWN);
                    s.health = Health::CoolingDown { until: now + wait };
                    rate_limited = true;
                }
                (UpstreamErrorKind::Status, Some(401 | 403)) => {
                    s.health = Health::Invalid;
                    tracing::error!(upstream_key = %self.key.id, status = error.status, "the upstream refused this key; it is out of rotation until re-enabled");
                }
                (UpstreamErrorKind::Status, Some(500..=599)) | (UpstreamErrorKind::Timeout | UpstreamErrorKind::Connect | UpstreamErrorKind::BadResponse, _) => {
                    s.consecutive_failures += 1;
                    let backoff = Duration::from_secs(1) * 2u32.saturating_pow(s.consecutive_failures.saturating_sub(1).min(5));
                    s.health = Health::CoolingDown { until: now + backoff.min(MAX_FAILURE_COOLDOWN) };
                }
                // The request itself was refused: nothing wrong with the key.
                (UpstreamErrorKind::Status, _) => {}
            }
            if let Some(r) = self.reservation.take() {
                s.release(r);
            }
        });
        if rate_limited {
            pool.note_rate_limited();
        }
    }

    /// Settles the reservation with the call's real tokens and cost.
    pub fn settle(mut self, tokens: u64, cost_nanos: i64) {
        if let Some(r) = self.reservation.take() {
            self.key.with_state(|s| s.settle(r, tokens, cost_nanos));
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.reservation.take() {
            self.key.with_state(|s| s.release(r));
        }
    }
}
