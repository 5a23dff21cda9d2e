//! What admission asks of a counter backend, and what it answers. The backends
//! (`local`: in this process; `redis`: shared by every replica) keep the same
//! counters and make the same decision, atomically per call (SPEC §6):
//!
//! 1. Budgets: if any budget's spent + reserved (before this call) is past the soft
//!    threshold and a downgrade estimate is offered, the call is counted as the
//!    downgraded one.
//! 2. Request limits (rpm sliding, rph, rpd calendar) admit while count < limit;
//!    token limits (tpm sliding, tpd, tokens_per_month) while used + estimate ≤ limit.
//! 3. Every budget must hold spent + reserved + estimate ≤ limit.
//! 4. Admitted: the call's request and its estimated tokens and cost are counted
//!    (cost as reserved); [`Ticket`] settles them to the real figures later.

use std::sync::Arc;

use super::policy::RateLimits;
use super::windows::Periods;

/// A budget's limits in nano-units of the currency; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetNanos {
    pub daily: Option<i64>,
    pub monthly: Option<i64>,
}

impl BudgetNanos {
    /// True when neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.daily.is_none() && self.monthly.is_none()
    }
}

/// What one call is expected to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub tokens: u64,
    pub cost_nanos: i64,
}

/// One call asking to be admitted.
#[derive(Debug, Clone)]
pub struct Ask {
    pub key_id: Arc<str>,
    /// The key's owner; their budgets apply when set.
    pub owner: Option<Arc<str>>,
    /// The key's limits, already completed from its tier.
    pub limits: RateLimits,
    pub key_budgets: BudgetNanos,
    pub owner_budgets: BudgetNanos,
    pub global_budgets: BudgetNanos,
    /// Share of a budget (0–1) past which the downgrade applies.
    pub soft_threshold: f64,
    pub estimate: Estimate,
    /// The estimate if served by the downgrade model; `None` when there is none.
    pub downgrade: Option<Estimate>,
    pub now_ms: i64,
}

/// A budget's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Key,
    Owner,
    Global,
}

impl Scope {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Owner => "owner",
            Scope::Global => "global",
        }
    }
}

/// A budget's calendar window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Daily,
    Monthly,
}

impl BudgetPeriod {
    /// The name used in messages and `/v1/usage`.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Daily => "daily",
            BudgetPeriod::Monthly => "monthly",
        }
    }
}

/// A rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rpm,
    Rph,
    Rpd,
    Tpm,
    Tpd,
    TokensPerMonth,
}

impl LimitKind {
    /// Every limit, in report order.
    pub const ALL: [LimitKind; 6] = [
        LimitKind::Rpm,
        LimitKind::Rph,
        LimitKind::Rpd,
        LimitKind::Tpm,
        LimitKind::Tpd,
        LimitKind::TokensPerMonth,
    ];

    /// The field name (`rpm`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Rph => "rph",
            LimitKind::Rpd => "rpd",
            LimitKind::Tpm => "tpm",
            LimitKind::Tpd => "tpd",
            LimitKind::TokensPerMonth => "tokens_per_month",
        }
    }

    /// The limit's value in `limits`.
    pub fn of(self, limits: &RateLimits) -> Option<u64> {
        match self {
            LimitKind::Rpm => limits.rpm,
            LimitKind::Rph => limits.rph,
            LimitKind::Rpd => limits.rpd,
            LimitKind::Tpm => limits.tpm,
            LimitKind::Tpd => limits.tpd,
            LimitKind::TokensPerMonth => limits.tokens_per_month,
        }
    }

    /// True for token limits, false for request limits.
    pub fn counts_tokens(self) -> bool {
        matches!(
            self,
            LimitKind::Tpm | LimitKind::Tpd | LimitKind::TokensPerMonth
        )
    }
}

/// One limit's state after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window frees capacity (at least 1).
    pub reset_s: u64,
}

/// The state of every set limit, in [`LimitKind::ALL`] order (`None`: not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitReport(pub [Option<Remaining>; 6]);

impl LimitReport {
    /// One limit's state.
    pub fn get(&self, kind: LimitKind) -> Option<Remaining> {
        self.0[kind as usize]
    }

    /// Sets one limit's state.
    pub fn set(&mut self, kind: LimitKind, value: Remaining) {
        self.0[kind as usize] = Some(value);
    }
}

/// What a call counted, to be settled to its real usage.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub key_id: Arc<str>,
    /// Owner whose spend was counted, if any.
    pub owner: Option<Arc<str>>,
    /// True when the global spend was counted.
    pub global: bool,
    pub periods: Periods,
    pub reserved: Estimate,
}

/// A call admitted.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub ticket: Ticket,
    /// True when the downgrade estimate was counted (the caller is past a soft threshold).
    pub downgraded: bool,
    pub report: LimitReport,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A rate limit is reached.
    RateLimited {
        kind: LimitKind,
        limit: u64,
        retry_after_s: u64,
        report: LimitReport,
    },
    /// A budget would be passed.
    BudgetExceeded {
        scope: Scope,
        period: BudgetPeriod,
        limit_nanos: i64,
        /// Spent + reserved before this call.
        committed_nanos: i64,
        retry_after_s: u64,
        report: LimitReport,
    },
}

impl Refusal {
    /// The caller's limits, without the refused call.
    pub fn report(&self) -> LimitReport {
        match self {
            Refusal::RateLimited { report, .. } | Refusal::BudgetExceeded { report, .. } => *report,
        }
    }

    /// Seconds until the call may succeed.
    pub fn retry_after_s(&self) -> u64 {
        match self {
            Refusal::RateLimited { retry_after_s, .. }
            | Refusal::BudgetExceeded { retry_after_s, .. } => *retry_after_s,
        }
    }
}

/// A call's real usage, settled against its ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actual {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_nanos: i64,
}

/// Spend in one budget window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendFigures {
    pub spent_nanos: i64,
    pub reserved_nanos: i64,
}

/// A key's usage in one calendar window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageFigures {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub spend: SpendFigures,
}

/// What `/v1/usage` shows: the counters enforcement uses, read without counting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageSnapshot {
    pub limits: LimitReport,
    pub today: UsageFigures,
    pub month: UsageFigures,
}

/// A counter backend failed (Redis unreachable, a script error).
#[derive(Debug, thiserror::Error)]
#[error("the limits backend failed: {0}")]
pub struct CountersError(pub String);
