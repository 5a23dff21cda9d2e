//! `[alerts]` (SPEC §9): rules that watch the gateway and sinks that hear about it.
//!
//! Rules are validated here by a pure function, [`check_rules`], that both the
//! configuration file and the admin API (which replaces rules at run time) use, so a
//! rule is accepted or refused the same way wherever it comes from. Sinks come from the
//! file only (they hold secrets); `validate/alerts.rs` checks them.
//!
//! What `window` means depends on the kind: for `error_rate` the span of calls looked
//! at (default 5m), for `unused_key` how long a key must go unused (default 24h), for
//! `upstream_utilization` how long the utilization must stay at or over the threshold
//! before the alert fires (default 0: at once). `budget` and `invalid_key` take none.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[alerts]`, validated.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// How often the rules are evaluated (`alerts.evaluate_every_s`, default 30).
    pub evaluate_every: Duration,
    /// The rules, in file order.
    pub rules: Vec<AlertRule>,
    /// The sinks, in file order.
    pub sinks: Vec<AlertSink>,
}

/// The evaluation period without `alerts.evaluate_every_s`.
pub const DEFAULT_EVALUATE_EVERY_S: u64 = 30;
/// The name of the sink used when `[alerts]` names none.
pub const DEFAULT_SINK: &str = "log";
/// Calls an `error_rate` window must hold before its rate counts, by default.
pub const DEFAULT_MIN_REQUESTS: u64 = 10;
/// The longest `error_rate` window: as long as `usage::recent` keeps calls.
pub const MAX_ERROR_RATE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest window of any rule.
pub const MAX_WINDOW: Duration = Duration::from_secs(90 * 24 * 3600);

impl Default for AlertsConfig {
    /// No `[alerts]`: the five rules of SPEC §9, to a `log` sink, every 30 s.
    fn default() -> Self {
        let sinks = vec![AlertSink {
            name: DEFAULT_SINK.to_owned(),
            kind: SinkKind::Log,
        }];
        AlertsConfig {
            evaluate_every: Duration::from_secs(DEFAULT_EVALUATE_EVERY_S),
            rules: default_rules(&[DEFAULT_SINK.to_owned()]),
            sinks,
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// An upstream key's tightest quota (rpm, tpm, daily budget, reported headroom)
    /// used at or over the threshold.
    UpstreamUtilization,
    /// The share of failed calls (status ≥ 500) of a provider over the window.
    ErrorRate,
    /// Global or per-owner spend, today or this month, at or over the threshold share
    /// of its `[budgets]` amount.
    Budget,
    /// An upstream key unused for the window while other keys of its provider served.
    UnusedKey,
    /// An upstream key the upstream refused (401/403): out of rotation.
    InvalidKey,
}

impl RuleKind {
    /// Every kind, in the order the configuration lists them.
    pub const ALL: [RuleKind; 5] = [
        RuleKind::UpstreamUtilization,
        RuleKind::ErrorRate,
        RuleKind::Budget,
        RuleKind::UnusedKey,
        RuleKind::InvalidKey,
    ];

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::UpstreamUtilization => "upstream_utilization",
            RuleKind::ErrorRate => "error_rate",
            RuleKind::Budget => "budget",
            RuleKind::UnusedKey => "unused_key",
            RuleKind::InvalidKey => "invalid_key",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The threshold (a share, 0 to 1) when the rule sets none; `None`: the kind
    /// takes no threshold.
    pub fn default_threshold(self) -> Option<f64> {
        match self {
            RuleKind::UpstreamUtilization => Some(0.85),
            RuleKind::ErrorRate => Some(0.20),
            RuleKind::Budget => Some(0.90),
            RuleKind::UnusedKey | RuleKind::InvalidKey => None,
        }
    }

    /// The window when the rule sets none; `None`: the kind takes no window.
    pub fn default_window(self) -> Option<Duration> {
        match self {
            RuleKind::UpstreamUtilization => Some(Duration::ZERO),
            RuleKind::ErrorRate => Some(Duration::from_secs(300)),
            RuleKind::UnusedKey => Some(Duration::from_secs(24 * 3600)),
            RuleKind::Budget | RuleKind::InvalidKey => None,
        }
    }
}

/// A rule as written: a `[[alerts.rules]]` table, or an element of the admin API's
/// JSON. Unset fields take the kind's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name, 1–64 of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// `upstream_utilization`, `error_rate`, `budget`, `unused_key` or `invalid_key`.
    pub kind: String,
    /// A share from 0 to 1 (not for `unused_key` and `invalid_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `30s`, `5m`, `1h`, `24h`, `7d` (see the module notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// `error_rate` only: the fewest calls in the window for the rate to count
    /// (default 10), so one failed call at night is not a 100% error rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<i64>,
    /// Names of the sinks to notify; absent: every sink; empty: none (history only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<Vec<String>>,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Unique name.
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// A share from 0 to 1; `None` for kinds without one.
    pub threshold: Option<f64>,
    /// See the module notes; `None` for kinds without one.
    pub window: Option<Duration>,
    /// `error_rate`: the fewest calls in the window for the rate to count (else 0).
    pub min_requests: u64,
    /// The sinks it notifies.
    pub sinks: Vec<String>,
}

impl AlertRule {
    /// The rule as written, with every default filled in: what the admin API shows,
    /// and what it accepts back unchanged.
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            name: self.name.clone(),
            kind: self.kind.as_str().to_owned(),
            threshold: self.threshold,
            window: self.window.map(format_window),
            min_requests: (self.kind == RuleKind::ErrorRate).then_some(self.min_requests as i64),
            sinks: Some(self.sinks.clone()),
        }
    }
}

