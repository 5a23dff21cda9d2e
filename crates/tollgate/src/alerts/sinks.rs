//! Where alerts go: a generic webhook (POST of a JSON object), a Slack incoming webhook
//! (POST of `{"text": …}`), e-mail over SMTP (lettre), or the gateway's log.
//!
//! A delivery that fails is retried once after a second; if it fails again it is
//! logged and dropped, never an error for the caller. Logs show a sink's URL masked to
//! its scheme and host (a Slack webhook's path and an SMTP URL's password are
//! credentials), and events never hold a secret.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use crate::config::{AlertSink, SinkKind};
use crate::providers::client::{self, HttpClient};
use crate::store::{AlertEvent, AlertState};

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The configured sinks, ready to send.
pub struct Sinks {
    http: HttpClient,
    sinks: Vec<Sink>,
}

struct Sink {
    name: String,
    target: Target,
}

enum Target {
    Webhook {
        uri: http::Uri,
        shown: String,
    },
    Slack {
        uri: http::Uri,
        shown: String,
    },
    Email {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        to: Vec<Mailbox>,
        shown: String,
    },
    Log,
    /// A sink that could not be set up (validation should have refused it); why.
    Broken(String),
}

impl Sinks {
    /// Prepares every sink of the configuration.
    pub fn new(config: &[AlertSink]) -> Sinks {
        let sinks = config
            .iter()
            .map(|s| Sink {
                name: s.name.clone(),
                target: target(&s.kind),
            })
            .collect();
        Sinks {
            http: client::build(ATTEMPT_TIMEOUT),
            sinks,
        }
    }

    /// Sends `event` to the sinks named in `names` (concurrently), each retried once.
    pub async fn deliver(&self, event: &AlertEvent, names: &[String]) {
        let sends = self
            .sinks
            .iter()
            .filter(|s| names.contains(&s.name))
            .map(|s| self.deliver_to(s, event));
        futures_util::future::join_all(sends).await;
    }

    async fn deliver_to(&self, sink: &Sink, event: &AlertEvent) {
        let mut last = match self.attempt(sink, event).await {
            Ok(()) => return,
            Err(e) => e,
        };
        if !matches!(sink.target, Target::Broken(_)) {
            tracing::warn!(sink = %sink.name, target = %shown(&sink.target), error = %last, rule = %event.rule, "alert delivery failed; retrying once");
            tokio::time::sleep(RETRY_AFTER).await;
            last = match self.attempt(sink, event).await {
                Ok(()) => return,
                Err(e) => e,
            };
        }
        tracing::error!(sink = %sink.name, target = %shown(&sink.target), error = %last, rule = %event.rule, subject = %event.subject, state = event.state.as_str(), "alert not delivered");
    }

    async fn attempt(&self, sink: &Sink, event: &AlertEvent) -> Result<(), String> {
        match &sink.target {
            Target::Webhook { uri, .. } => self.post(uri, webhook_body(event)).await,
            Target::Slack { uri, .. } => self.post(uri, slack_body(event)).await,
            Target::Email {
                transport,
                from,
                to,
                ..
            } => {
                let mail = email(event, from, to)?;
                match tokio::time::timeout(ATTEMPT_TIMEOUT, transport.send(mail)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("SMTP: {e}")),
                    Err(_) => Err(format!(
                        "SMTP: no answer within {} s",
                        ATTEMPT_TIMEOUT.as_secs()
                    )),
                }
            }
            Target::Log => {
                log(event);
                Ok(())
            }
            Target::Broken(why) => Err(why.clone()),
        }
    }

    async fn post(&self, uri: &http::Uri, body: serde_json::Value) -> Result<(), String> {
        let request = http::Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("tollgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let send = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("cannot reach it: {e}"))?;
            let status = response.status();
            // Read the (small) answer so the connection can be reused.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("it answered {status}"))
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, send).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        }
    }
}

fn target(kind: &SinkKind) -> Target {
    match kind {
        SinkKind::Webhook { url } | SinkKind::Slack { url } => {
            let shown = mask_url(url.expose());
            match url.expose().parse::<http::Uri>() {
                Ok(uri) if matches!(kind, SinkKind::Slack { .. }) => Target::Slack { uri, shown },
                Ok(uri) => Target::Webhook { uri, shown },
                Err(_) => Target::Broken(format!("{shown} is not a URL")),
            }
        }
        SinkKind::Email { smtp_url, from, to } => {
            let shown = mask_url(smtp_url.expose());
            let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.expose())
            {
                Ok(builder) => builder.timeout(Some(ATTEMPT_TIMEOUT)).build(),
                Err(_) => return Target::Broken(format!("{shown} is not a usable SMTP URL")),
            };
            let Ok(from) = from.parse::<Mailbox>() else {
                return Target::Broken(format!("{from:?} is not an e-mail address"));
            };
            let to: Result<Vec<Mailbox>, _> = to.iter().map(|t| t.parse::<Mailbox>()).collect();
            let Ok(to) = to else {
                return Target::Broken("a recipient is not an e-mail address".to_owned());
            };
            Target::Email {
                transport: Box::new(transport),
                from,
                to,
                shown,
            }
        }
        SinkKind::Log => Target::Log,
    }
}

/// What a log line may show of a sink's destination.
fn shown(target: &Target) -> String {
    match target {
        Target::Webhook { shown, .. }
        | Target::Slack { shown, .. }
        | Target::Email { shown, .. } => shown.clone(),
        Target::Log => "log".to_owned(),
        Target::Broken(_) => "(not set up)".to_owned(),
    }
}

