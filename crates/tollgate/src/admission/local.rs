//! The in-process counter backend: one small lock per client key and per owner (and
//! one for the global budget, taken only when a global budget is set). An admission
//! holds the locks it needs, key → owner → global, for a few comparisons; never
//! across an await.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::fast_map::FastDashMap;

use super::counters::*;
use super::windows::{Periods, MINUTE_BUCKETS};

/// Counters of this process.
#[derive(Debug, Default)]
pub struct LocalCounters {
    keys: FastDashMap<Arc<str>, Arc<Mutex<KeyCounters>>>,
    owners: FastDashMap<Arc<str>, Arc<Mutex<SpendCounters>>>,
    global: Mutex<SpendCounters>,
}

/// One client key's windows.
#[derive(Debug, Default)]
struct KeyCounters {
    minute: MinuteRing,
    hour: (i64, u64),
    day: Tally,
    month: Tally,
}

impl KeyCounters {
    /// Empties the calendar windows that have ended.
    fn advance(&mut self, p: &Periods) {
        self.day.current(p.day);
        self.month.current(p.month);
        if self.hour.0 != p.hour {
            self.hour = (p.hour, 0);
        }
    }

    /// (used, seconds to reset) of each limit, in [`LimitKind::ALL`] order; an empty
    /// minute resets in `empty_minute_reset_s`.
    fn windows(&self, p: &Periods, empty_minute_reset_s: u64) -> [(u64, u64); 6] {
        let (minute_requests, minute_tokens) = self.minute.sums(p.second);
        let minute_reset = self
            .minute
            .reset_s(p.second)
            .unwrap_or(empty_minute_reset_s);
        [
            (minute_requests, minute_reset),
            (self.hour.1, p.hour_reset_s()),
            (self.day.requests, p.day_reset_s()),
            (minute_tokens, minute_reset),
            (self.day.tokens, p.day_reset_s()),
            (self.month.tokens, p.month_reset_s()),
        ]
    }
}

/// Owner or global spend.
#[derive(Debug, Default)]
struct SpendCounters {
    day: Tally,
    month: Tally,
}

/// Counts in one calendar window, identified by its period number.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    period: i64,
    requests: u64,
    /// Settled tokens plus the estimates of calls not yet settled.
    tokens: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    spent: i64,
    reserved: i64,
}

impl Tally {
    /// This tally, emptied when `period` has moved on.
    fn current(&mut self, period: i64) -> &mut Tally {
        if self.period != period {
            *self = Tally {
                period,
                ..Tally::default()
            };
        }
        self
    }

    fn committed(&self) -> i64 {
        self.spent + self.reserved
    }
}

/// Requests and tokens per second over the last [`MINUTE_BUCKETS`] seconds.
#[derive(Debug)]
struct MinuteRing {
    slots: [(i64, u64, u64); MINUTE_BUCKETS as usize],
}

impl Default for MinuteRing {
    fn default() -> Self {
        MinuteRing {
            slots: [(i64::MIN, 0, 0); MINUTE_BUCKETS as usize],
        }
    }
}

impl MinuteRing {
    fn live(&self, now_s: i64) -> impl Iterator<Item = &(i64, u64, u64)> {
        self.slots
            .iter()
            .filter(move |(s, _, _)| *s > now_s - MINUTE_BUCKETS && *s <= now_s)
    }

    /// Requests and tokens in the window ending at `now_s`.
    fn sums(&self, now_s: i64) -> (u64, u64) {
        self.live(now_s)
            .fold((0, 0), |(r, t), (_, rr, tt)| (r + rr, t + tt))
    }

    /// Seconds until the oldest counted second leaves the window; `None` when the
    /// window is empty.
    fn reset_s(&self, now_s: i64) -> Option<u64> {
        self.live(now_s)
            .filter(|(_, r, t)| *r > 0 || *t > 0)
            .map(|(s, _, _)| (s + MINUTE_BUCKETS - now_s).max(1) as u64)
            .min()
    }

    fn slot(&mut self, second: i64) -> &mut (i64, u64, u64) {
        let slot = &mut self.slots[second.rem_euclid(MINUTE_BUCKETS) as usize];
        if slot.0 != second {
            *slot = (second, 0, 0);
        }
        slot
    }

    fn add(&mut self, second: i64, tokens: u64) {
        let slot = self.slot(second);
        slot.1 += 1;
        slot.2 += tokens;
    }