/// The rules used when `[alerts]` sets none: one of each kind with its defaults,
/// notifying `sinks`.
pub fn default_rules(sinks: &[String]) -> Vec<AlertRule> {
    RuleKind::ALL
        .into_iter()
        .map(|kind| AlertRule {
            name: kind.as_str().replace('_', "-"),
            kind,
            threshold: kind.default_threshold(),
            window: kind.default_window(),
            min_requests: if kind == RuleKind::ErrorRate {
                DEFAULT_MIN_REQUESTS
            } else {
                0
            },
            sinks: sinks.to_vec(),
        })
        .collect()
}

/// A validated sink.
#[derive(Debug, Clone)]
pub struct AlertSink {
    /// Unique name, referred to by rules.
    pub name: String,
    /// Where it sends.
    pub kind: SinkKind,
}

/// Where a sink sends alerts. URLs are [`Secret`]s: a Slack webhook's path and an
/// SMTP URL's password are credentials.
#[derive(Debug, Clone)]
pub enum SinkKind {
    /// POST of a JSON object per alert to `url`.
    Webhook {
        /// Where to POST.
        url: Secret,
    },
    /// POST of `{"text": …}` to a Slack incoming webhook.
    Slack {
        /// The incoming webhook's URL.
        url: Secret,
    },
    /// A plain-text e-mail per alert, over SMTP (`smtp://` plain or with
    /// `?tls=required` STARTTLS, `smtps://` TLS).
    Email {
        /// `smtp://[user:password@]host[:port]` or `smtps://…`.
        smtp_url: Secret,
        /// The sender address.
        from: String,
        /// The recipients.
        to: Vec<String>,
    },
    /// A line in the gateway's log (warn when fired, info when resolved).
    Log,
}

impl SinkKind {
    /// The name used in configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Slack { .. } => "slack",
            SinkKind::Email { .. } => "email",
            SinkKind::Log => "log",
        }
    }
}

