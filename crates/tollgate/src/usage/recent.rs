//! Recent calls and failures per provider, counted in memory as each call settles:
//! what `error_rate` alerts read (SPEC §9), instead of scanning the request log.
//!
//! A call counts in the second and in the minute it was received (its row's
//! `created_at_ms`). It is a failure when its status is 500 or more: every upstream
//! failure the client saw (502 `upstream_failed`, 503 `no_usable_upstream_key`, 504
//! `upstream_timeout`) and the gateway's own (503 `limits_unavailable`). Other 4xx
//! answers are the caller's doing (bad request, key, limit, budget): they count as
//! calls, not failures. 499 (`client_closed`: the client went away) counts as neither.
//! Windows up to [`SECOND_SLOTS`] seconds are summed second by second,
//! longer ones minute by minute (to the minute), up to [`MINUTE_SLOTS`] minutes.
//! The figures are this process's: they start empty at each start and do not include
//! other replicas' calls.

use std::sync::{Arc, Mutex, PoisonError};

use super::meter::CLIENT_CLOSED;
use super::UsageRow;
use crate::fast_map::FastDashMap;

/// Seconds kept one by one (15 minutes).
pub const SECOND_SLOTS: usize = 15 * 60;
/// Minutes kept one by one (a day and one more minute, for a whole day's window).
pub const MINUTE_SLOTS: usize = 24 * 60 + 1;

/// Calls and failures of one provider over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCounts {
    /// The provider that served (or failed) the calls; `None` for calls that ended
    /// before reaching one (refused, or failed in the gateway).
    pub provider: Option<String>,
    /// Calls in the window (499 `client_closed` excluded).
    pub requests: u64,
    /// Of those, answered with status 500 or more.
    pub failures: u64,
}

/// One time slot of a ring: which second (or minute) it holds, and its counts.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    at: i64,
    requests: u64,
    failures: u64,
}

/// A ring of slots, one per second or minute; a slot is reused once its time is
/// `len` units old.
#[derive(Debug)]
struct Ring {
    slots: Vec<Slot>,
}

impl Ring {
    fn new(len: usize) -> Ring {
        Ring {
            slots: vec![
                Slot {
                    at: -1,
                    ..Slot::default()
                };
                len
            ],
        }
    }

    fn index(&self, at: i64) -> usize {
        at.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Counts a call at time unit `at`; a call older than the ring is not counted.
    fn add(&mut self, at: i64, failed: bool) {
        let index = self.index(at);
        let slot = &mut self.slots[index];
        if slot.at < at {
            *slot = Slot {
                at,
                requests: 0,
                failures: 0,
            };
        }
        if slot.at == at {
            slot.requests += 1;
            slot.failures += u64::from(failed);
        }
    }

    /// Sums the `units` time units that end with `now` (inclusive).
    fn sum(&self, now: i64, units: usize) -> (u64, u64) {
        let units = units.min(self.slots.len()) as i64;
        let mut total = (0, 0);
        for at in (now - units + 1)..=now {
            let slot = &self.slots[self.index(at)];
            if slot.at == at {
                total.0 += slot.requests;
                total.1 += slot.failures;
            }
        }
        total
    }
}

/// One provider's rings.
#[derive(Debug)]
struct Tally {
    seconds: Ring,
    minutes: Ring,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            seconds: Ring::new(SECOND_SLOTS),
            minutes: Ring::new(MINUTE_SLOTS),
        }
    }
}

/// Recent calls per provider (see the module notes).
#[derive(Debug)]
pub struct RecentCalls {
    /// Provider names come from the configuration: a bounded set.
    by_provider: FastDashMap<Arc<str>, Mutex<Tally>>,
    /// Calls that reached no provider.
    gateway: Mutex<Tally>,
}

