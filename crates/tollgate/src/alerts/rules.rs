//! Rule evaluation as pure functions: a [`Snapshot`] of the gateway's figures in, one
//! [`Observation`] per subject out (true or false, with the figure and a message).
//! Whether that starts or ends an alert is `episodes`' business.
//!
//! Subjects: `upstream_key=<provider>/<key id>` (utilization, unused, invalid),
//! `provider=<name>` (error rate; `gateway` for calls that ended before reaching a
//! provider), `budget=global/daily`, `budget=owner:<owner>/monthly`, ….
//! Messages name key ids, providers and owners, never a secret.

use std::collections::HashMap;

use crate::config::{AlertRule, RuleKind};
use crate::usage::recent::CallCounts;

/// What the rules look at, read once per evaluation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Unix ms of the evaluation.
    pub now_ms: i64,
    /// Every upstream key of every provider.
    pub keys: Vec<KeyView>,
    /// Calls per provider over each `error_rate` window (by the window's seconds); a
    /// window missing here could not be read, and its rules are skipped this time.
    pub calls: HashMap<u64, Vec<CallCounts>>,
    /// Budget use; `None` when it could not be read (budget rules are skipped).
    pub budgets: Option<Vec<BudgetUse>>,
    /// The configured currency, for messages.
    pub currency: String,
}

/// One upstream key's figures, from the pool's stats.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyView {
    /// The provider whose pool it is in.
    pub provider: String,
    /// The key's id (never its secret).
    pub id: String,
    /// `ok`, `cooling_down`, `invalid` or `disabled`.
    pub state: String,
    /// The used share of the key's tightest quota, 0 to 1.
    pub utilization: f64,
    /// Unix ms of the key's last call since start.
    pub last_used_ms: Option<i64>,
    /// Unix ms when this gateway first saw the key (its start, or when the key was
    /// added): a key never used counts as unused from then, as the pools' counters
    /// start empty.
    pub first_seen_ms: i64,
}

/// Spend against one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetUse {
    /// The owner; `None` for the global budget.
    pub owner: Option<String>,
    /// `daily` or `monthly`.
    pub period: &'static str,
    /// Spent in the period (settled calls), in nano-units.
    pub spent_nanos: i64,
    /// The budget, in nano-units (> 0).
    pub budget_nanos: i64,
}

/// A rule's verdict on one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What it is about (see the module notes).
    pub subject: String,
    /// Whether the rule's condition holds.
    pub active: bool,
    /// The measured figure, if the rule has one.
    pub value: Option<f64>,
    /// The figure's threshold, if the rule has one.
    pub threshold: Option<f64>,
    /// The figure in words, true or not.
    pub message: String,
}

