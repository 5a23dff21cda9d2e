//! Prometheus metrics (SPEC §9). Counters and histograms are recorded from each
//! call's usage row as it is queued (every call passes there exactly once); gauges
//! (upstream key state and utilization, the usage queue) are read at scrape time.
//! Each gateway has its own recorder, so several gateways in one process (tests)
//! never mix their figures. Labels carry upstream key ids, never secrets.

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::fast_map::FastDashMap;
use metrics::{counter, gauge, histogram, Counter, Histogram};
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
    cost_nanos: FastDashMap<String, Arc<AtomicI64>>,
    /// The handles of each label set seen, so a call costs no registry lookup.
    calls: FastDashMap<CallLabels, CallHandles>,
    rate_limited: Counter,
    budget_exceeded: Counter,
    cache_hits: Counter,
}

/// How often [`run_upkeep`] folds histogram samples into buckets. The fold runs on
/// the runtime's thread and takes time in proportion to the samples since the last
/// (two per call): every 5 s at 30k calls/s it was one ~2 ms stretch that every call
/// in flight waited behind, and ~2.5 MiB of samples held and freed at once.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Folds histogram samples every [`UPKEEP_EVERY`] until `stop`: without it, memory
/// grows with every call between scrapes.
pub async fn run_upkeep(telemetry: Arc<Telemetry>, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => telemetry.upkeep(),
        }
    }
}

/// Label sets kept before unserved model names are counted as `other`.
const MAX_CALL_LABEL_SETS: usize = 4096;

/// What a call's series are told apart by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallLabels {
    route: Cow<'static, str>,
    model: Arc<str>,
    provider: Option<Arc<str>>,
    status: u16,
}

/// The registered series one label set updates.
struct CallHandleSet {
    requests: Counter,
    duration: Histogram,
    upstream_duration: Option<Histogram>,
    prompt_tokens: Counter,
    completion_tokens: Counter,
    cost_nanos: Arc<AtomicI64>,
}