impl Default for RecentCalls {
    fn default() -> Self {
        RecentCalls {
            by_provider: FastDashMap::default(),
            gateway: Mutex::new(Tally::new()),
        }
    }
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecentCalls {
    /// Counts a settled call.
    pub fn record(&self, row: &UsageRow) {
        if row.status == CLIENT_CLOSED {
            return;
        }
        let second = row.created_at_ms.div_euclid(1000);
        let failed = row.status >= 500;
        let count = |tally: &Mutex<Tally>| {
            let mut tally = lock(tally);
            tally.seconds.add(second, failed);
            tally.minutes.add(second.div_euclid(60), failed);
        };
        match &row.provider {
            None => count(&self.gateway),
            Some(name) => match self.by_provider.get(&**name) {
                Some(tally) => count(&tally),
                None => count(
                    &self
                        .by_provider
                        .entry(name.clone())
                        .or_insert_with(|| Mutex::new(Tally::new())),
                ),
            },
        }
    }

    /// Calls and failures per provider received in the `window_s` seconds up to
    /// `now_ms`, in provider order (calls that reached none first); providers without
    /// calls in the window are left out.
    pub fn counts(&self, window_s: u64, now_ms: i64) -> Vec<CallCounts> {
        let now_s = now_ms.div_euclid(1000);
        let sum = |tally: &Mutex<Tally>| {
            let tally = lock(tally);
            if window_s as usize <= SECOND_SLOTS {
                tally.seconds.sum(now_s, window_s as usize)
            } else {
                let minutes = window_s.div_ceil(60) as usize;
                tally.minutes.sum(now_s.div_euclid(60), minutes)
            }
        };
        let mut out: Vec<CallCounts> = std::iter::once((None, sum(&self.gateway)))
            .chain(
                self.by_provider
                    .iter()
                    .map(|entry| (Some(entry.key().to_string()), sum(entry.value()))),
            )
            .filter(|(_, (requests, _))| *requests > 0)
            .map(|(provider, (requests, failures))| CallCounts {
                provider,
                requests,
                failures,
            })
            .collect();
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(provider: Option<&str>, at_ms: i64, status: u16) -> UsageRow {
        UsageRow {
            provider: provider.map(Arc::from),
            created_at_ms: at_ms,
            status,
            ..UsageRow::default()
        }
    }

    fn counts(provider: Option<&str>, requests: u64, failures: u64) -> CallCounts {
        CallCounts {
            provider: provider.map(str::to_owned),
            requests,
            failures,
        }
    }

    const T: i64 = 1_796_646_238_000;

    #[test]
    fn the_minutes_cover_the_longest_error_rate_window() {
        let longest = crate::config::alerts::MAX_ERROR_RATE_WINDOW.as_secs();
        assert!(longest.div_ceil(60) as usize <= MINUTE_SLOTS);
    }

    #[test]
    fn counts_calls_and_failures_per_provider_in_the_window() {
        let recent = RecentCalls::default();
        recent.record(&call(Some("oa"), T - 61_000, 500)); // outside a 60 s window
        recent.record(&call(Some("oa"), T - 59_000, 200));
        recent.record(&call(Some("oa"), T - 1_000, 502));
        recent.record(&call(Some("oa"), T, 429)); // refused, not a failure
        recent.record(&call(Some("oa"), T, 499)); // the client left: not counted
        recent.record(&call(Some("an"), T - 30_000, 200));
        recent.record(&call(None, T, 503));
        assert_eq!(
            recent.counts(60, T),
            [
                counts(None, 1, 1),
                counts(Some("an"), 1, 0),
                counts(Some("oa"), 3, 1),
            ]
        );
        assert_eq!(
            recent.counts(62, T),
            [
                counts(None, 1, 1),
                counts(Some("an"), 1, 0),
                counts(Some("oa"), 4, 2),
            ]
        );
        assert_eq!(
            recent.counts(1, T),
            [counts(None, 1, 1), counts(Some("oa"), 1, 0)]
        );
        assert_eq!(
            recent.counts(60, T + 120_000),
            [],
            "all of it is older than the window"
        );
    }

    #[test]
    fn long_windows_count_by_the_minute_up_to_a_day() {
        let recent = RecentCalls::default();
        let minute = 60_000;
        recent.record(&call(Some("oa"), T - 23 * 3600 * 1000, 500));
        recent.record(&call(Some("oa"), T - 2 * 3600 * 1000, 200));
        recent.record(&call(Some("oa"), T - 20 * minute, 200));
        recent.record(&call(Some("oa"), T, 200));
        assert_eq!(recent.counts(24 * 3600, T), [counts(Some("oa"), 4, 1)]);
        assert_eq!(recent.counts(3 * 3600, T), [counts(Some("oa"), 3, 0)]);
        assert_eq!(recent.counts(30 * 60, T), [counts(Some("oa"), 2, 0)]);
        // Fifteen minutes and less: second by second.
        assert_eq!(recent.counts(15 * 60, T), [counts(Some("oa"), 1, 0)]);
    }

    #[test]
    fn a_slot_is_reused_once_its_time_has_passed_and_late_calls_count_where_they_can() {
        let recent = RecentCalls::default();
        let ring = SECOND_SLOTS as i64 * 1000;
        recent.record(&call(Some("oa"), T - ring, 500));
        recent.record(&call(Some("oa"), T, 200)); // the same second slot, a ring later
                                                  // A call that settles late, received before the slot's current second: too
                                                  // old for the seconds, still counted in its minute.
        recent.record(&call(Some("oa"), T - ring, 500));
        assert_eq!(recent.counts(60, T), [counts(Some("oa"), 1, 0)]);
        assert_eq!(recent.counts(20 * 60, T), [counts(Some("oa"), 3, 2)]);
    }

    #[test]
    fn calls_in_flight_from_many_threads_are_all_counted() {
        let recent = Arc::new(RecentCalls::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let recent = recent.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let provider = if t % 2 == 0 { "oa" } else { "an" };
                        let status = if i % 2 == 0 { 200 } else { 500 };
                        recent.record(&call(Some(provider), T - (i % 30) * 1000, status));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a counting thread panicked");
        }
        assert_eq!(
            recent.counts(60, T),
            [
                counts(Some("an"), 4000, 2000),
                counts(Some("oa"), 4000, 2000)
            ]
        );
    }
}
