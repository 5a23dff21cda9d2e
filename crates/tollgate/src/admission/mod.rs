//! Admission: every call is checked against its key's policy and admitted against
//! its limits and budgets before any upstream is touched, then settled to its real
//! usage (SPEC §4, §6).
//!
//! - `policy`: the key's permissions, limits, budgets, IP and origin rules (data).
//! - `network`: CIDR ranges and the client address behind trusted proxies.
//! - `windows`: the sliding minute and the UTC calendar periods.
//! - `counters`: what a backend is asked and answers; `local`: the in-process backend;
//!   `redis`: the backend shared by replicas; `replay`: nonces seen by this process.

pub mod check;
pub mod counters;
pub mod hmac;
pub mod local;
pub mod network;
pub mod policy;
pub mod redis;
pub mod replay;
pub mod windows;

use std::collections::HashMap;

pub use counters::{
    Actual, Admitted, Ask, BudgetNanos, CountersError, Estimate, LimitKind, LimitReport, Refusal,
    Ticket, UsageSnapshot,
};
pub use network::Cidr;
pub use policy::{Budgets, KeyPolicy, Permissions, RateLimits};

use crate::auth::ClientKey;
use crate::config::{BudgetsConfig, Config, StorageConfig};
use local::LocalCounters;
use replay::ReplaySet;

/// Where the counters live.
#[derive(Debug)]
pub enum Counters {
    /// In this process (one replica).
    Local(LocalCounters),
    /// In Redis, shared by every replica using it.
    Redis(self::redis::RedisCounters),
}

impl Counters {
    /// The counters `storage` asks for: in Redis when `redis_url` is set (connected
    /// and checked now), else in this process.
    pub async fn from_config(storage: &StorageConfig) -> Result<Counters, CountersError> {
        let Some(url) = storage.redis_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(Counters::Local(LocalCounters::new()));
        };
        self::redis::RedisCounters::connect(url, self::redis::DEFAULT_PREFIX)
            .await
            .map(Counters::Redis)
            .map_err(|e| {
                CountersError(format!(
                    "{} (from storage.redis_url); start Redis at that address, correct \
                     storage.redis_url (or TOLLGATE_STORAGE__REDIS_URL), or remove it to keep \
                     limits in this process",
                    e.0
                ))
            })
    }
}

/// Why a call was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// A limit or budget refused it.
    #[error("refused by a limit or budget")]
    Refused(Box<Refusal>),
    /// The counters could not be reached: nothing is admitted blind.
    #[error(transparent)]
    Backend(#[from] CountersError),
}

/// The admission service: tier limits, budget settings and the counters.
#[derive(Debug)]
pub struct Admission {
    counters: Counters,
    tiers: HashMap<String, RateLimits>,
    budgets: BudgetsConfig,
    /// Nonces seen, when the counters are in this process.
    replay: ReplaySet,
}

/// Nano-units of the currency in one unit.
const NANOS: f64 = 1e9;

fn nanos(amount: Option<f64>) -> Option<i64> {
    amount.map(|a| (a * NANOS).round() as i64)
}

impl Admission {
    /// Admission with the tiers and budgets of `config`, counting in `counters`.
    pub fn new(config: &Config, counters: Counters) -> Admission {
        Admission {
            counters,
            tiers: config
                .tiers
                .iter()
                .map(|(name, tier)| (name.clone(), tier.limits))
                .collect(),
            budgets: config.budgets.clone(),
            replay: ReplaySet::new(),
        }
    }

    /// The configured currency.
    pub fn currency(&self) -> &str {
        &self.budgets.currency
    }

    /// A key's limits: its own, completed by its tier's.
    pub fn limits_for(&self, key: &ClientKey) -> RateLimits {
        let tier = self.tiers.get(&key.tier).copied().unwrap_or_default();
        key.policy.limits.or(tier)
    }

    /// The key's own budgets, in nano-units.
    pub fn key_budgets(&self, key: &ClientKey) -> BudgetNanos {
        BudgetNanos {
            daily: nanos(key.policy.budgets.daily),
            monthly: nanos(key.policy.budgets.monthly),
        }
    }

