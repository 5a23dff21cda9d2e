//! Fire once per episode. An alert is one rule about one subject; its episode starts
//! when the rule's condition becomes true for the subject (the alert fires), stays
//! quiet while the condition stays true however often it is evaluated, and ends when
//! the condition becomes false or the subject is no longer observed (the alert
//! resolves, once). The next time the condition becomes true is a new episode.
//!
//! `upstream_utilization` rules with a window fire only once the condition has held
//! for the whole window; a condition that ends sooner ends silently.
//!
//! The state is in memory; [`Episodes::restore`] carries open episodes over a restart
//! from the history in `alert_events`.

use std::collections::{HashMap, HashSet};

use super::rules::Observation;
use crate::config::{AlertRule, RuleKind};
use crate::store::{new_alert_event_id, AlertEvent, AlertState};

/// An episode under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// True since `since_ms`, waiting for the rule's window before firing.
    Pending { since_ms: i64 },
    /// Fired.
    Firing,
}

/// Every open episode, by rule name and subject.
#[derive(Debug, Default)]
pub struct Episodes {
    open: HashMap<(String, String), Open>,
}

impl Episodes {
    /// No episode under way.
    pub fn new() -> Episodes {
        Episodes::default()
    }

    /// Marks the alerts of `fired` (the latest event of each, from the history) as
    /// firing, so that a restart does not announce them again.
    pub fn restore<'a>(&mut self, fired: impl IntoIterator<Item = &'a AlertEvent>) {
        for e in fired {
            if e.state == AlertState::Fired {
                self.open
                    .insert((e.rule.clone(), e.subject.clone()), Open::Firing);
            }
        }
    }

    /// Forgets the episodes of rules not in `names` (rules that were replaced away
    /// end without a resolved event).
    pub fn retain_rules(&mut self, names: &HashSet<&str>) {
        self.open
            .retain(|(rule, _), _| names.contains(rule.as_str()));
    }

    /// Whether the alert of `rule` about `subject` is firing.
    pub fn is_firing(&self, rule: &str, subject: &str) -> bool {
        self.open.get(&(rule.to_owned(), subject.to_owned())) == Some(&Open::Firing)
    }

    /// Applies one evaluation of `rule` at `now_ms`; answers the alerts that fired
    /// or resolved.
    pub fn step(
        &mut self,
        rule: &AlertRule,
        observations: &[Observation],
        now_ms: i64,
    ) -> Vec<AlertEvent> {
        let hold_ms = match rule.kind {
            RuleKind::UpstreamUtilization => rule.window.map_or(0, |w| w.as_millis() as i64),
            _ => 0,
        };
        let mut changes = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(observations.len());
        for o in observations {
            seen.insert(o.subject.as_str());
            let key = (rule.name.clone(), o.subject.clone());
            match (o.active, self.open.get(&key).copied()) {
                (true, None) if hold_ms > 0 => {
                    self.open.insert(key, Open::Pending { since_ms: now_ms });
                }
                (true, None) => {
                    self.open.insert(key, Open::Firing);
                    changes.push(event(rule, o, AlertState::Fired, now_ms));
                }
                (true, Some(Open::Pending { since_ms })) if now_ms - since_ms >= hold_ms => {
                    self.open.insert(key, Open::Firing);
                    changes.push(event(rule, o, AlertState::Fired, now_ms));
                }
                (true, Some(_)) => {}
                (false, Some(Open::Firing)) => {
                    self.open.remove(&key);
                    changes.push(event(rule, o, AlertState::Resolved, now_ms));
                }
                (false, Some(Open::Pending { .. })) => {
                    self.open.remove(&key);
                }
                (false, None) => {}
            }
        }
        // Subjects of this rule that were not observed at all (a key removed, no
        // calls left in the window): their episodes end.
        let gone: Vec<(String, String)> = self
            .open
            .keys()
            .filter(|(r, s)| *r == rule.name && !seen.contains(s.as_str()))
            .cloned()
            .collect();
        for key in gone {
            if self.open.remove(&key) == Some(Open::Firing) {
                let o = Observation {
                    subject: key.1.clone(),
                    active: false,
                    value: None,
                    threshold: rule.threshold,
                    message: format!("{}: no longer observed", key.1),
                };
                changes.push(event(rule, &o, AlertState::Resolved, now_ms));
            }
        }
        changes
    }
}