/// One thing wrong with a rule or a sink: the field (`rules[name=hot].window`), what
/// is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field, relative to `[alerts]`: `rules[name=hot].threshold`, `rules[2].name`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl FieldProblem {
    fn new(field: String, message: impl Into<String>, fix: impl Into<String>) -> Self {
        FieldProblem {
            field,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Checks a name of a rule or sink: 1–64 of `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parses a window: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `5m`,
/// `24h`, `7d`).
pub fn parse_window(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    n.checked_mul(seconds).map(Duration::from_secs)
}

/// A window as [`parse_window`] reads it, in the largest unit that fits exactly
/// (`5m`, `24h`, `7d`).
pub fn format_window(window: Duration) -> String {
    let s = window.as_secs();
    // Days from two on (`24h` reads better than `1d`), else hours, minutes, seconds.
    let units = [(86_400, 2 * 86_400, 'd'), (3600, 1, 'h'), (60, 1, 'm')];
    for (unit, from, suffix) in units {
        if s >= from && s / unit * unit == s {
            return format!("{}{suffix}", s / unit);
        }
    }
    format!("{s}s")
}

/// Validates rules against the names of the configured sinks. Every problem is
/// reported, each with its field (`rules[name=…].field`) and fix.
pub fn check_rules(
    specs: &[RuleSpec],
    sinks: &[String],
) -> Result<Vec<AlertRule>, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = if valid_name(&spec.name) {
            format!("rules[name={}]", spec.name)
        } else {
            format!("rules[{i}]")
        };
        if valid_name(&spec.name) && !names.insert(spec.name.as_str()) {
            problems.push(FieldProblem::new(
                format!("{at}.name"),
                format!("the rule name {:?} is used twice", spec.name),
                "give every rule its own name",
            ));
        }
        if let Some(rule) = check_rule(spec, &at, sinks, &mut problems) {
            rules.push(rule);
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn check_rule(
    spec: &RuleSpec,
    at: &str,
    sinks: &[String],
    problems: &mut Vec<FieldProblem>,
) -> Option<AlertRule> {
    let before = problems.len();
    let field = |name: &str| format!("{at}.{name}");
    if !valid_name(&spec.name) {
        problems.push(FieldProblem::new(
            field("name"),
            format!("{:?} is not a valid rule name", spec.name),
            "use 1 to 64 of the characters A-Z a-z 0-9 _ . -, e.g. \"pool-hot\"",
        ));
    }
    let kinds = RuleKind::ALL.map(RuleKind::as_str).join(" | ");
    let Some(kind) = RuleKind::parse(&spec.kind) else {
        problems.push(FieldProblem::new(
            field("kind"),
            format!("{:?} is not a kind of alert rule", spec.kind),
            format!("use one of {kinds}"),
        ));
        return None;
    };
    let threshold = match (kind.default_threshold(), spec.threshold) {
        (None, None) => None,
        (None, Some(_)) => {
            problems.push(FieldProblem::new(
                field("threshold"),
                format!("a {} rule takes no threshold", kind.as_str()),
                match kind {
                    RuleKind::UnusedKey => {
                        "remove threshold; set window to how long a key may go unused, e.g. \"24h\""
                    }
                    _ => "remove threshold: an invalid key is one the upstream refused",
                },
            ));
            None
        }
        (Some(default), None) => Some(default),
        (Some(_), Some(t)) if t.is_finite() && t > 0.0 && t <= 1.0 => Some(t),
        (Some(default), Some(t)) => {
            problems.push(FieldProblem::new(
                field("threshold"),
                format!("{t} is not a share from 0 to 1"),
                format!(
                    "use a number over 0 and at most 1, e.g. {default} for {}%",
                    (default * 100.0).round()
                ),
            ));
            None
        }
    };
    let window = match (kind.default_window(), spec.window.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => {
            problems.push(FieldProblem::new(
                field("window"),
                format!("a {} rule takes no window", kind.as_str()),
                match kind {
                    RuleKind::Budget => "remove window: budget rules compare today's and this month's spend with [budgets]",
                    _ => "remove window: an invalid key alerts as soon as the upstream refuses it",
                },
            ));
            None
        }
        (Some(default), None) => Some(default),
        (Some(_), Some(text)) => {
            let max = if kind == RuleKind::ErrorRate {
                MAX_ERROR_RATE_WINDOW
            } else {
                MAX_WINDOW
            };
            match parse_window(text) {
                Some(w) if w.is_zero() && kind != RuleKind::UpstreamUtilization => {
                    problems.push(FieldProblem::new(
                        field("window"),
                        "the window is empty",
                        "use a positive duration such as \"5m\"",
                    ));
                    None
                }
                Some(w) if w > max => {
                    problems.push(FieldProblem::new(
                        field("window"),
                        format!(
                            "{text:?} is longer than the longest {} window, {}",
                            kind.as_str(),
                            format_window(max)
                        ),
                        format!("use at most \"{}\"", format_window(max)),
                    ));
                    None
                }
                Some(w) => Some(w),
                None => {
                    problems.push(FieldProblem::new(
                        field("window"),
                        format!("{text:?} is not a duration"),
                        "write a whole number and a unit: s, m, h or d, e.g. \"30s\", \"5m\", \"24h\"",
                    ));
                    None
                }
            }
        }
    };
    let min_requests = match (kind, spec.min_requests) {
        (RuleKind::ErrorRate, None) => DEFAULT_MIN_REQUESTS,
        (RuleKind::ErrorRate, Some(n)) if n >= 1 => n as u64,
        (RuleKind::ErrorRate, Some(n)) => {
            problems.push(FieldProblem::new(
                field("min_requests"),
                format!("{n} is not a number of calls"),
                format!("use 1 or more (default {DEFAULT_MIN_REQUESTS})"),
            ));
            0
        }
        (_, None) => 0,
        (_, Some(_)) => {
            problems.push(FieldProblem::new(
                field("min_requests"),
                format!(
                    "min_requests applies only to error_rate rules, not {}",
                    kind.as_str()
                ),
                "remove min_requests",
            ));
            0
        }
    };
    let rule_sinks = match &spec.sinks {
        None => sinks.to_vec(),
        Some(named) => {
            let mut chosen: Vec<String> = Vec::with_capacity(named.len());
            for name in named {
                if !sinks.contains(name) {
                    let known = if sinks.is_empty() {
                        "none is configured: add [[alerts.sinks]]".to_owned()
                    } else {
                        format!("the sinks are: {}", sinks.join(", "))
                    };
                    problems.push(FieldProblem::new(
                        field("sinks"),
                        format!("no sink is named {name:?}"),
                        format!("name a sink of [[alerts.sinks]] ({known})"),
                    ));
                } else if !chosen.contains(name) {
                    chosen.push(name.clone());
                }
            }
            chosen
        }
    };
    (problems.len() == before).then(|| AlertRule {
        name: spec.name.clone(),
        kind,
        threshold,
        window,
        min_requests,
        sinks: rule_sinks,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec(name: &str, kind: &str) -> RuleSpec {
        RuleSpec {
            name: name.to_owned(),
            kind: kind.to_owned(),
            ..RuleSpec::default()
        }
    }

    #[test]
    fn windows_parse_and_format() {
        assert_eq!(parse_window("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_window("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_window("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_window("3s"), Some(Duration::from_secs(3)));
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "-5m",
            "5w",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
        for text in ["3s", "5m", "24h", "7d", "90s", "0s"] {
            assert_eq!(format_window(parse_window(text).unwrap()), text);
        }
    }

    #[test]
    fn defaults_fill_unset_fields() {
        let sinks = vec!["ops".to_owned()];
        let rules = check_rules(
            &[
                spec("a", "error_rate"),
                spec("b", "unused_key"),
                spec("c", "budget"),
            ],
            &sinks,
        )
        .unwrap();
        assert_eq!(rules[0].threshold, Some(0.20));
        assert_eq!(rules[0].window, Some(Duration::from_secs(300)));
        assert_eq!(rules[0].min_requests, DEFAULT_MIN_REQUESTS);
        assert_eq!(rules[0].sinks, sinks);
        assert_eq!(rules[1].threshold, None);
        assert_eq!(rules[1].window, Some(Duration::from_secs(86_400)));
        assert_eq!(rules[2].threshold, Some(0.90));
        assert_eq!(rules[2].window, None);
        // What the API shows is accepted back unchanged.
        let specs: Vec<RuleSpec> = rules.iter().map(AlertRule::spec).collect();
        assert_eq!(check_rules(&specs, &sinks).unwrap(), rules);
    }

    #[test]
    fn every_problem_names_its_field() {
        let sinks = vec!["ops".to_owned()];
        let rules = [
            RuleSpec {
                threshold: Some(1.5),
                window: Some("soon".to_owned()),
                sinks: Some(vec!["pager".to_owned()]),
                ..spec("hot", "upstream_utilization")
            },
            spec("x", "telepathy"),
            RuleSpec {
                threshold: Some(0.5),
                ..spec("bad", "invalid_key")
            },
            RuleSpec {
                window: Some("1h".to_owned()),
                min_requests: Some(3),
                ..spec("money", "budget")
            },
            RuleSpec {
                window: Some("2d".to_owned()),
                min_requests: Some(0),
                ..spec("errors", "error_rate")
            },
            spec("hot", "invalid_key"),
            spec("no spaces", "invalid_key"),
        ];
        let problems = check_rules(&rules, &sinks).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for expected in [
            "rules[name=hot].threshold",
            "rules[name=hot].window",
            "rules[name=hot].sinks",
            "rules[name=x].kind",
            "rules[name=bad].threshold",
            "rules[name=money].window",
            "rules[name=money].min_requests",
            "rules[name=errors].window",
            "rules[name=errors].min_requests",
            "rules[name=hot].name",
            "rules[6].name",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
        assert!(problems.iter().all(|p| !p.fix.is_empty()));
    }

    #[test]
    fn default_rules_cover_every_kind() {
        let rules = default_rules(&[DEFAULT_SINK.to_owned()]);
        let kinds: Vec<RuleKind> = rules.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, RuleKind::ALL);
        let specs: Vec<RuleSpec> = rules.iter().map(AlertRule::spec).collect();
        assert_eq!(
            check_rules(&specs, &[DEFAULT_SINK.to_owned()]).unwrap(),
            rules
        );
    }
}
