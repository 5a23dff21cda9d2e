//! Alerts over loopback (SPEC §9): a local webhook receiver (generic and Slack format)
//! and a local SMTP server collect what the gateway sends; each alert fires once per
//! episode and resolves once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common::{admin_token, chat, Setup, TestGateway};

/// Bodies POSTed to a local HTTP server, with the path they were sent to.
#[derive(Clone)]
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let bodies: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let collected = bodies.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let collected = collected.clone();
            async move {
                let path = request.uri().path().to_owned();
                let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                collected.lock().unwrap().push((path, body));
                "ok"
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, bodies }
    }

    fn at(&self, path: &str) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// A tiny SMTP server: enough of RFC 5321 for one client to hand over messages.
#[derive(Clone)]
struct SmtpSink {
    url: String,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let collected = messages.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let collected = collected.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write
                        .write_all(b"220 localhost test SMTP\r\n")
                        .await
                        .unwrap();
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(message) = data.as_mut() {
                            if line == "." {
                                collected.lock().unwrap().push(std::mem::take(message));
                                data = None;
                                write.write_all(b"250 queued\r\n").await.unwrap();
                            } else {
                                message.push_str(line.strip_prefix('.').unwrap_or(&line));
                                message.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 localhost\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 end with <CRLF>.<CRLF>\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.unwrap();
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        write.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        SmtpSink { url, messages }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// Waits up to `limit` for `done`.
async fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// `text` as the `'static` TOML the harness takes (one small leak per test).
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[tokio::test]
async fn an_invalid_key_alerts_each_sink_exactly_once() {
    let hooks = Receiver::start().await;
    let smtp = SmtpSink::start().await;
    let extra = leak(format!(
        r#"
[alerts]
evaluate_every_s = 1
[[alerts.rules]]
name = "bad-key"
kind = "invalid_key"
[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{hooks}/hook"
[[alerts.sinks]]
name = "chat"
kind = "slack"
url = "{hooks}/slack"
[[alerts.sinks]]
name = "mail"
kind = "email"
smtp_url = "{smtp}"
from = "Tollgate <tollgate@example.com>"
to = ["ops@example.com"]
"#,
        hooks = hooks.url,
        smtp = smtp.url,
    ));
    let gw = TestGateway::start_with(Setup {
        upstream_keys: vec![("good", "sk-good-secret"), ("bad", "mock-401-bad-secret")],
        extra,
        ..Default::default()
    })
    .await;
    for i in 0..4 {
        let response = gw
            .post("/v1/chat/completions", chat(&format!("call {i}")))
            .await;
        assert_eq!(response.status(), 200, "call {i}: the good key serves");
    }
    assert_eq!(gw.mock.requests_for_key("mock-401-bad-secret"), 1);
    let delivered = || {
        hooks.at("/hook").len() == 1 && hooks.at("/slack").len() == 1 && smtp.messages().len() == 1
    };
    assert!(
        wait_for(Duration::from_secs(15), delivered).await,
        "not delivered: {:?} {:?}",
        hooks.bodies.lock().unwrap(),
        smtp.messages()
    );
    // More calls and several evaluations later: still one alert per sink.
    for i in 0..4 {
        let response = gw
            .post("/v1/chat/completions", chat(&format!("more {i}")))
            .await;
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        delivered(),
        "{:?} {:?}",
        hooks.bodies.lock().unwrap(),
        smtp.messages()
    );

    let hook = &hooks.at("/hook")[0];
    assert_eq!(hook["rule"], "bad-key");
    assert_eq!(hook["kind"], "invalid_key");
    assert_eq!(hook["subject"], "upstream_key=local/bad");
    assert_eq!(hook["state"], "fired");
    assert!(
        hook["message"]
            .as_str()
            .unwrap()
            .contains("local/bad is invalid"),
        "{hook}"
    );
    assert!(hook["at"].as_str().unwrap().ends_with('Z'), "{hook}");
    for field in ["value", "threshold", "id"] {
        assert!(hook.get(field).is_some(), "{field} missing: {hook}");
    }
    let slack = &hooks.at("/slack")[0];
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("FIRED bad-key (invalid_key): upstream_key=local/bad"),
        "{text}"
    );
    assert_eq!(
        slack.as_object().unwrap().len(),
        1,
        "Slack's format: text only"
    );
    let mail = &smtp.messages()[0];
    assert!(mail.contains("Subject: [tollgate] FIRED bad-key"), "{mail}");
    assert!(mail.contains("ops@example.com"), "{mail}");
    assert!(mail.contains("local/bad is invalid"), "{mail}");
    // No secret anywhere.
    let everything = format!("{:?} {:?}", hooks.bodies.lock().unwrap(), smtp.messages());
    assert!(
        !everything.contains("bad-secret") && !everything.contains("sk-good"),
        "{everything}"
    );

    // The admin API lists the history and the rules.
    let token = admin_token(&gw).await;
    let get = |path: &str| {
        gw.client
            .get(format!("{}{path}", gw.url))
            .bearer_auth(&token)
            .send()
    };
    let events: Value = get("/admin/api/alerts/events")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = events["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{events}");
    assert_eq!(data[0]["state"], "fired");
    assert_eq!(data[0]["subject"], "upstream_key=local/bad");
    let rules: Value = get("/admin/api/alerts/rules")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rules["data"][0]["name"], "bad-key", "{rules}");
    assert_eq!(rules["sinks"], json!(["hook", "chat", "mail"]));
    assert_eq!(rules["evaluate_every_s"], 1);
    let unauthenticated = gw
        .client
        .get(format!("{}/admin/api/alerts/events", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn error_rate_fires_on_failures_and_resolves_once_calls_succeed() {
    let hooks = Receiver::start().await;
    let extra = leak(format!(
        r#"
[alerts]
evaluate_every_s = 1
[[alerts.rules]]
name = "errors"
kind = "error_rate"
threshold = 0.5
window = "3s"
min_requests = 3
sinks = ["hook"]
[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{hooks}/hook"
"#,
        hooks = hooks.url,
    ));
    // Four keys and no retries: four quick failures, each on its own key (a failing
    // key rests a second).
    let gw = TestGateway::start_with(Setup {
        server: "max_retries = 0",
        upstream_keys: vec![
            ("k1", "sk-1"),
            ("k2", "sk-2"),
            ("k3", "sk-3"),
            ("k4", "sk-4"),
        ],
        extra,
        ..Default::default()
    })
    .await;
    for i in 0..4 {
        let response = gw
            .post(
                "/v1/chat/completions",
                chat(&format!("fail {i} [[mock:500]]")),
            )
            .await;
        assert!(
            response.status().as_u16() >= 500,
            "call {i}: {}",
            response.status()
        );
    }
    assert!(
        wait_for(Duration::from_secs(10), || !hooks.at("/hook").is_empty()).await,
        "the error rate did not fire"
    );
    let fired = hooks.at("/hook")[0].clone();
    assert_eq!(fired["state"], "fired", "{fired}");
    assert_eq!(fired["rule"], "errors");
    assert_eq!(fired["subject"], "provider=local");
    assert_eq!(fired["threshold"], 0.5);
    assert!(fired["value"].as_f64().unwrap() >= 0.5, "{fired}");

    // Successful calls (once the keys' short cooldown is over) bring the rate down.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while hooks.at("/hook").len() < 2 && tokio::time::Instant::now() < until {
        let _ = gw.post("/v1/chat/completions", chat("fine")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let bodies = hooks.at("/hook");
    let states: Vec<&str> = bodies
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["fired", "resolved"], "{bodies:?}");
    assert_eq!(bodies[1]["subject"], "provider=local");
}

#[tokio::test]
async fn alert_rules_are_replaced_at_run_time_and_validated() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let post = |body: Value| {
        gw.client
            .post(format!("{}/admin/api/alerts/rules", gw.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // Without [alerts]: the five default rules, to the log.
    let rules: Value = gw
        .client
        .get(format!("{}/admin/api/alerts/rules", gw.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rules["data"].as_array().unwrap().len(), 5, "{rules}");
    assert_eq!(rules["sinks"], json!(["log"]));

    let bad = post(json!({"rules": [
        {"name": "hot", "kind": "upstream_utilization", "threshold": 2.0},
        {"name": "slow", "kind": "error_rate", "window": "soon", "sinks": ["pager"]},
    ]}))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(
        error["error"]["param"], "rules[name=hot].threshold",
        "{error}"
    );
    let message = error["error"]["message"].as_str().unwrap();
    for field in ["rules[name=slow].window", "rules[name=slow].sinks"] {
        assert!(message.contains(field), "{field} missing: {message}");
    }
    let unknown_field = post(json!({"rules": [{"name": "x", "kind": "budget", "treshold": 1}]}))
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);

    let good = post(json!({"rules": [{"name": "money", "kind": "budget", "threshold": 0.5}]}))
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let answer: Value = good.json().await.unwrap();
    assert_eq!(answer["data"].as_array().unwrap().len(), 1);
    assert_eq!(answer["data"][0]["threshold"], 0.5);
    assert_eq!(answer["data"][0]["sinks"], json!(["log"]));
    let names: Vec<String> = gw
        .running()
        .gateway
        .alerts
        .rules()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["money"]);
}
