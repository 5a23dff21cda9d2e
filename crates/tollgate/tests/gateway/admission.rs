//! Admission over HTTP: limits and budgets with many calls in flight, the soft-budget
//! downgrade, limit headers, `/v1/usage`, and the route table walk of SPEC §6.

use std::time::Duration;

use futures_util::future::join_all;
use mock_upstream::MockOptions;
use serde_json::{json, Value};
use tollgate::http::CLIENT_ROUTES;
use tollgate::store::KeyStatus;

use crate::common::*;

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sends `n` chat calls at once; answers (status, error code, Retry-After).
async fn burst(
    gw: &TestGateway,
    n: usize,
    body: Value,
) -> Vec<(u16, Option<String>, Option<String>)> {
    let calls = (0..n).map(|_| {
        let body = body.clone();
        async move {
            let r = gw.post("/v1/chat/completions", body).await;
            let status = r.status().as_u16();
            let retry_after = header(&r, "retry-after");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().map(str::to_owned);
            (status, code, retry_after)
        }
    });
    join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_against_rpm_10_admit_exactly_10() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 10\nrph = 0\n",
        mock: MockOptions {
            first_byte_delay: Duration::from_millis(300),
            ..MockOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let results = burst(&gw, 50, chat("hello")).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(ok, 10, "{results:?}");
    for (status, code, retry_after) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(*status, 429);
        assert_eq!(code.as_deref(), Some("rate_limit_exceeded"));
        let retry: u64 = retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=61).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(gw.mock.requests_for_path("/v1/chat/completions"), 10);
    // Every call has exactly one usage row, refusals included.
    let rows = gw.wait_for_rows(50).await;
    assert_eq!(rows.len(), 50);
    assert_eq!(
        rows.iter()
            .filter(|r| r.error_type.as_deref() == Some("rate_limited"))
            .count(),
        40
    );
}