/// A share as a percentage.
fn pct(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Seconds as a short duration (`45s`, `12m`, `26h`, `3d`).
fn span(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn key_subject(k: &KeyView) -> String {
    format!("upstream_key={}/{}", k.provider, k.id)
}

/// The rule's observations, or `None` when the snapshot lacks what it needs (nothing
/// starts or ends then).
pub fn evaluate(rule: &AlertRule, snap: &Snapshot) -> Option<Vec<Observation>> {
    match rule.kind {
        RuleKind::UpstreamUtilization => Some(utilization(rule, snap)),
        RuleKind::ErrorRate => error_rate(rule, snap),
        RuleKind::Budget => budget(rule, snap),
        RuleKind::UnusedKey => Some(unused(rule, snap)),
        RuleKind::InvalidKey => Some(invalid(snap)),
    }
}

fn utilization(rule: &AlertRule, snap: &Snapshot) -> Vec<Observation> {
    let threshold = rule.threshold.unwrap_or(0.85);
    snap.keys
        .iter()
        .filter(|k| k.state != "disabled")
        .map(|k| Observation {
            subject: key_subject(k),
            active: k.utilization >= threshold,
            value: Some(k.utilization),
            threshold: Some(threshold),
            message: format!(
                "upstream key {}/{} is at {} of its tightest quota (threshold {})",
                k.provider,
                k.id,
                pct(k.utilization),
                pct(threshold)
            ),
        })
        .collect()
}

fn error_rate(rule: &AlertRule, snap: &Snapshot) -> Option<Vec<Observation>> {
    let threshold = rule.threshold.unwrap_or(0.20);
    let window = rule.window.unwrap_or_default().as_secs();
    let counts = snap.calls.get(&window)?;
    Some(
        counts
            .iter()
            .filter(|c| c.requests > 0)
            .map(|c| {
                let rate = c.failures as f64 / c.requests as f64;
                let (subject, who) = match &c.provider {
                    Some(p) => (format!("provider={p}"), format!("provider {p}")),
                    None => (
                        "gateway".to_owned(),
                        "calls that reached no provider".to_owned(),
                    ),
                };
                let enough = c.requests >= rule.min_requests;
                Observation {
                    subject,
                    active: enough && rate >= threshold,
                    value: Some(rate),
                    threshold: Some(threshold),
                    message: format!(
                        "{who}: {} of {} calls failed ({}) in the last {} (threshold {}{})",
                        c.failures,
                        c.requests,
                        pct(rate),
                        span(window),
                        pct(threshold),
                        if enough {
                            String::new()
                        } else {
                            format!(", counted from {} calls", rule.min_requests)
                        }
                    ),
                }
            })
            .collect(),
    )
}

fn budget(rule: &AlertRule, snap: &Snapshot) -> Option<Vec<Observation>> {
    let threshold = rule.threshold.unwrap_or(0.90);
    let budgets = snap.budgets.as_ref()?;
    Some(
        budgets
            .iter()
            .filter(|b| b.budget_nanos > 0)
            .map(|b| {
                let share = b.spent_nanos as f64 / b.budget_nanos as f64;
                let (subject, whose) = match &b.owner {
                    Some(o) => (
                        format!("budget=owner:{o}/{}", b.period),
                        format!("owner {o}'s {} budget", b.period),
                    ),
                    None => (
                        format!("budget=global/{}", b.period),
                        format!("the global {} budget", b.period),
                    ),
                };
                Observation {
                    subject,
                    active: share >= threshold,
                    value: Some(share),
                    threshold: Some(threshold),
                    message: format!(
                        "{whose} is {} used: {:.2} of {:.2} {} (threshold {})",
                        pct(share),
                        b.spent_nanos as f64 / 1e9,
                        b.budget_nanos as f64 / 1e9,
                        snap.currency,
                        pct(threshold)
                    ),
                }
            })
            .collect(),
    )
}

fn unused(rule: &AlertRule, snap: &Snapshot) -> Vec<Observation> {
    let window_ms = rule.window.unwrap_or_default().as_millis() as i64;
    let window_s = (window_ms / 1000).max(0) as u64;
    let recent = snap.now_ms - window_ms;
    snap.keys
        .iter()
        .map(|k| {
            let since = k.last_used_ms.unwrap_or(k.first_seen_ms);
            let idle_ms = (snap.now_ms - since).max(0);
            let usable = matches!(k.state.as_str(), "ok" | "cooling_down");
            let others_work = snap.keys.iter().any(|o| {
                o.provider == k.provider && o.id != k.id && o.last_used_ms.is_some_and(|t| t >= recent)
            });
            let active = usable && idle_ms >= window_ms && others_work;
            let last = match k.last_used_ms {
                Some(_) => format!("last used {} ago", span((idle_ms / 1000) as u64)),
                None => format!("not used since it was seen first, {} ago", span((idle_ms / 1000) as u64)),
            };
            let message = if active {
                format!(
                    "upstream key {}/{} has not been used for {} while other {} keys served calls ({last})",
                    k.provider,
                    k.id,
                    span(window_s),
                    k.provider
                )
            } else {
                format!("upstream key {}/{} is {} ({last})", k.provider, k.id, k.state)
            };
            Observation {
                subject: key_subject(k),
                active,
                value: Some((idle_ms / 1000) as f64),
                threshold: Some(window_s as f64),
                message,
            }
        })
        .collect()
}

fn invalid(snap: &Snapshot) -> Vec<Observation> {
    snap.keys
        .iter()
        .map(|k| {
            let active = k.state == "invalid";
            Observation {
                subject: key_subject(k),
                active,
                value: None,
                threshold: None,
                message: if active {
                    format!(
                        "upstream key {}/{} is invalid: the upstream refused it (401/403) and it is out of rotation; replace or re-enable it",
                        k.provider, k.id
                    )
                } else {
                    format!("upstream key {}/{} is {}", k.provider, k.id, k.state)
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::config::alerts::default_rules;

    fn rule(kind: RuleKind) -> AlertRule {
        default_rules(&[])
            .into_iter()
            .find(|r| r.kind == kind)
            .unwrap()
    }

    fn key(
        provider: &str,
        id: &str,
        state: &str,
        utilization: f64,
        last_used_ms: Option<i64>,
    ) -> KeyView {
        KeyView {
            provider: provider.to_owned(),
            id: id.to_owned(),
            state: state.to_owned(),
            utilization,
            last_used_ms,
            first_seen_ms: 0,
        }
    }

    const HOUR: i64 = 3_600_000;

    fn snapshot(keys: Vec<KeyView>) -> Snapshot {
        Snapshot {
            now_ms: 100 * HOUR,
            keys,
            currency: "USD".to_owned(),
            ..Snapshot::default()
        }
    }

    fn active(obs: &[Observation]) -> Vec<&str> {
        obs.iter()
            .filter(|o| o.active)
            .map(|o| o.subject.as_str())
            .collect()
    }

    #[test]
    fn utilization_fires_at_the_threshold() {
        let snap = snapshot(vec![
            key("oa", "hot", "ok", 0.85, None),
            key("oa", "cool", "ok", 0.5, None),
            key("oa", "off", "disabled", 1.0, None),
        ]);
        let obs = evaluate(&rule(RuleKind::UpstreamUtilization), &snap).unwrap();
        assert_eq!(active(&obs), ["upstream_key=oa/hot"]);
        assert_eq!(obs.len(), 2, "disabled keys are not watched");
        assert!(obs[0].message.contains("85%"), "{}", obs[0].message);
    }

    #[test]
    fn error_rate_needs_enough_calls_and_its_window() {
        let mut r = rule(RuleKind::ErrorRate);
        r.window = Some(Duration::from_secs(60));
        let mut snap = snapshot(vec![]);
        assert_eq!(evaluate(&r, &snap), None, "no figures, no verdict");
        snap.calls.insert(
            60,
            vec![
                CallCounts {
                    provider: Some("oa".into()),
                    requests: 10,
                    failures: 3,
                },
                CallCounts {
                    provider: Some("an".into()),
                    requests: 10,
                    failures: 1,
                },
                CallCounts {
                    provider: Some("few".into()),
                    requests: 2,
                    failures: 2,
                },
                CallCounts {
                    provider: None,
                    requests: 20,
                    failures: 20,
                },
            ],
        );
        let obs = evaluate(&r, &snap).unwrap();
        assert_eq!(active(&obs), ["provider=oa", "gateway"]);
        let few = obs.iter().find(|o| o.subject == "provider=few").unwrap();
        assert_eq!(few.value, Some(1.0));
        assert!(
            few.message.contains("counted from 10 calls"),
            "{}",
            few.message
        );
        assert!(
            obs[0]
                .message
                .contains("3 of 10 calls failed (30%) in the last 60s"),
            "{}",
            obs[0].message
        );
    }

    #[test]
    fn budgets_compare_spend_with_the_budget() {
        let mut snap = snapshot(vec![]);
        assert_eq!(evaluate(&rule(RuleKind::Budget), &snap), None);
        snap.budgets = Some(vec![
            BudgetUse {
                owner: None,
                period: "daily",
                spent_nanos: 91_000_000_000,
                budget_nanos: 100_000_000_000,
            },
            BudgetUse {
                owner: Some("alice".into()),
                period: "monthly",
                spent_nanos: 5_000_000_000,
                budget_nanos: 100_000_000_000,
            },
        ]);
        let obs = evaluate(&rule(RuleKind::Budget), &snap).unwrap();
        assert_eq!(active(&obs), ["budget=global/daily"]);
        assert_eq!(obs[1].subject, "budget=owner:alice/monthly");
        assert!(
            obs[0].message.contains("91.00 of 100.00 USD"),
            "{}",
            obs[0].message
        );
    }

    #[test]
    fn a_key_is_unused_only_while_others_work() {
        let now = 100 * HOUR;
        let r = rule(RuleKind::UnusedKey); // 24 h
        let idle = |state: &str| key("oa", "idle", state, 0.0, Some(now - 30 * HOUR));
        let busy = key("oa", "busy", "ok", 0.0, Some(now - HOUR));
        let obs = evaluate(&r, &snapshot(vec![idle("ok"), busy.clone()])).unwrap();
        assert_eq!(active(&obs), ["upstream_key=oa/idle"]);
        assert_eq!(obs[0].value, Some((30 * 3600) as f64));
        assert_eq!(obs[0].threshold, Some((24 * 3600) as f64));
        // Nobody works: a quiet gateway, not an unused key.
        let quiet = key("oa", "busy", "ok", 0.0, Some(now - 48 * HOUR));
        assert!(active(&evaluate(&r, &snapshot(vec![idle("ok"), quiet])).unwrap()).is_empty());
        // Invalid and disabled keys have other reasons not to be used.
        assert!(
            active(&evaluate(&r, &snapshot(vec![idle("invalid"), busy.clone()])).unwrap())
                .is_empty()
        );
        // A key never used counts from when it was seen first.
        let mut new = key("oa", "new", "ok", 0.0, None);
        new.first_seen_ms = now - HOUR;
        let snap = snapshot(vec![new.clone(), busy.clone()]);
        assert!(active(&evaluate(&r, &snap).unwrap()).is_empty());
        new.first_seen_ms = now - 25 * HOUR;
        let snap = snapshot(vec![new, busy]);
        assert_eq!(
            active(&evaluate(&r, &snap).unwrap()),
            ["upstream_key=oa/new"]
        );
    }

    #[test]
    fn invalid_keys_are_reported_without_secrets() {
        let snap = snapshot(vec![
            key("oa", "bad", "invalid", 0.0, None),
            key("oa", "good", "ok", 0.0, None),
        ]);
        let obs = evaluate(&rule(RuleKind::InvalidKey), &snap).unwrap();
        assert_eq!(active(&obs), ["upstream_key=oa/bad"]);
        assert!(obs[0].message.contains("oa/bad is invalid"));
        assert_eq!(obs[1].message, "upstream key oa/good is ok");
    }
}