fn event(rule: &AlertRule, o: &Observation, state: AlertState, now_ms: i64) -> AlertEvent {
    AlertEvent {
        id: new_alert_event_id(now_ms),
        rule: rule.name.clone(),
        kind: rule.kind.as_str().to_owned(),
        subject: o.subject.clone(),
        state,
        message: o.message.clone(),
        value: o.value,
        threshold: o.threshold,
        at: now_ms,
    }
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

    fn obs(subject: &str, active: bool) -> Observation {
        Observation {
            subject: subject.to_owned(),
            active,
            value: Some(if active { 1.0 } else { 0.0 }),
            threshold: Some(0.5),
            message: format!("{subject} is {active}"),
        }
    }

    fn states(events: &[AlertEvent]) -> Vec<(&str, AlertState)> {
        events
            .iter()
            .map(|e| (e.subject.as_str(), e.state))
            .collect()
    }

    #[test]
    fn an_alert_fires_once_per_episode_and_resolves_once() {
        let r = rule(RuleKind::InvalidKey);
        let mut ep = Episodes::new();
        assert!(ep.step(&r, &[obs("k", false)], 0).is_empty());
        let fired = ep.step(&r, &[obs("k", true)], 1);
        assert_eq!(states(&fired), [("k", AlertState::Fired)]);
        assert_eq!(fired[0].rule, "invalid-key");
        assert_eq!(fired[0].kind, "invalid_key");
        assert_eq!(fired[0].message, "k is true");
        assert!(ep.is_firing("invalid-key", "k"));
        for t in 2..50 {
            assert!(
                ep.step(&r, &[obs("k", true)], t).is_empty(),
                "quiet while true"
            );
        }
        let resolved = ep.step(&r, &[obs("k", false)], 50);
        assert_eq!(states(&resolved), [("k", AlertState::Resolved)]);
        assert_eq!(resolved[0].value, Some(0.0));
        for t in 51..60 {
            assert!(
                ep.step(&r, &[obs("k", false)], t).is_empty(),
                "resolved once"
            );
        }
        // A new episode fires again.
        assert_eq!(
            states(&ep.step(&r, &[obs("k", true)], 60)),
            [("k", AlertState::Fired)]
        );
    }

    #[test]
    fn subjects_are_independent_and_vanished_ones_resolve() {
        let r = rule(RuleKind::ErrorRate);
        let mut ep = Episodes::new();
        let first = ep.step(&r, &[obs("a", true), obs("b", true), obs("c", false)], 0);
        assert_eq!(
            states(&first),
            [("a", AlertState::Fired), ("b", AlertState::Fired)]
        );
        let next = ep.step(&r, &[obs("a", true)], 1);
        assert_eq!(states(&next), [("b", AlertState::Resolved)]);
        assert_eq!(next[0].message, "b: no longer observed");
        assert!(ep.step(&r, &[obs("a", true)], 2).is_empty());
    }

    #[test]
    fn rules_keep_their_own_episodes() {
        let a = rule(RuleKind::InvalidKey);
        let mut b = a.clone();
        b.name = "other".to_owned();
        let mut ep = Episodes::new();
        assert_eq!(ep.step(&a, &[obs("k", true)], 0).len(), 1);
        assert_eq!(ep.step(&b, &[obs("k", true)], 0).len(), 1);
        assert!(ep.step(&a, &[obs("k", true)], 1).is_empty());
        ep.retain_rules(&HashSet::from(["other"]));
        assert!(!ep.is_firing("invalid-key", "k"));
        assert!(ep.is_firing("other", "k"));
    }

    #[test]
    fn utilization_with_a_window_fires_after_holding_that_long() {
        let mut r = rule(RuleKind::UpstreamUtilization);
        r.window = Some(Duration::from_secs(10));
        let mut ep = Episodes::new();
        assert!(ep.step(&r, &[obs("k", true)], 0).is_empty());
        assert!(ep.step(&r, &[obs("k", true)], 9_999).is_empty());
        assert_eq!(ep.step(&r, &[obs("k", true)], 10_000).len(), 1);
        assert!(ep.step(&r, &[obs("k", true)], 20_000).is_empty());
        assert_eq!(ep.step(&r, &[obs("k", false)], 21_000).len(), 1);
        // Too short to fire: ends silently.
        assert!(ep.step(&r, &[obs("k", true)], 30_000).is_empty());
        assert!(ep.step(&r, &[obs("k", false)], 35_000).is_empty());
        assert!(ep.step(&r, &[obs("k", true)], 36_000).is_empty());
        assert!(ep.step(&r, &[obs("k", true)], 45_000).is_empty());
        assert_eq!(ep.step(&r, &[obs("k", true)], 46_000).len(), 1);
    }

    #[test]
    fn restored_episodes_do_not_fire_again() {
        let r = rule(RuleKind::InvalidKey);
        let mut ep = Episodes::new();
        let fired = ep.step(&r, &[obs("k", true)], 0);
        let mut after_restart = Episodes::new();
        after_restart.restore(&fired);
        assert!(after_restart.step(&r, &[obs("k", true)], 1).is_empty());
        assert_eq!(
            states(&after_restart.step(&r, &[obs("k", false)], 2)),
            [("k", AlertState::Resolved)]
        );
    }
}