    /// Corrects a settled call's tokens, if its second is still in the window.
    fn adjust_tokens(&mut self, second: i64, reserved: u64, actual: u64) {
        let slot = &mut self.slots[second.rem_euclid(MINUTE_BUCKETS) as usize];
        if slot.0 == second {
            slot.2 = (slot.2 + actual).saturating_sub(reserved);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalCounters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&self, id: &Arc<str>) -> Arc<Mutex<KeyCounters>> {
        if let Some(k) = self.keys.get(id) {
            return k.clone();
        }
        self.keys.entry(id.clone()).or_default().clone()
    }

    fn owner(&self, id: &Arc<str>) -> Arc<Mutex<SpendCounters>> {
        if let Some(o) = self.owners.get(id) {
            return o.clone();
        }
        self.owners.entry(id.clone()).or_default().clone()
    }

    /// Decides one call and counts it when admitted.
    pub fn admit(&self, ask: &Ask) -> Result<Admitted, Box<Refusal>> {
        let p = Periods::at(ask.now_ms);
        let key_cell = self.key(&ask.key_id);
        let mut key_guard = lock(&key_cell);
        let key = &mut *key_guard;
        let owner_cell = match (&ask.owner, ask.owner_budgets.is_empty()) {
            (Some(owner), false) => Some(self.owner(owner)),
            _ => None,
        };
        let mut owner = owner_cell.as_deref().map(lock);
        let mut global = (!ask.global_budgets.is_empty()).then(|| lock(&self.global));

        // Bring every window to the present.
        key.advance(&p);
        for spend in owner
            .iter_mut()
            .map(|o| &mut **o)
            .chain(global.iter_mut().map(|g| &mut **g))
        {
            spend.day.current(p.day);
            spend.month.current(p.month);
        }

        // Budgets, before this call: [(scope, period, limit, committed)].
        let mut budgets: Vec<(Scope, BudgetPeriod, i64, i64)> = Vec::new();
        let mut add = |scope, b: &BudgetNanos, day: &Tally, month: &Tally| {
            if let Some(l) = b.daily {
                budgets.push((scope, BudgetPeriod::Daily, l, day.committed()));
            }
            if let Some(l) = b.monthly {
                budgets.push((scope, BudgetPeriod::Monthly, l, month.committed()));
            }
        };
        add(Scope::Key, &ask.key_budgets, &key.day, &key.month);
        if let Some(o) = &owner {
            add(Scope::Owner, &ask.owner_budgets, &o.day, &o.month);
        }
        if let Some(g) = &global {
            add(Scope::Global, &ask.global_budgets, &g.day, &g.month);
        }
        let past_soft = budgets.iter().any(|(_, _, limit, committed)| {
            *committed as f64 >= *limit as f64 * ask.soft_threshold
        });
        let (estimate, downgraded) = match ask.downgrade {
            Some(cheaper) if past_soft => (cheaper, true),
            _ => (ask.estimate, false),
        };

        // Rate limits: [(kind, limit, used, reset_s)].
        // A call counted into an empty minute frees it a whole window later.
        let windows = key.windows(&p, MINUTE_BUCKETS as u64);
        let set: Vec<(LimitKind, u64, u64, u64)> = LimitKind::ALL
            .into_iter()
            .zip(windows)
            .filter_map(|(kind, (used, reset_s))| {
                kind.of(&ask.limits).map(|l| (kind, l, used, reset_s))
            })
            .collect();
        let need = |kind: LimitKind| {
            if kind.counts_tokens() {
                estimate.tokens
            } else {
                1
            }
        };
        let refused = set
            .iter()
            .find(|(kind, limit, used, _)| used + need(*kind) > *limit)
            .copied();
        // Budgets, with this call.
        let over_budget = budgets
            .iter()
            .find(|(_, _, limit, committed)| committed + estimate.cost_nanos > *limit)
            .copied();
        // The report: after this call when admitted, else without it.
        let admitted = refused.is_none() && over_budget.is_none();
        let mut report = LimitReport::default();
        for (kind, limit, used, reset_s) in &set {
            let after = if admitted { used + need(*kind) } else { *used };
            report.set(
                *kind,
                Remaining {
                    limit: *limit,
                    remaining: limit.saturating_sub(after),
                    reset_s: *reset_s,
                },
            );
        }
        if let Some((kind, limit, _, retry_after_s)) = refused {
            return Err(Box::new(Refusal::RateLimited {
                kind,
                limit,
                retry_after_s,
                report,
            }));
        }

        if let Some((scope, period, limit_nanos, committed_nanos)) = over_budget {
            return Err(Box::new(Refusal::BudgetExceeded {
                scope,
                period,
                limit_nanos,
                committed_nanos,
                retry_after_s: match period {
                    BudgetPeriod::Daily => p.day_reset_s(),
                    BudgetPeriod::Monthly => p.month_reset_s(),
                },
                report,
            }));
        }

        // Admitted: count it.
        key.minute.add(p.second, estimate.tokens);
        key.hour.1 += 1;
        for tally in [&mut key.day, &mut key.month] {
            tally.requests += 1;
            tally.tokens += estimate.tokens;
            tally.reserved += estimate.cost_nanos;
        }
        for spend in owner
            .iter_mut()
            .map(|o| &mut **o)
            .chain(global.iter_mut().map(|g| &mut **g))
        {
            spend.day.reserved += estimate.cost_nanos;
            spend.month.reserved += estimate.cost_nanos;
        }
        Ok(Admitted {
            ticket: Ticket {
                key_id: ask.key_id.clone(),
                owner: owner_cell.is_some().then(|| ask.owner.clone()).flatten(),
                global: global.is_some(),
                periods: p,
                reserved: estimate,
            },
            downgraded,
            report,
        })
    }

    /// Replaces a ticket's estimates with the call's real usage.
    pub fn settle(&self, ticket: &Ticket, actual: Actual) {
        let p = ticket.periods;
        let tokens = actual.prompt_tokens + actual.completion_tokens;
        let reserved = ticket.reserved;
        {
            let cell = self.key(&ticket.key_id);
            let mut guard = lock(&cell);
            let key = &mut *guard;
            key.minute.adjust_tokens(p.second, reserved.tokens, tokens);
            for (tally, period) in [(&mut key.day, p.day), (&mut key.month, p.month)] {
                if tally.period == period {
                    settle_tally(tally, reserved, actual);
                }
            }
        }
        let settle_spend = |spend: &mut SpendCounters| {
            for (tally, period) in [(&mut spend.day, p.day), (&mut spend.month, p.month)] {
                if tally.period == period {
                    settle_tally(tally, reserved, actual);
                }
            }
        };
        if let Some(owner) = &ticket.owner {
            settle_spend(&mut lock(&self.owner(owner)));
        }
        if ticket.global {
            settle_spend(&mut lock(&self.global));
        }
    }

    /// Resumes today's and this month's calls, requests, tokens and spend from the
    /// request log (admitted calls since the month began), so budgets and day/month
    /// limits hold across a restart.
    pub fn seed(&self, totals: &[crate::store::UsageTotals], now_ms: i64) {
        let p = Periods::at(now_ms);
        let add = |tally: &mut Tally, period: i64, t: &crate::store::UsageTotals| {
            let tally = tally.current(period);
            let (prompt, completion) = (
                t.prompt_tokens.max(0) as u64,
                t.completion_tokens.max(0) as u64,
            );
            tally.requests += t.requests.max(0) as u64;
            tally.prompt_tokens += prompt;
            tally.completion_tokens += completion;
            tally.tokens += prompt + completion;
            tally.spent += t.cost_nanos;
        };
        for t in totals {
            if let Some(id) = &t.key_id {
                let cell = self.key(&Arc::from(id.as_str()));
                let mut key = lock(&cell);
                add(&mut key.month, p.month, t);
                if t.today {
                    add(&mut key.day, p.day, t);
                }
            }
            if let Some(owner) = &t.owner {
                let cell = self.owner(&Arc::from(owner.as_str()));
                let mut spend = lock(&cell);
                add(&mut spend.month, p.month, t);
                if t.today {
                    add(&mut spend.day, p.day, t);
                }
            }
            let mut global = lock(&self.global);
            add(&mut global.month, p.month, t);
            if t.today {
                add(&mut global.day, p.day, t);
            }
        }
    }

    /// The key's counters, without counting anything.
    pub fn snapshot(
        &self,
        key_id: &Arc<str>,
        limits: &super::policy::RateLimits,
        now_ms: i64,
    ) -> UsageSnapshot {
        let p = Periods::at(now_ms);
        let cell = self.key(key_id);
        let mut key = lock(&cell);
        key.advance(&p);
        let mut report = LimitReport::default();
        for (kind, (used, reset_s)) in LimitKind::ALL.into_iter().zip(key.windows(&p, 1)) {
            if let Some(limit) = kind.of(limits) {
                report.set(
                    kind,
                    Remaining {
                        limit,
                        remaining: limit.saturating_sub(used),
                        reset_s,
                    },
                );
            }
        }
        let (day, month) = (key.day, key.month);
        let figures = |t: &Tally| UsageFigures {
            requests: t.requests,
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            spend: SpendFigures {
                spent_nanos: t.spent,
                reserved_nanos: t.reserved,
            },
        };
        UsageSnapshot {
            limits: report,
            today: figures(&day),
            month: figures(&month),
        }
    }

    /// An owner's (or, with `None`, the global) spend today and this month.
    pub fn spend(&self, owner: Option<&Arc<str>>, now_ms: i64) -> (SpendFigures, SpendFigures) {
        let p = Periods::at(now_ms);
        let read = |s: &mut SpendCounters| {
            let d = *s.day.current(p.day);
            let m = *s.month.current(p.month);
            (
                SpendFigures {
                    spent_nanos: d.spent,
                    reserved_nanos: d.reserved,
                },
                SpendFigures {
                    spent_nanos: m.spent,
                    reserved_nanos: m.reserved,
                },
            )
        };
        match owner {
            Some(o) => read(&mut lock(&self.owner(o))),
            None => read(&mut lock(&self.global)),
        }
    }
}

fn settle_tally(tally: &mut Tally, reserved: Estimate, actual: Actual) {
    tally.tokens = (tally.tokens + actual.prompt_tokens + actual.completion_tokens)
        .saturating_sub(reserved.tokens);
    tally.prompt_tokens += actual.prompt_tokens;
    tally.completion_tokens += actual.completion_tokens;
    tally.reserved -= reserved.cost_nanos;
    tally.spent += actual.cost_nanos;
}