/// A URL reduced to its scheme and host (`https://hooks.slack.com/…`): user, password,
/// path and query may be credentials.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(URL)".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if end < rest.len() { "/…" } else { "" };
    let user = if authority.contains('@') { "****@" } else { "" };
    format!("{scheme}://{user}{host}{more}")
}

/// Unix ms as RFC 3339 (UTC, seconds).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// A webhook's JSON: `{id, rule, kind, subject, state, message, value, threshold, at}`.
pub fn webhook_body(e: &AlertEvent) -> serde_json::Value {
    json!({
        "id": e.id,
        "rule": e.rule,
        "kind": e.kind,
        "subject": e.subject,
        "state": e.state.as_str(),
        "message": e.message,
        "value": e.value,
        "threshold": e.threshold,
        "at": rfc3339(e.at),
    })
}

fn headline(e: &AlertEvent) -> String {
    let state = match e.state {
        AlertState::Fired => "FIRED",
        AlertState::Resolved => "RESOLVED",
    };
    format!("[tollgate] {state} {} ({}): {}", e.rule, e.kind, e.subject)
}

/// A Slack incoming webhook's JSON: `{"text": …}`.
pub fn slack_body(e: &AlertEvent) -> serde_json::Value {
    json!({ "text": format!("{}\n{}", headline(e), e.message) })
}

fn email(e: &AlertEvent, from: &Mailbox, to: &[Mailbox]) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(headline(e))
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(t.clone());
    }
    let figure = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}"));
    let body = format!(
        "{}\n\nrule:      {}\nkind:      {}\nsubject:   {}\nstate:     {}\nvalue:     {}\nthreshold: {}\nat:        {}\nid:        {}\n",
        e.message,
        e.rule,
        e.kind,
        e.subject,
        e.state.as_str(),
        figure(e.value),
        figure(e.threshold),
        rfc3339(e.at),
        e.id,
    );
    builder
        .body(body)
        .map_err(|err| format!("cannot build the e-mail: {err}"))
}

fn log(e: &AlertEvent) {
    match e.state {
        AlertState::Fired => tracing::warn!(
            alert_rule = %e.rule,
            alert_kind = %e.kind,
            subject = %e.subject,
            value = ?e.value,
            threshold = ?e.threshold,
            "alert fired: {}",
            e.message
        ),
        AlertState::Resolved => tracing::info!(
            alert_rule = %e.rule,
            alert_kind = %e.kind,
            subject = %e.subject,
            value = ?e.value,
            threshold = ?e.threshold,
            "alert resolved: {}",
            e.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn event() -> AlertEvent {
        AlertEvent {
            id: "alert_0000000003e8abcdef01".to_owned(),
            rule: "bad-key".to_owned(),
            kind: "invalid_key".to_owned(),
            subject: "upstream_key=oa/k1".to_owned(),
            state: AlertState::Fired,
            message: "upstream key oa/k1 is invalid".to_owned(),
            value: None,
            threshold: None,
            at: 1_000,
        }
    }

    /// A server that answers `statuses` in turn, one per connection, and counts.
    async fn answering(statuses: &'static [u16]) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(n).copied().unwrap_or(200);
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    fn webhook(url: &str) -> Sinks {
        Sinks::new(&[AlertSink {
            name: "hook".to_owned(),
            kind: SinkKind::Webhook {
                url: crate::config::Secret::new(url),
            },
        }])
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_once() {
        let (url, count) = answering(&[500, 200]).await;
        webhook(&url).deliver(&event(), &["hook".to_owned()]).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let (url, count) = answering(&[500, 500, 500]).await;
        webhook(&url).deliver(&event(), &["hook".to_owned()]).await;
        assert_eq!(count.load(Ordering::SeqCst), 2, "once, not more");
        // Sinks not named are not sent to.
        let (url, count) = answering(&[]).await;
        webhook(&url).deliver(&event(), &["other".to_owned()]).await;
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_unreachable_sink_is_logged_not_fatal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        drop(listener);
        webhook(&url).deliver(&event(), &["hook".to_owned()]).await;
    }

    #[test]
    fn urls_are_masked_to_scheme_and_host() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("smtps://bot:hunter2@smtp.example.com:465"),
            "smtps://****@smtp.example.com:465"
        );
        assert_eq!(mask_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(mask_url("nonsense"), "(URL)");
    }

    #[test]
    fn bodies_carry_the_event() {
        let e = event();
        let hook = webhook_body(&e);
        assert_eq!(hook["rule"], "bad-key");
        assert_eq!(hook["state"], "fired");
        assert_eq!(hook["at"], "1970-01-01T00:00:01Z");
        assert!(hook["value"].is_null());
        let slack = slack_body(&e);
        let text = slack["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("[tollgate] FIRED bad-key (invalid_key): upstream_key=oa/k1\n"),
            "{text}"
        );
        let from: Mailbox = "Tollgate <tg@example.com>".parse().expect("address");
        let to: Mailbox = "ops@example.com".parse().expect("address");
        let mail = email(&e, &from, &[to]).expect("mail");
        let raw = String::from_utf8(mail.formatted()).expect("utf-8");
        assert!(raw.contains("Subject: [tollgate] FIRED bad-key"), "{raw}");
        assert!(raw.contains("upstream key oa/k1 is invalid"), "{raw}");
    }
}