    /// The question for one call of `key` expected to use `estimate` (or `downgrade`
    /// when served by its model's cheaper `downgrade_to`).
    pub fn ask(
        &self,
        key: &ClientKey,
        estimate: Estimate,
        downgrade: Option<Estimate>,
        now_ms: i64,
    ) -> Ask {
        let owner_budgets = match key.owner {
            Some(_) => BudgetNanos {
                daily: nanos(self.budgets.owner_daily),
                monthly: nanos(self.budgets.owner_monthly),
            },
            None => BudgetNanos::default(),
        };
        Ask {
            key_id: key.id.clone(),
            owner: key.owner.clone(),
            limits: self.limits_for(key),
            key_budgets: self.key_budgets(key),
            owner_budgets,
            global_budgets: BudgetNanos {
                daily: nanos(self.budgets.global_daily),
                monthly: nanos(self.budgets.global_monthly),
            },
            soft_threshold: self.budgets.soft_threshold,
            estimate,
            downgrade,
            now_ms,
        }
    }

    /// Decides one call; when admitted, its request and estimates are counted.
    pub async fn admit(&self, ask: &Ask) -> Result<Admitted, AdmissionError> {
        match &self.counters {
            Counters::Local(local) => local.admit(ask).map_err(AdmissionError::Refused),
            Counters::Redis(redis) => match redis.admit(ask).await {
                Ok(decision) => decision.map_err(AdmissionError::Refused),
                Err(e) => Err(AdmissionError::Backend(e)),
            },
        }
    }

    /// Settles an admitted call to its real usage (off the request path for remote
    /// backends).
    pub fn settle(&self, ticket: &Ticket, actual: Actual) {
        match &self.counters {
            Counters::Local(local) => local.settle(ticket, actual),
            Counters::Redis(redis) => redis.settle(ticket, actual),
        }
    }

    /// The key's counters, as `/v1/usage` shows them; nothing is counted.
    pub async fn snapshot(
        &self,
        key: &ClientKey,
        now_ms: i64,
    ) -> Result<UsageSnapshot, CountersError> {
        let limits = self.limits_for(key);
        match &self.counters {
            Counters::Local(local) => Ok(local.snapshot(&key.id, &limits, now_ms)),
            Counters::Redis(redis) => redis.snapshot(&key.id, &limits, now_ms).await,
        }
    }

    /// Records `nonce` for `ttl_s` seconds; true when it was not seen before (a
    /// signed request carrying it is not a replay). Shared by replicas with Redis.
    pub async fn claim_nonce(&self, nonce: &str, ttl_s: u64) -> Result<bool, CountersError> {
        match &self.counters {
            Counters::Local(_) => Ok(self.replay.claim(nonce, ttl_s)),
            Counters::Redis(redis) => redis.claim_nonce(nonce, ttl_s).await,
        }
    }

    /// An owner's (or, with `None`, the global) spend today and this month from the
    /// in-process counters, for budget alerts; `None` when the counters are in Redis
    /// (alerts then read `usage_daily`).
    pub fn local_spend(
        &self,
        owner: Option<&std::sync::Arc<str>>,
        now_ms: i64,
    ) -> Option<(counters::SpendFigures, counters::SpendFigures)> {
        match &self.counters {
            Counters::Local(local) => Some(local.spend(owner, now_ms)),
            Counters::Redis(_) => None,
        }
    }

    /// Checks the counters' backend (for `/ready`): `None` when they are in-process.
    pub async fn ping_backend(&self) -> Option<Result<(), CountersError>> {
        match &self.counters {
            Counters::Local(_) => None,
            Counters::Redis(redis) => Some(redis.ping().await),
        }
    }

    /// At start: in-process counters resume this month's admitted calls from
    /// `usage_daily`, so a restart forgets no spend. Redis keeps its own counters.
    pub async fn resume(
        &self,
        store: &crate::store::Store,
        now_ms: i64,
    ) -> Result<(), crate::store::StoreError> {
        if let Counters::Local(local) = &self.counters {
            let p = windows::Periods::at(now_ms);
            let day = crate::store::day_of_ms;
            let totals = store
                .usage_totals_month(day(p.month_start_ms()), day(p.day_start_ms()))
                .await?;
            local.seed(&totals, now_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