#[tokio::test]
async fn every_answer_carries_the_limit_headers() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 5\nrph = 50\ntpm = 100000\n",
        ..Setup::default()
    })
    .await;
    let r = gw.post("/v1/chat/completions", chat("hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit-minute").as_deref(), Some("5"));
    assert_eq!(
        header(&r, "x-ratelimit-remaining-minute").as_deref(),
        Some("4")
    );
    assert_eq!(header(&r, "x-ratelimit-limit-hour").as_deref(), Some("50"));
    assert_eq!(
        header(&r, "x-ratelimit-remaining-hour").as_deref(),
        Some("49")
    );
    assert_eq!(
        header(&r, "x-ratelimit-limit-requests").as_deref(),
        Some("5")
    );
    assert_eq!(
        header(&r, "x-ratelimit-remaining-requests").as_deref(),
        Some("4")
    );
    assert!(header(&r, "x-ratelimit-reset-requests")
        .unwrap()
        .ends_with('s'));
    assert_eq!(
        header(&r, "x-ratelimit-limit-tokens").as_deref(),
        Some("100000")
    );
    assert!(header(&r, "x-ratelimit-remaining-tokens").is_some());
    // An upstream failure still tells the caller where it stands.
    let r = gw
        .post("/v1/chat/completions", chat("fail [[mock:500]]"))
        .await;
    assert_eq!(r.status(), 502);
    assert_eq!(
        header(&r, "x-ratelimit-remaining-minute").as_deref(),
        Some("3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_cannot_overrun_a_budget() {
    // mock-gpt costs 1.0 in / 2.0 out per million tokens; with max_tokens 1000 a
    // call reserves about 0.00203, so 0.0205 covers 10 estimates.
    let gw = TestGateway::start_with(Setup {
        extra: "[budgets]\nglobal_daily = 0.0205\n",
        mock: MockOptions {
            first_byte_delay: Duration::from_millis(500),
            ..MockOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let body = json!({"model": "mock-gpt", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]});
    let results = burst(&gw, 50, body.clone()).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(ok, 10, "{results:?}");
    for (status, code, retry_after) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(*status, 429);
        assert_eq!(code.as_deref(), Some("budget_exceeded"));
        assert!(retry_after.is_some());
    }
    assert_eq!(gw.mock.requests_for_path("/v1/chat/completions"), 10);
    // Settled at the real (smaller) cost, the budget admits more later, and the
    // spend never passes the budget by more than the estimates got wrong.
    let rows = gw.wait_for_rows(50).await;
    let spent: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    assert!(spent > 0 && spent <= 20_500_000, "spent {spent}");
}

const DOWNGRADE: &str = r#"
[[models]]
name = "premium-m"
provider = "local"
upstream_model = "mock-gpt"
input_per_1m = 0.0
output_per_1m = 10000.0
context_window = 100000
downgrade_to = "cheap-m"
[[models]]
name = "cheap-m"
provider = "local"
upstream_model = "mock-gpt"
capabilities = ["chat"]
context_window = 100000
[budgets]
global_daily = 1.0
soft_threshold = 0.5
"#;

#[tokio::test]
async fn past_the_soft_threshold_the_cheaper_model_serves_when_it_can() {
    let gw = TestGateway::start_with(Setup {
        extra: DOWNGRADE,
        ..Setup::default()
    })
    .await;
    let body = json!({"model": "premium-m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let first = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-tollgate-downgraded-from"), None);
    // Each call costs about 0.1–0.2 of the 1.0 budget: within a few calls the spend
    // passes 50% and calls move to cheap-m.
    let mut downgraded = None;
    for _ in 0..8 {
        let r = gw.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(r.status(), 200);
        if let Some(from) = header(&r, "x-tollgate-downgraded-from") {
            downgraded = Some(from);
            break;
        }
    }
    assert_eq!(downgraded.as_deref(), Some("premium-m"));
    // cheap-m cannot use tools: such a call stays on premium-m.
    let tools = json!({"model": "premium-m", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
    let r = gw.post("/v1/chat/completions", tools).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tollgate-downgraded-from"), None);
    let rows = gw.wait_for_rows(3).await;
    let down = rows
        .iter()
        .find(|r| r.downgraded_from.is_some())
        .expect("a downgraded row");
    assert_eq!(down.downgraded_from.as_deref(), Some("premium-m"));
    assert_eq!(down.model_served.as_deref(), Some("cheap-m"));
    assert_eq!(down.model_requested.as_deref(), Some("premium-m"));
}

#[tokio::test]
async fn usage_endpoint_reads_the_enforcement_counters() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 20\nrph = 0\ntpd = 100000\n",
        ..Setup::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    let r = gw
        .client
        .get(format!("{}/v1/usage", gw.url))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["key_id"], json!(gw.key_id));
    assert_eq!(body["limits"]["rpm"]["limit"], json!(20));
    assert_eq!(body["limits"]["rpm"]["remaining"], json!(18));
    assert!(body["limits"]["rpm"]["reset_s"].as_u64().unwrap() >= 1);
    assert!(
        body["limits"].get("rph").is_none(),
        "unset limits are omitted: {body}"
    );
    assert!(body["limits"]["tpd"]["remaining"].as_u64().unwrap() < 100000);
    let today = &body["usage"]["today"];
    assert_eq!(today["requests"], json!(2));
    assert!(today["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(today["completion_tokens"].as_u64().unwrap() > 0);
    assert!(today["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(body["usage"]["month"]["requests"], json!(2));
    // Reading usage counts nothing.
    let again: Value = gw
        .client
        .get(format!("{}/v1/usage", gw.url))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["limits"]["rpm"]["remaining"], json!(18));
}

fn route_body(path: &str) -> Value {
    match path {
        "/v1/completions" => json!({"model": "mock-gpt", "prompt": "hi"}),
        "/v1/embeddings" => json!({"model": "mock-embedding", "input": "hi"}),
        "/v1/messages" => {
            json!({"model": "mock-gpt", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        }
        _ => chat("hi"),
    }
}

async fn call_route(gw: &TestGateway, method: &str, path: &str, key: Option<&str>) -> u16 {
    let url = format!("{}{path}", gw.url);
    let mut request = match method {
        "POST" => gw.client.post(url).json(&route_body(path)),
        _ => gw.client.get(url),
    };
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().status().as_u16()
}

/// SPEC §6: no client route skips authentication, policy or limits.
#[tokio::test]
async fn every_client_route_refuses_missing_keys_suspended_keys_and_exhausted_limits() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 4\nrph = 0\n",
        ..Setup::default()
    })
    .await;
    let running = gw.running();
    let (suspended_id, suspended) = create_key(running, "suspended").await;
    running
        .gateway
        .store
        .set_key_status(&suspended_id, KeyStatus::Suspended)
        .await
        .unwrap();
    running
        .gateway
        .keys
        .reload(&running.gateway.store, &master_key())
        .await
        .unwrap();

    assert_eq!(CLIENT_ROUTES.len(), 6);
    for route in CLIENT_ROUTES {
        let (m, p) = (route.method, route.path);
        assert_eq!(
            call_route(&gw, m, p, None).await,
            401,
            "{m} {p} without a key"
        );
        assert_eq!(
            call_route(&gw, m, p, Some("tg-test-unknown")).await,
            401,
            "{m} {p} unknown key"
        );
        assert_eq!(
            call_route(&gw, m, p, Some(&suspended)).await,
            403,
            "{m} {p} suspended key"
        );
    }
    // Exhaust the key's 4 requests a minute on the routes that relay.
    let relaying: Vec<_> = CLIENT_ROUTES.iter().filter(|r| r.relays).collect();
    assert_eq!(relaying.len(), 4);
    for route in &relaying {
        assert_eq!(
            call_route(&gw, route.method, route.path, Some(&gw.key)).await,
            200,
            "{}",
            route.path
        );
    }
    for route in CLIENT_ROUTES {
        let status = call_route(&gw, route.method, route.path, Some(&gw.key)).await;
        if route.relays {
            assert_eq!(status, 429, "{} with the limit exhausted", route.path);
        } else {
            // Read-only routes count nothing and stay readable (SPEC §6).
            assert_eq!(status, 200, "{} with the limit exhausted", route.path);
        }
    }
    assert_eq!(gw.mock.requests_for_path("/v1/chat/completions"), 2);
}

#[tokio::test]
async fn spend_and_daily_limits_survive_a_restart() {
    let mut gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 0\nrph = 0\nrpd = 3\n",
        ..Setup::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    gw.restart().await;
    // The day's third call is still admitted, the fourth is not.
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        200
    );
    let r = gw.post("/v1/chat/completions", chat("hi")).await;
    assert_eq!(r.status(), 429);
    let usage: Value = gw
        .client
        .get(format!("{}/v1/usage", gw.url))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["usage"]["today"]["requests"], json!(3));
    assert!(usage["usage"]["month"]["cost"].as_f64().unwrap() > 0.0);
}

fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Two gateways on one Redis share each key's limit: 30 calls spread over both,
/// all in flight at once, against rpm=10 admit exactly 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_enforce_one_limit() {
    let redis = redis_url();
    let setup = || Setup {
        extra: "[tiers.standard]\nrpm = 10\nrph = 0\n",
        env: vec![(
            "TOLLGATE_STORAGE__REDIS_URL",
            Box::leak(redis.clone().into_boxed_str()),
        )],
        mock: MockOptions {
            first_byte_delay: Duration::from_millis(300),
            ..MockOptions::default()
        },
        ..Setup::default()
    };
    let a = TestGateway::start_with(setup()).await;
    let b = TestGateway::start_with(setup()).await;
    // The same client key in both gateways' databases.
    b.running()
        .gateway
        .store
        .insert_key(&tollgate::store::NewKey {
            id: a.key_id.clone(),
            name: "shared".to_owned(),
            owner: None,
            team: None,
            tier: "standard".to_owned(),
            env: "test".to_owned(),
            secret_hash: tollgate::auth::secret::hash_hex(&tollgate::auth::secret::hash(&a.key)),
            masked: tollgate::auth::secret::mask(&a.key),
            expires_at: None,
            dedicated_upstream: None,
            region: None,
            policy: Default::default(),
            hmac_secret: None,
        })
        .await
        .unwrap();
    b.running()
        .gateway
        .keys
        .reload(&b.running().gateway.store, &master_key())
        .await
        .unwrap();
    let calls = (0..30).map(|i| {
        let gw = if i % 2 == 0 { &a } else { &b };
        let key = a.key.clone();
        async move {
            gw.client
                .post(format!("{}/v1/chat/completions", gw.url))
                .bearer_auth(key)
                .json(&chat("hi"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    let upstream_calls = a.mock.requests_for_path("/v1/chat/completions")
        + b.mock.requests_for_path("/v1/chat/completions");
    assert_eq!(upstream_calls, 10);
}

/// SPEC §6: a stream that carries no usage is billed from counted tokens, marked as
/// estimated, and settled against the limits like any other call.
#[tokio::test]
async fn a_stream_without_usage_is_counted_and_billed() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 0\nrph = 0\ntpd = 1000000\n",
        ..Setup::default()
    })
    .await;
    let r = gw
        .post(
            "/v1/chat/completions",
            chat_stream("tell me [[mock:no-usage]]"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("\"usage\":{"), "the mock sent usage: {text}");
    let rows = gw.wait_for_rows(1).await;
    let row = &rows[0];
    assert!(row.usage_estimated);
    assert!(
        row.prompt_tokens > 0 && row.completion_tokens > 0,
        "{row:?}"
    );
    // mock-gpt costs 1.0 in / 2.0 out per million tokens.
    assert_eq!(
        row.cost_nanos,
        row.prompt_tokens * 1000 + row.completion_tokens * 2000
    );
    let usage: Value = gw
        .client
        .get(format!("{}/v1/usage", gw.url))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let today = &usage["usage"]["today"];
    assert_eq!(today["completion_tokens"], json!(row.completion_tokens));
    assert_eq!(
        usage["limits"]["tpd"]["remaining"],
        json!(1_000_000 - row.prompt_tokens - row.completion_tokens)
    );
}
