//! Usage capture: one [`UsageRow`] per call, metered from the response (`meter`),
//! queued without blocking the request (`queue`) and written in batches (`writer`);
//! recent calls per provider are also counted in memory (`recent`) for alerts.

pub mod aggregates;
pub mod meter;
pub mod queue;
pub mod recent;
pub mod spool;
pub mod writer;

use std::borrow::Cow;
use std::sync::Arc;

pub use queue::UsageSink;

/// One call as it is logged (SPEC §7).
#[derive(Debug, Clone, Default)]
pub struct UsageRow {
    pub request_id: Arc<str>,
    pub created_at_ms: i64,
    pub key_id: Option<Arc<str>>,
    pub owner: Option<Arc<str>>,
    /// The client route (borrowed from the route table; owned once read back from the
    /// spool).
    pub endpoint: Cow<'static, str>,
    pub model_requested: Option<Arc<str>>,
    pub model_served: Option<Arc<str>>,
    pub provider: Option<Arc<str>>,
    pub upstream_key_id: Option<Arc<str>>,
    pub status: u16,
    /// Data-free error label, e.g. `upstream_timeout`.
    pub error_type: Option<Cow<'static, str>>,
    pub stream: bool,
    pub latency_ms: i64,
    pub ttfb_ms: Option<i64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// True when tokens were not reported by the upstream.
    pub usage_estimated: bool,
    pub cost_nanos: i64,
    pub cache_hit: bool,
    pub downgraded_from: Option<Arc<str>>,
    pub client_ip: Option<std::net::IpAddr>,
    /// Kept as the header value; the writer turns it into text off the request path.
    pub user_agent: Option<http::HeaderValue>,
}

/// A model's prices per million tokens, in the configured currency.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

impl Prices {
    /// Cost of a call in nano-units of the currency (price per 1M tokens × tokens × 1000).
    pub fn cost_nanos(&self, prompt_tokens: u64, completion_tokens: u64) -> i64 {
        let nanos = prompt_tokens as f64 * self.input_per_1m * 1000.0
            + completion_tokens as f64 * self.output_per_1m * 1000.0;
        nanos.round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::Prices;

    #[test]
    fn cost_is_price_per_million_times_tokens() {
        let p = Prices {
            input_per_1m: 0.15,
            output_per_1m: 0.60,
        };
        // 1M prompt tokens cost 0.15 = 150_000_000 nanos.
        assert_eq!(p.cost_nanos(1_000_000, 0), 150_000_000);
        assert_eq!(p.cost_nanos(10, 20), 1_500 + 12_000);
    }
}
