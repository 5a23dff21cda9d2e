//! Prometheus metrics (SPEC §9). Counters and histograms are recorded from each
//! call's usage row as it is queued (every call passes there exactly once); gauges
//! (upstream key state and utilization, the usage queue) are read at scrape time.
//! Each gateway has its own recorder, so several gateways in one process (tests)
//! never mix their figures. Labels carry upstream key ids, never secrets.

use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::usage::UsageRow;

/// Request durations, in seconds: from 5 ms to 2 minutes.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A gateway's metrics.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Cost per model in nano-units (Prometheus counters may be fractional; the
    /// recorder's are integers, so cost is rendered here).
    cost_nanos: DashMap<String, AtomicI64>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// One upstream key's figures at scrape time.
#[derive(Debug, Clone)]
pub struct KeyGauge<'a> {
    pub provider: &'a str,
    pub key: &'a str,
    pub state: &'static str,
    pub utilization: f64,
}

/// The usage pipeline's figures at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageGauges {
    pub queue_depth: usize,
    pub dropped: u64,
    pub spooled: u64,
    pub replayed: u64,
}

impl Telemetry {
    /// An empty registry.
    pub fn new() -> Telemetry {
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets(&DURATION_BUCKETS) {
            Ok(b) => b.build_recorder(),
            // Only an empty bucket list is refused, and ours is not empty.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        Telemetry {
            recorder,
            handle,
            cost_nanos: DashMap::new(),
        }
    }

    /// Records one finished call.
    pub fn record_call(&self, row: &UsageRow) {
        let model = row
            .model_served
            .as_deref()
            .or(row.model_requested.as_deref())
            .unwrap_or("none")
            .to_owned();
        let provider = row.provider.as_deref().unwrap_or("none").to_owned();
        let route = row.endpoint.to_string();
        metrics::with_local_recorder(&self.recorder, || {
            counter!("tollgate_requests_total",
                "route" => route.clone(), "model" => model.clone(),
                "provider" => provider.clone(), "status" => row.status.to_string())
            .increment(1);
            histogram!("tollgate_request_duration_seconds", "route" => route)
                .record(row.latency_ms as f64 / 1000.0);
            if let Some(ttfb) = row.ttfb_ms {
                histogram!("tollgate_upstream_duration_seconds", "provider" => provider)
                    .record(ttfb as f64 / 1000.0);
            }
            if row.prompt_tokens > 0 {
                counter!("tollgate_tokens_total", "model" => model.clone(), "kind" => "prompt")
                    .increment(row.prompt_tokens);
            }
            if row.completion_tokens > 0 {
                counter!("tollgate_tokens_total", "model" => model.clone(), "kind" => "completion")
                    .increment(row.completion_tokens);
            }
            match row.error_type.as_deref() {
                Some("rate_limited") => counter!("tollgate_rate_limited_total").increment(1),
                Some("budget_exceeded") => counter!("tollgate_budget_exceeded_total").increment(1),
                _ => {}
            }
            if row.cache_hit {
                counter!("tollgate_cache_hits_total").increment(1);
            }
        });
        if row.cost_nanos != 0 {
            self.cost_nanos
                .entry(model)
                .or_default()
                .fetch_add(row.cost_nanos, Ordering::Relaxed);
        }
    }

    /// The Prometheus text, with the scrape-time gauges set from `keys` and `usage`.
    pub fn render<'a>(
        &self,
        keys: impl IntoIterator<Item = KeyGauge<'a>>,
        usage: UsageGauges,
    ) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            for k in keys {
                let labels = [
                    ("provider", k.provider.to_owned()),
                    ("key", k.key.to_owned()),
                ];
                gauge!("tollgate_upstream_key_utilization", &labels).set(k.utilization);
                for state in ["ok", "cooling_down", "invalid", "disabled"] {
                    gauge!("tollgate_upstream_key_state",
                        "provider" => k.provider.to_owned(), "key" => k.key.to_owned(), "state" => state)
                    .set(if state == k.state { 1.0 } else { 0.0 });
                }
            }
            gauge!("tollgate_usage_queue_depth").set(usage.queue_depth as f64);
            counter!("tollgate_usage_dropped_total").absolute(usage.dropped);
            counter!("tollgate_usage_spooled_total").absolute(usage.spooled);
            counter!("tollgate_usage_replayed_total").absolute(usage.replayed);
            // Present from the first scrape, so rate() works before the first refusal.
            counter!("tollgate_rate_limited_total").increment(0);
            counter!("tollgate_budget_exceeded_total").increment(0);
            counter!("tollgate_cache_hits_total").increment(0);
        });
        let mut text = self.handle.render();
        text.push_str("# TYPE tollgate_cost_total counter\n");
        let mut costs: Vec<(String, i64)> = self
            .cost_nanos
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        costs.sort();
        for (model, nanos) in costs {
            text.push_str(&format!(
                "tollgate_cost_total{{model=\"{}\"}} {}\n",
                escape_label(&model),
                nanos as f64 / 1e9
            ));
        }
        text
    }
}

/// A label value as Prometheus text needs it.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn calls_become_series() {
        let t = Telemetry::new();
        let row = UsageRow {
            endpoint: Cow::Borrowed("/v1/chat/completions"),
            model_served: Some("m\"x".into()),
            provider: Some("p".into()),
            status: 200,
            latency_ms: 30,
            ttfb_ms: Some(10),
            prompt_tokens: 5,
            completion_tokens: 7,
            cost_nanos: 1_500_000_000,
            ..UsageRow::default()
        };
        t.record_call(&row);
        t.record_call(&UsageRow {
            status: 429,
            error_type: Some(Cow::Borrowed("rate_limited")),
            ..row.clone()
        });
        let text = t.render(
            [KeyGauge {
                provider: "p",
                key: "k-1",
                state: "cooling_down",
                utilization: 0.5,
            }],
            UsageGauges {
                queue_depth: 3,
                dropped: 1,
                spooled: 0,
                replayed: 0,
            },
        );
        assert!(text.contains("tollgate_requests_total{route=\"/v1/chat/completions\",model=\"m\\\"x\",provider=\"p\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("tollgate_rate_limited_total 1"), "{text}");
        assert!(
            text.contains("tollgate_tokens_total{model=\"m\\\"x\",kind=\"completion\"} 14"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_cost_total{model=\"m\\\"x\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "tollgate_upstream_key_state{provider=\"p\",key=\"k-1\",state=\"cooling_down\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("tollgate_upstream_key_utilization{provider=\"p\",key=\"k-1\"} 0.5"),
            "{text}"
        );
        assert!(text.contains("tollgate_usage_dropped_total 1"), "{text}");
        assert!(text.contains("tollgate_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.05\"} 2"), "{text}");
    }
}
