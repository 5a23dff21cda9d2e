//! Alerts (SPEC §9): rules evaluated every `alerts.evaluate_every_s` over a snapshot
//! of the gateway, one alert per rule and subject, fired once per episode, recorded in
//! `alert_events` and sent to the rule's sinks.
//!
//! - `rules`: evaluation as pure functions over a [`rules::Snapshot`].
//! - `episodes`: when an alert fires and resolves.
//! - `sinks`: webhook, Slack, e-mail, log; failures logged (URLs masked), retried once.
//!
//! What a snapshot reads: upstream key state, utilization and last use from the
//! pools' stats; calls and failures per provider over each `error_rate` window,
//! counted in memory as calls settle (`usage::recent`: this replica's calls since it
//! started; a window's sum reads at most 1,441 slots a provider, whatever the load);
//! global and per-owner spend today and this month, from the in-process admission
//! counters, or with Redis from `usage_daily` (as far behind as the usage writer,
//! whose batches add to it). Per-key budgets are not watched.
//!
//! Rules can be replaced at run time ([`Alerts::replace_rules`], validated like the
//! configuration); sinks come from the configuration only. Each replica evaluates and
//! sends on its own.

pub mod episodes;
pub mod rules;
pub mod sinks;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{AppState, Gateway};
use crate::config::alerts::{check_rules, FieldProblem};
use crate::config::{AlertRule, AlertsConfig, RuleKind, RuleSpec};
use crate::store::{AlertEvent, Store, StoreError};
use episodes::Episodes;
use rules::{BudgetUse, KeyView, Snapshot};
use sinks::Sinks;

/// Events waiting for their sinks; past this, new ones are logged and not sent.
const OUTBOX: usize = 1024;
/// How long shutdown waits for queued events to reach their sinks.
const DRAIN: Duration = Duration::from_secs(10);

/// The alerting service: its rules (replaceable at run time), sinks and episodes.
pub struct Alerts {
    rules: ArcSwap<Vec<AlertRule>>,
    sink_names: Vec<String>,
    sinks: Arc<Sinks>,
    every: Duration,
    store: Store,
    episodes: Mutex<Episodes>,
    /// When each upstream key was first seen (`provider/id` → Unix ms).
    first_seen: Mutex<HashMap<String, i64>>,
}

