//! A snapshot of each key's figures: what `tollgate stats --health`, the admin API and
//! the dashboard show.

use std::time::Instant;

use serde::Serialize;

use super::{Health, KeyPool};

/// One upstream key's figures at a moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyStats {
    pub id: String,
    /// `ok`, `cooling_down`, `invalid` or `disabled`.
    pub state: &'static str,
    /// Milliseconds until a cooling key may go again.
    pub cooldown_remaining_ms: Option<u64>,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_type: std::collections::BTreeMap<&'static str, u64>,
    /// Errors per request since start, 0.0 to 1.0.
    pub error_rate: f64,
    pub tokens: u64,
    /// Spend since start, in the configured currency.
    pub spend: f64,
    pub last_used_ms: Option<i64>,
    /// The used share of the key's tightest quota now (rpm, tpm, daily budget, or the
    /// upstream's reported headroom).
    pub utilization: f64,
}

impl KeyPool {
    /// Every key's figures.
    pub fn stats(&self) -> Vec<KeyStats> {
        let now = Instant::now();
        let (today, _) = super::utc_day(crate::store::now_ms());
        self.set
            .load()
            .keys
            .iter()
            .map(|key| {
                key.with_state(|s| {
                    let utilization = s.utilization(&key.attributes.limits, now, today);
                    let (state, cooldown_remaining_ms) = match s.health {
                        Health::Ok => ("ok", None),
                        Health::CoolingDown { until } => (
                            "cooling_down",
                            Some(until.saturating_duration_since(now).as_millis() as u64),
                        ),
                        Health::Invalid => ("invalid", None),
                        Health::Disabled => ("disabled", None),
                    };
                    let c = &s.counters;
                    let errors: u64 = c.errors.values().sum();
                    KeyStats {
                        id: key.id.to_string(),
                        state,
                        cooldown_remaining_ms,
                        requests: c.requests,
                        errors,
                        errors_by_type: c.errors.clone(),
                        error_rate: if c.requests == 0 {
                            0.0
                        } else {
                            errors as f64 / c.requests as f64
                        },
                        tokens: c.tokens,
                        spend: c.spend_nanos as f64 / 1e9,
                        last_used_ms: c.last_used_ms,
                        utilization,
                    }
                })
            })
            .collect()
    }
}
