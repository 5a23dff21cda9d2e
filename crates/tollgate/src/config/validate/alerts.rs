//! `[alerts]`: the evaluation period, sinks (checked here: they read the environment)
//! and rules (checked by `config::alerts::check_rules`, as the admin API does).

use std::time::Duration;

use super::Validator;
use crate::config::alerts::*;
use crate::config::raw::{OneOrMany, RawAlertSink, RawAlerts};
use crate::config::Secret;

/// The longest evaluation period, in seconds.
const MAX_EVALUATE_EVERY_S: i64 = 3600;

impl Validator<'_> {
    pub(super) fn alerts(&mut self, raw: Option<&RawAlerts>) -> AlertsConfig {
        let Some(raw) = raw else {
            return AlertsConfig::default();
        };
        let evaluate_every = match raw.evaluate_every_s {
            None => Duration::from_secs(DEFAULT_EVALUATE_EVERY_S),
            Some(n) if (1..=MAX_EVALUATE_EVERY_S).contains(&n) => Duration::from_secs(n as u64),
            Some(n) => {
                self.problem(
                    "alerts.evaluate_every_s",
                    format!("{n} is out of range"),
                    format!("use a number of seconds from 1 to {MAX_EVALUATE_EVERY_S} (default {DEFAULT_EVALUATE_EVERY_S})"),
                );
                Duration::from_secs(DEFAULT_EVALUATE_EVERY_S)
            }
        };
        let sinks = match &raw.sinks {
            None => AlertsConfig::default().sinks,
            Some(raw_sinks) => self.alert_sinks(raw_sinks),
        };
        // Every declared sink's name, also of a sink with problems of its own (reported
        // there, not again in each rule that names it).
        let sink_names: Vec<String> = match &raw.sinks {
            None => sinks.iter().map(|s| s.name.clone()).collect(),
            Some(raw_sinks) => raw_sinks.iter().map(|s| s.name.clone()).collect(),
        };
        let rules = match &raw.rules {
            None => default_rules(&sink_names),
            Some(specs) => match check_rules(specs, &sink_names) {
                Ok(rules) => rules,
                Err(problems) => {
                    for p in problems {
                        self.problem(&format!("alerts.{}", p.field), p.message, p.fix);
                    }
                    Vec::new()
                }
            },
        };
        AlertsConfig {
            evaluate_every,
            rules,
            sinks,
        }
    }

    fn alert_sinks(&mut self, raw: &[RawAlertSink]) -> Vec<AlertSink> {
        let mut sinks: Vec<AlertSink> = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let at = if valid_name(&s.name) {
                format!("alerts.sinks[name={}]", s.name)
            } else {
                self.problem(
                    &format!("alerts.sinks[{i}].name"),
                    format!("{:?} is not a valid sink name", s.name),
                    "use 1 to 64 of the characters A-Z a-z 0-9 _ . -, e.g. \"ops\"",
                );
                format!("alerts.sinks[{i}]")
            };
            if sinks.iter().any(|other| other.name == s.name) {
                self.problem(
                    &format!("{at}.name"),
                    format!("the sink name {:?} is used twice", s.name),
                    "give every sink its own name",
                );
            }
            if let Some(kind) = self.alert_sink_kind(s, &at) {
                sinks.push(AlertSink {
                    name: s.name.clone(),
                    kind,
                });
            }
        }
        sinks
    }

    fn alert_sink_kind(&mut self, s: &RawAlertSink, at: &str) -> Option<SinkKind> {
        let field = |name: &str| format!("{at}.{name}");
        let unused = |v: &mut Self, name: &str, set: bool, kind: &str| {
            if set {
                v.problem(
                    &field(name),
                    format!("{name} does not apply to a {kind} sink"),
                    format!("remove {name}"),
                );
            }
        };
        match s.kind.as_str() {
            "webhook" | "slack" => {
                unused(self, "smtp_url", s.smtp_url.is_some(), &s.kind);
                unused(self, "smtp_url_env", s.smtp_url_env.is_some(), &s.kind);
                unused(self, "from", s.from.is_some(), &s.kind);
                unused(self, "to", s.to.is_some(), &s.kind);
                let url = self.sink_secret(at, "url", s.url.as_deref(), s.url_env.as_deref())?;
                if let Err(why) = check_http_url(url.expose()) {
                    self.problem(
                        &field(if s.url.is_some() { "url" } else { "url_env" }),
                        why,
                        if s.kind == "slack" {
                            "use the Slack incoming webhook URL, https://hooks.slack.com/services/…"
                        } else {
                            "use an http:// or https:// URL, e.g. \"http://alerts.internal/hook\""
                        },
                    );
                    return None;
                }
                Some(if s.kind == "slack" {
                    SinkKind::Slack { url }
                } else {
                    SinkKind::Webhook { url }
                })
            }
            "email" => {
                unused(self, "url", s.url.is_some(), "email");
                unused(self, "url_env", s.url_env.is_some(), "email");
                let smtp_url = self.sink_secret(
                    at,
                    "smtp_url",
                    s.smtp_url.as_deref(),
                    s.smtp_url_env.as_deref(),
                );
                if let Some(url) = &smtp_url {
                    if let Err(why) = check_smtp_url(url.expose()) {
                        self.problem(
                            &field(if s.smtp_url.is_some() { "smtp_url" } else { "smtp_url_env" }),
                            why,
                            "use smtp://HOST:PORT (add ?tls=required for STARTTLS) or smtps://USER:PASSWORD@HOST:465",
                        );
                    }
                }
                let from = match s.from.as_deref() {
                    None => {
                        self.problem(
                            &field("from"),
                            "an email sink needs a sender",
                            "add from = \"tollgate@example.com\"",
                        );
                        None
                    }
                    Some(f) if f.parse::<lettre::message::Mailbox>().is_err() => {
                        self.problem(
                            &field("from"),
                            format!("{f:?} is not an e-mail address"),
                            "use an address such as \"Tollgate <tollgate@example.com>\"",
                        );
                        None
                    }
                    Some(f) => Some(f.to_owned()),
                };
                let to: Vec<String> = match &s.to {
                    None => Vec::new(),
                    Some(OneOrMany::One(one)) => vec![one.clone()],
                    Some(OneOrMany::Many(many)) => many.clone(),
                };
                if to.is_empty() {
                    self.problem(
                        &field("to"),
                        "an email sink needs at least one recipient",
                        "add to = [\"ops@example.com\"]",
                    );
                }
                let bad: Vec<&String> = to
                    .iter()
                    .filter(|t| t.parse::<lettre::message::Mailbox>().is_err())
                    .collect();
                if !bad.is_empty() {
                    self.problem(
                        &field("to"),
                        format!("{bad:?} are not e-mail addresses"),
                        "list addresses such as \"ops@example.com\"",
                    );
                }
                match (smtp_url, from) {
                    (Some(smtp_url), Some(from))
                        if !to.is_empty()
                            && bad.is_empty()
                            && check_smtp_url(smtp_url.expose()).is_ok() =>
                    {
                        Some(SinkKind::Email { smtp_url, from, to })
                    }
                    _ => None,
                }
            }
            "log" => {
                for (name, set) in [
                    ("url", s.url.is_some()),
                    ("url_env", s.url_env.is_some()),
                    ("smtp_url", s.smtp_url.is_some()),
                    ("smtp_url_env", s.smtp_url_env.is_some()),
                    ("from", s.from.is_some()),
                    ("to", s.to.is_some()),
                ] {
                    unused(self, name, set, "log");
                }
                Some(SinkKind::Log)
            }
            other => {
                self.problem(
                    &field("kind"),
                    format!("{other:?} is not a kind of alert sink"),
                    "use one of webhook | slack | email | log",
                );
                None
            }
        }
    }

    /// A sink's URL, given in the file (`name`) or in the environment (`name_env`).
    fn sink_secret(
        &mut self,
        at: &str,
        name: &str,
        value: Option<&str>,
        var: Option<&str>,
    ) -> Option<Secret> {
        match (value, var) {
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("{at}.{name}"),
                    format!("both {name} and {name}_env are set"),
                    format!("keep one: {name}_env keeps the URL out of the file"),
                );
                None
            }
            (Some(v), None) if !v.trim().is_empty() => Some(Secret::new(v.trim())),
            (None, Some(var)) => match self
                .env
                .get(var)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
            {
                Some(v) => Some(Secret::new(v)),
                None => {
                    self.problem(
                        &format!("{at}.{name}_env"),
                        format!("the environment variable {var} is not set"),
                        format!("export {var}, or write {name} in the file"),
                    );
                    None
                }
            },
            _ => {
                self.problem(
                    &format!("{at}.{name}"),
                    format!("this sink needs {name}"),
                    format!("add {name} = \"…\", or {name}_env naming the variable that holds it"),
                );
                None
            }
        }
    }
}