/// An event on its way to the sinks.
struct Delivery {
    event: AlertEvent,
    sinks: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Alerts {
    /// The service for `config`, recording history in `store`.
    pub fn new(config: &AlertsConfig, store: Store) -> Alerts {
        Alerts {
            rules: ArcSwap::from_pointee(config.rules.clone()),
            sink_names: config.sinks.iter().map(|s| s.name.clone()).collect(),
            sinks: Arc::new(Sinks::new(&config.sinks)),
            every: config.evaluate_every,
            store,
            episodes: Mutex::new(Episodes::new()),
            first_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The active rules.
    pub fn rules(&self) -> Arc<Vec<AlertRule>> {
        self.rules.load_full()
    }

    /// The names of the configured sinks, which rules may name.
    pub fn sink_names(&self) -> &[String] {
        &self.sink_names
    }

    /// How often the rules are evaluated.
    pub fn evaluate_every(&self) -> Duration {
        self.every
    }

    /// Replaces every rule with `specs`, validated as `[[alerts.rules]]` are (sinks
    /// must be configured ones). On a problem nothing changes and every problem is
    /// answered, its field relative to the rule list (`rules[name=hot].window`).
    /// Open episodes of rules that keep their name carry on; the others end silently.
    pub fn replace_rules(
        &self,
        specs: &[RuleSpec],
    ) -> Result<Arc<Vec<AlertRule>>, Vec<FieldProblem>> {
        let rules = Arc::new(check_rules(specs, &self.sink_names)?);
        {
            let names: HashSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
            lock(&self.episodes).retain_rules(&names);
        }
        self.rules.store(rules.clone());
        tracing::info!(rules = rules.len(), "alert rules replaced");
        Ok(rules)
    }

    /// The newest `limit` alert events, newest first.
    pub async fn events(&self, limit: u32) -> Result<Vec<AlertEvent>, StoreError> {
        self.store.alert_events(limit).await
    }

    /// Carries the episodes still open in the history over (once, at start).
    async fn restore(&self) {
        match self.store.open_alerts().await {
            Ok(open) => {
                let names: HashSet<String> = self.rules().iter().map(|r| r.name.clone()).collect();
                let kept: Vec<&AlertEvent> =
                    open.iter().filter(|e| names.contains(&e.rule)).collect();
                lock(&self.episodes).restore(kept);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read open alerts; alerts still firing may be sent again")
            }
        }
    }

    /// One evaluation: reads a snapshot, steps every rule's episodes, records the
    /// changes and queues them for their sinks. Answers the changes.
    async fn evaluate(
        &self,
        gateway: &Gateway,
        outbox: &mpsc::Sender<Delivery>,
    ) -> Vec<AlertEvent> {
        let rules = self.rules();
        if rules.is_empty() {
            return Vec::new();
        }
        let snapshot = self.snapshot(gateway, &rules).await;
        let mut deliveries = Vec::new();
        {
            let mut episodes = lock(&self.episodes);
            for rule in rules.iter() {
                let Some(observations) = rules::evaluate(rule, &snapshot) else {
                    continue;
                };
                for event in episodes.step(rule, &observations, snapshot.now_ms) {
                    deliveries.push(Delivery {
                        event,
                        sinks: rule.sinks.clone(),
                    });
                }
            }
        }
        let mut changes = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            if let Err(e) = self.store.insert_alert_event(&d.event).await {
                tracing::warn!(error = %e, rule = %d.event.rule, subject = %d.event.subject, "cannot record an alert event; sending it anyway");
            }
            changes.push(d.event.clone());
            if let Err(e) = outbox.try_send(d) {
                let d = match e {
                    mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
                };
                tracing::error!(rule = %d.event.rule, subject = %d.event.subject, "alert outbox full; this alert is recorded but not sent");
            }
        }
        changes
    }

    /// What the rules look at now. A figure that cannot be read is left out, and the
    /// rules that need it wait for the next evaluation.
    async fn snapshot(&self, gateway: &Gateway, rules: &[AlertRule]) -> Snapshot {
        let now_ms = crate::store::now_ms();
        let mut keys = Vec::new();
        {
            let mut first_seen = lock(&self.first_seen);
            for upstream in &gateway.upstreams {
                for s in upstream.pool.stats() {
                    let first = *first_seen
                        .entry(format!("{}/{}", upstream.name, s.id))
                        .or_insert(now_ms);
                    keys.push(KeyView {
                        provider: upstream.name.to_string(),
                        id: s.id,
                        state: s.state.to_owned(),
                        utilization: s.utilization,
                        last_used_ms: s.last_used_ms,
                        first_seen_ms: first,
                    });
                }
            }
        }
        let mut calls = HashMap::new();
        let windows: HashSet<u64> = rules
            .iter()
            .filter(|r| r.kind == RuleKind::ErrorRate)
            .filter_map(|r| r.window.map(|w| w.as_secs()))
            .collect();
        let recent = gateway.usage.recent();
        for window in windows {
            calls.insert(window, recent.counts(window, now_ms));
        }
        let budgets = if rules.iter().any(|r| r.kind == RuleKind::Budget) {
            match budget_use(gateway, now_ms).await {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read budget spend for budget alerts");
                    None
                }
            }
        } else {
            None
        };
        Snapshot {
            now_ms,
            keys,
            calls,
            budgets,
            currency: gateway.config.budgets.currency.clone(),
        }
    }
}

/// Nano-units of a configured amount; `None` for no budget.
fn nanos(amount: Option<f64>) -> Option<i64> {
    amount.map(|a| (a * 1e9).round() as i64).filter(|n| *n > 0)
}

/// Spend against every configured global and owner budget.
async fn budget_use(gateway: &Gateway, now_ms: i64) -> Result<Vec<BudgetUse>, StoreError> {
    let b = &gateway.config.budgets;
    let global = [
        ("daily", nanos(b.global_daily)),
        ("monthly", nanos(b.global_monthly)),
    ];
    let owner = [
        ("daily", nanos(b.owner_daily)),
        ("monthly", nanos(b.owner_monthly)),
    ];
    let mut out = Vec::new();
    let wants_global = global.iter().any(|(_, n)| n.is_some());
    let wants_owners = owner.iter().any(|(_, n)| n.is_some());
    if !wants_global && !wants_owners {
        return Ok(out);
    }
    let mut push =
        |who: Option<&str>, budgets: &[(&'static str, Option<i64>); 2], spent: [i64; 2]| {
            for ((period, budget), spent_nanos) in budgets.iter().zip(spent) {
                if let Some(budget_nanos) = budget {
                    out.push(BudgetUse {
                        owner: who.map(str::to_owned),
                        period,
                        spent_nanos,
                        budget_nanos: *budget_nanos,
                    });
                }
            }
        };
    if let Some((day, month)) = gateway.admission.local_spend(None, now_ms) {
        if wants_global {
            push(None, &global, [day.spent_nanos, month.spent_nanos]);
        }
        if wants_owners {
            for name in gateway.store.key_owners().await? {
                let name: Arc<str> = Arc::from(name.as_str());
                if let Some((day, month)) = gateway.admission.local_spend(Some(&name), now_ms) {
                    push(Some(&name), &owner, [day.spent_nanos, month.spent_nanos]);
                }
            }
        }
    } else {
        // Counters in Redis: the daily aggregates (each stored batch adds to them).
        let today = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .date_naive();
        let day = today.format("%Y-%m-%d").to_string();
        let month_start = today.format("%Y-%m-01").to_string();
        let rows = gateway.store.daily_spend(&day, &month_start).await?;
        if wants_global {
            let day_total = rows.iter().map(|r| r.today_nanos).sum();
            let month_total = rows.iter().map(|r| r.month_nanos).sum();
            push(None, &global, [day_total, month_total]);
        }
        if wants_owners {
            for r in rows.iter().filter(|r| r.owner.is_some()) {
                push(r.owner.as_deref(), &owner, [r.today_nanos, r.month_nanos]);
            }
        }
    }
    Ok(out)
}

/// The background task: evaluates the rules every `alerts.evaluate_every_s` until
/// `stop`, then gives queued events up to 10 s to reach their sinks.
pub async fn run(gateway: AppState, stop: CancellationToken) {
    let alerts = gateway.alerts.clone();
    alerts.restore().await;
    let (outbox, mut queued) = mpsc::channel::<Delivery>(OUTBOX);
    let sinks = alerts.sinks.clone();
    let mut sender = tokio::spawn(async move {
        while let Some(d) = queued.recv().await {
            sinks.deliver(&d.event, &d.sinks).await;
        }
    });
    let mut tick = tokio::time::interval(alerts.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        alerts.evaluate(&gateway, &outbox).await;
    }
    drop(outbox);
    if tokio::time::timeout(DRAIN, &mut sender).await.is_err() {
        sender.abort();
        tracing::warn!("alerts still queued at shutdown were not sent");
    }
}
