//! One upstream key's changing state: health (cooling down, invalid), quota windows
//! (requests and tokens in the last 60 s, spend today), the headroom the upstream
//! reported, and counters. Held behind the key's own lock; never a pool-wide one.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::Limits;

/// The sliding window quotas are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Whether a key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Resting after a 429 or failures, until the given time.
    CoolingDown {
        until: Instant,
    },
    /// Refused by the upstream (401/403): out of rotation until re-enabled.
    Invalid,
    /// Taken out of rotation by an operator.
    Disabled,
}

/// The remaining quota the upstream last reported (`x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headroom {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

impl Headroom {
    /// The used share of the tightest limit the upstream reported, 0.0 to 1.0.
    pub fn utilization(&self) -> Option<f64> {
        let share = |remaining: Option<u64>, limit: Option<u64>| match (remaining, limit) {
            (Some(r), Some(l)) if l > 0 => Some(1.0 - (r.min(l) as f64 / l as f64)),
            _ => None,
        };
        let shares = [
            share(self.remaining_requests, self.limit_requests),
            share(self.remaining_tokens, self.limit_tokens),
        ];
        shares.into_iter().flatten().reduce(f64::max)
    }
}

/// What one call is expected to use, reserved when the key is picked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    pub tokens: u64,
    pub cost_nanos: i64,
}

/// Per-key counters, as reported by stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub tokens: u64,
    pub spend_nanos: i64,
    pub last_used_ms: Option<i64>,
}

/// Why a key cannot take a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It may, after this long.
    Wait(Duration),
    /// Not until an operator acts.
    Unavailable,
}

/// A key's state.
#[derive(Debug)]
pub struct KeyState {
    pub health: Health,
    pub consecutive_failures: u32,
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64, u64)>,
    next_entry: u64,
    day: i64,
    spent_today_nanos: i64,
    reserved_nanos: i64,
    pub headroom: Option<(Headroom, Instant)>,
    pub counters: Counters,
}

/// A reservation made by [`KeyState::reserve`], settled or released later.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    entry: u64,
    cost_nanos: i64,
}

impl KeyState {
    /// A healthy key with empty windows.
    pub fn new(disabled: bool) -> Self {
        KeyState {
            health: if disabled {
                Health::Disabled
            } else {
                Health::Ok
            },
            consecutive_failures: 0,
            requests: VecDeque::new(),
            tokens: VecDeque::new(),
            next_entry: 0,
            day: 0,
            spent_today_nanos: 0,
            reserved_nanos: 0,
            headroom: None,
            counters: Counters::default(),
        }
    }

    fn roll(&mut self, now: Instant, today: i64) {
        while self
            .requests
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.requests.pop_front();
        }
        while self
            .tokens
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) >= WINDOW)
        {
            self.tokens.pop_front();
        }
        if today != self.day {
            self.day = today;
            self.spent_today_nanos = 0;
        }
        if let Health::CoolingDown { until } = self.health {
            if until <= now {
                self.health = Health::Ok;
            }
        }
    }

    /// Takes one call of `demand` if health and every quota allow it, counting it in
    /// the windows; otherwise says when to come back.
    pub fn reserve(
        &mut self,
        limits: &Limits,
        demand: Demand,
        now: Instant,
        now_ms: i64,
    ) -> Result<Reservation, Refusal> {
        let (today, until_tomorrow) = super::utc_day(now_ms);
        self.roll(now, today);
        match self.health {
            Health::Ok => {}
            Health::CoolingDown { until } => {
                return Err(Refusal::Wait(until.saturating_duration_since(now)))
            }
            Health::Invalid | Health::Disabled => return Err(Refusal::Unavailable),
        }
        if let Some(rpm) = limits.rpm {
            if self.requests.len() as u64 >= u64::from(rpm) {
                let oldest = self.requests.front().copied().unwrap_or(now);
                return Err(Refusal::Wait(
                    (oldest + WINDOW).saturating_duration_since(now),
                ));
            }
        }
        if let Some(tpm) = limits.tpm {
            // A call larger than the whole per-minute allowance counts as the allowance,
            // so it can still go once the window is empty.
            let wanted = demand.tokens.min(u64::from(tpm));
            let used: u64 = self.tokens.iter().map(|(_, _, n)| n).sum();
            if used + wanted > u64::from(tpm) {
                let mut freed = 0;
                let mut wait = WINDOW;
                for (at, _, n) in &self.tokens {
                    freed += n;
                    if used - freed + wanted <= u64::from(tpm) {
                        wait = (*at + WINDOW).saturating_duration_since(now);
                        break;
                    }
                }
                return Err(Refusal::Wait(wait));
            }
        }
        if let Some(budget) = limits.daily_budget_nanos {
            if self.spent_today_nanos + self.reserved_nanos + demand.cost_nanos > budget {
                return Err(Refusal::Wait(until_tomorrow));
            }
        }
        // Windows are kept only for the quotas a key has: an unlimited key would
        // otherwise hold a minute of timestamps at full traffic.
        if limits.rpm.is_some() {
            self.requests.push_back(now);
        }
        let entry = self.next_entry;
        self.next_entry += 1;
        if limits.tpm.is_some() {
            let wanted = limits
                .tpm
                .map_or(demand.tokens, |tpm| demand.tokens.min(u64::from(tpm)));
            self.tokens.push_back((now, entry, wanted));
        }
        self.reserved_nanos += demand.cost_nanos;
        self.counters.requests += 1;
        self.counters.last_used_ms = Some(now_ms);
        Ok(Reservation {
            entry,
            cost_nanos: demand.cost_nanos,
        })
    }

    /// Replaces a reservation with what the call really used.
    pub fn settle(&mut self, reservation: Reservation, tokens: u64, cost_nanos: i64) {
        if let Some(slot) = self
            .tokens
            .iter_mut()
            .find(|(_, id, _)| *id == reservation.entry)
        {
            slot.2 = tokens;
        }
        self.reserved_nanos -= reservation.cost_nanos;
        self.spent_today_nanos += cost_nanos;
        self.counters.tokens += tokens;
        self.counters.spend_nanos += cost_nanos;
    }

    /// Gives back a reservation the call did not use (it failed before any usage).
    pub fn release(&mut self, reservation: Reservation) {
        self.tokens.retain(|(_, id, _)| *id != reservation.entry);
        self.reserved_nanos -= reservation.cost_nanos;
    }

    /// The used share of the key's tightest quota, 0.0 to 1.0 (and above, when the
    /// upstream says so).
    pub fn utilization(&mut self, limits: &Limits, now: Instant, today: i64) -> f64 {
        self.roll(now, today);
        let mut shares = Vec::with_capacity(4);
        if let Some(rpm) = limits.rpm {
            shares.push(self.requests.len() as f64 / f64::from(rpm.max(1)));
        }
        if let Some(tpm) = limits.tpm {
            shares.push(
                self.tokens.iter().map(|(_, _, n)| *n).sum::<u64>() as f64 / f64::from(tpm.max(1)),
            );
        }
        if let Some(budget) = limits.daily_budget_nanos.filter(|b| *b > 0) {
            shares.push((self.spent_today_nanos + self.reserved_nanos) as f64 / budget as f64);
        }
        if let Some((headroom, seen)) = self.headroom {
            if now.duration_since(seen) < WINDOW {
                shares.extend(headroom.utilization());
            }
        }
        shares.into_iter().fold(0.0, f64::max)
    }

    /// Calls admitted in the current window (for tests and stats).
    pub fn requests_in_window(&self) -> usize {
        self.requests.len()
    }
}