type CallHandles = Arc<CallHandleSet>;

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
        // Registered now, so they are present from the first scrape and rate() works
        // before the first refusal.
        let (rate_limited, budget_exceeded, cache_hits) =
            metrics::with_local_recorder(&recorder, || {
                (
                    counter!("tollgate_rate_limited_total"),
                    counter!("tollgate_budget_exceeded_total"),
                    counter!("tollgate_cache_hits_total"),
                )
            });
        Telemetry {
            recorder,
            handle,
            cost_nanos: FastDashMap::default(),
            calls: FastDashMap::default(),
            rate_limited,
            budget_exceeded,
            cache_hits,
        }
    }

    /// Records one finished call: one map lookup for the call's handles (registered
    /// with the recorder the first time its labels are seen), then atomic updates.
    pub fn record_call(&self, row: &UsageRow) {
        let labels = self.labels_of(row);
        match self.calls.get(&labels) {
            Some(found) => self.count(&found, row),
            None => {
                let made = self.register(&labels);
                let handles = self.calls.entry(labels).or_insert(made).clone();
                self.count(&handles, row);
            }
        }
    }

    /// Updates one label set's series for a call.
    fn count(&self, handles: &CallHandleSet, row: &UsageRow) {
        handles.requests.increment(1);
        handles.duration.record(row.latency_ms as f64 / 1000.0);
        if let (Some(ttfb), Some(upstream)) = (row.ttfb_ms, &handles.upstream_duration) {
            upstream.record(ttfb as f64 / 1000.0);
        }
        if row.prompt_tokens > 0 {
            handles.prompt_tokens.increment(row.prompt_tokens);
        }
        if row.completion_tokens > 0 {
            handles.completion_tokens.increment(row.completion_tokens);
        }
        if row.cost_nanos != 0 {
            handles
                .cost_nanos
                .fetch_add(row.cost_nanos, Ordering::Relaxed);
        }
        match row.error_type.as_deref() {
            Some("rate_limited") => self.rate_limited.increment(1),
            Some("budget_exceeded") => self.budget_exceeded.increment(1),
            _ => {}
        }
        if row.cache_hit {
            self.cache_hits.increment(1);
        }
    }

    /// The labels a call is counted under. A model nothing served is labelled as the
    /// client named it only while the label sets are few: client-chosen names must
    /// not grow the registry without bound.
    fn labels_of(&self, row: &UsageRow) -> CallLabels {
        let model = match (&row.model_served, &row.model_requested) {
            (Some(served), _) => served.clone(),
            (None, Some(asked)) if self.calls.len() < MAX_CALL_LABEL_SETS => asked.clone(),
            (None, Some(_)) => Arc::from("other"),
            (None, None) => Arc::from("none"),
        };
        CallLabels {
            route: row.endpoint.clone(),
            model,
            provider: row.provider.clone(),
            status: row.status,
        }
    }

    /// Registers the series of one label set.
    fn register(&self, labels: &CallLabels) -> CallHandles {
        let route = labels.route.to_string();
        let model = labels.model.to_string();
        let provider = labels.provider.as_deref().map(str::to_owned);
        let (requests, duration, upstream_duration, prompt_tokens, completion_tokens) =
            metrics::with_local_recorder(&self.recorder, || {
                (
                    counter!("tollgate_requests_total",
                        "route" => route.clone(), "model" => model.clone(),
                        "provider" => provider.clone().unwrap_or_else(|| "none".to_owned()),
                        "status" => labels.status.to_string()),
                    histogram!("tollgate_request_duration_seconds", "route" => route),
                    // Only a call that reached a provider has an upstream duration.
                    provider
                        .map(|p| histogram!("tollgate_upstream_duration_seconds", "provider" => p)),
                    counter!("tollgate_tokens_total", "model" => model.clone(), "kind" => "prompt"),
                    counter!("tollgate_tokens_total", "model" => model.clone(), "kind" => "completion"),
                )
            });
        let cost_nanos = self
            .cost_nanos
            .entry(model)
            .or_insert_with(|| Arc::new(AtomicI64::new(0)))
            .clone();
        Arc::new(CallHandleSet {
            requests,
            duration,
            upstream_duration,
            prompt_tokens,
            completion_tokens,
            cost_nanos,
        })
    }

    /// Folds the histogram samples recorded since the last fold into their buckets.
    /// The recorder keeps every raw sample until then, so this runs every
    /// [`UPKEEP_EVERY`] whether or not anyone scrapes (see [`run_upkeep`]).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
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

    #[test]
    fn client_chosen_model_names_cannot_grow_the_registry_without_bound() {
        let t = Telemetry::new();
        let unknown = |n: usize| UsageRow {
            endpoint: Cow::Borrowed("/v1/chat/completions"),
            model_requested: Some(format!("no-such-model-{n}").into()),
            status: 404,
            ..UsageRow::default()
        };
        for n in 0..MAX_CALL_LABEL_SETS + 50 {
            t.record_call(&unknown(n));
        }
        assert_eq!(t.calls.len(), MAX_CALL_LABEL_SETS + 1);
        let text = t.render([], UsageGauges::default());
        assert!(
            text.contains("model=\"no-such-model-0\""),
            "early names are kept"
        );
        assert!(
            text.contains("tollgate_requests_total{route=\"/v1/chat/completions\",model=\"other\",provider=\"none\",status=\"404\"} 50"),
            "later ones are counted as other"
        );
        // A served model is always its own label.
        t.record_call(&UsageRow {
            model_served: Some("served".into()),
            provider: Some("p".into()),
            status: 200,
            ..unknown(0)
        });
        assert!(t
            .render([], UsageGauges::default())
            .contains("model=\"served\""));
    }

    #[test]
    fn upkeep_keeps_every_sample() {
        let t = Telemetry::new();
        let row = UsageRow {
            endpoint: Cow::Borrowed("/v1/embeddings"),
            status: 200,
            latency_ms: 3,
            ..UsageRow::default()
        };
        for _ in 0..1000 {
            t.record_call(&row);
        }
        t.upkeep();
        t.record_call(&row);
        let text = t.render([], UsageGauges::default());
        assert!(
            text.contains("tollgate_request_duration_seconds_count{route=\"/v1/embeddings\"} 1001"),
            "{text}"
        );
    }
}