/// An http(s) URL with a host. The message never repeats the URL (it may hold a
/// credential).
fn check_http_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| "this is not a URL".to_owned())?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        (Some("http" | "https"), _) => Err("the URL has no host".to_owned()),
        _ => Err("the URL must start with http:// or https://".to_owned()),
    }
}

/// An SMTP URL lettre can use. The message never repeats the URL (it may hold a
/// password).
fn check_smtp_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err("the SMTP URL must start with smtp:// or smtps://".to_owned());
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|_| {
            "this SMTP URL cannot be used: check the host, port and ?tls= option".to_owned()
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::from_text;
    use crate::config::alerts::{RuleKind, SinkKind};
    use crate::config::Env;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn without_alerts_the_default_rules_go_to_the_log() {
        let c = from_text("", "(defaults)", &env(&[])).unwrap();
        let kinds: Vec<RuleKind> = c.alerts.rules.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, RuleKind::ALL);
        assert!(c.alerts.rules.iter().all(|r| r.sinks == ["log"]));
        assert_eq!(c.alerts.sinks.len(), 1);
        assert!(matches!(c.alerts.sinks[0].kind, SinkKind::Log));
        assert_eq!(c.alerts.evaluate_every.as_secs(), 30);
        assert!(!c.warnings.iter().any(|w| w.contains("alerts")));
    }

    #[test]
    fn the_spec_example_loads() {
        let text = r#"
[alerts]
evaluate_every_s = 5
[[alerts.rules]]
name = "pool-hot"
kind = "upstream_utilization"
threshold = 0.85
window = "5m"
sinks = ["ops"]
[[alerts.rules]]
name = "errors"
kind = "error_rate"
[[alerts.sinks]]
name = "ops"
kind = "webhook"
url = "http://alerts.internal/hook"
[[alerts.sinks]]
name = "chat"
kind = "slack"
url_env = "SLACK_HOOK"
[[alerts.sinks]]
name = "mail"
kind = "email"
smtp_url = "smtps://bot:hunter2@smtp.example.com"
from = "Tollgate <tollgate@example.com>"
to = "ops@example.com"
"#;
        let c = from_text(
            text,
            "t.toml",
            &env(&[("SLACK_HOOK", "https://hooks.slack.com/services/T/B/X")]),
        )
        .unwrap();
        assert_eq!(c.alerts.evaluate_every.as_secs(), 5);
        assert_eq!(c.alerts.rules.len(), 2);
        assert_eq!(c.alerts.rules[0].sinks, ["ops"]);
        assert_eq!(c.alerts.rules[1].sinks, ["ops", "chat", "mail"]);
        assert_eq!(c.alerts.rules[0].window.unwrap().as_secs(), 300);
        let debug = format!("{:?}", c.alerts);
        assert!(
            !debug.contains("hunter2") && !debug.contains("services/T/B/X"),
            "{debug}"
        );
    }

    #[test]
    fn alert_problems_carry_location_and_fix() {
        let text = r#"
[alerts]
evaluate_every_s = 0
[[alerts.rules]]
name = "hot"
kind = "upstream_heat"
[[alerts.rules]]
name = "errors"
kind = "error_rate"
window = "five minutes"
sinks = ["pager"]
[[alerts.sinks]]
name = "hook"
kind = "webhook"
[[alerts.sinks]]
name = "mail"
kind = "email"
smtp_url = "imap://mail"
from = "not an address"
[[alerts.sinks]]
name = "pigeon"
kind = "carrier"
[[alerts.sinks]]
name = "chat"
kind = "slack"
url_env = "MISSING_SLACK"
"#;
        let problems = from_text(text, "t.toml", &env(&[])).unwrap_err().0;
        let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        for expected in [
            "t.toml: alerts.evaluate_every_s",
            "t.toml: alerts.rules[name=hot].kind",
            "t.toml: alerts.rules[name=errors].window",
            "t.toml: alerts.rules[name=errors].sinks",
            "t.toml: alerts.sinks[name=hook].url",
            "t.toml: alerts.sinks[name=mail].smtp_url",
            "t.toml: alerts.sinks[name=mail].from",
            "t.toml: alerts.sinks[name=mail].to",
            "t.toml: alerts.sinks[name=pigeon].kind",
            "t.toml: alerts.sinks[name=chat].url_env",
        ] {
            assert!(
                locations.contains(&expected),
                "{expected} missing from {locations:?}"
            );
        }
        assert!(problems.iter().all(|p| !p.fix.is_empty()));
    }

    #[test]
    fn unknown_alert_fields_are_refused_with_their_line() {
        let text =
            "[alerts]\n[[alerts.rules]]\nname = \"a\"\nkind = \"budget\"\nthreshhold = 0.5\n";
        let problems = from_text(text, "t.toml", &env(&[])).unwrap_err().0;
        assert!(problems[0].location.starts_with("t.toml:"), "{problems:?}");
        assert!(problems[0].message.contains("threshhold"), "{problems:?}");
    }

    #[test]
    fn no_rules_means_no_alerts() {
        let c = from_text("[alerts]\nrules = []\n", "t.toml", &env(&[])).unwrap();
        assert!(c.alerts.rules.is_empty());
        assert_eq!(c.alerts.sinks.len(), 1);
    }
}
