//! Upstream key pools over loopback: failover across failing keys, and quotas that
//! hold with hundreds of requests in flight (counted at the mock upstream).

use serde_json::json;

use crate::common::{chat, Setup, TestGateway};

const FLAKY_POOL: &str = r#"
[[providers]]
name = "pool"
kind = "openai_compatible"
base_url = "{mock}"
strategy = "round_robin"
keys = [
  { id = "limited", key_env = "K_429" },
  { id = "revoked", key_env = "K_401" },
  { id = "broken", key_env = "K_500" },
  { id = "healthy", key_env = "K_OK" },
]
[[models]]
name = "pooled"
provider = "pool"
upstream_model = "mock-gpt"
"#;

fn pooled(content: &str) -> serde_json::Value {
    json!({"model": "pooled", "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn clients_see_no_errors_while_one_key_is_healthy() {
    let gw = TestGateway::start_with(Setup {
        server: "max_retries = 3",
        extra: FLAKY_POOL,
        env: vec![
            ("K_429", "mock-429-retry-2"),
            ("K_401", "mock-401-revoked"),
            ("K_500", "mock-500-broken"),
            ("K_OK", "sk-healthy"),
        ],
        ..Default::default()
    })
    .await;
    for i in 0..20 {
        let response = gw
            .post("/v1/chat/completions", pooled(&format!("call {i}")))
            .await;
        assert_eq!(response.status(), 200, "call {i}");
    }
    let concurrent = futures_util::future::join_all(
        (0..30).map(|i| gw.post("/v1/chat/completions", pooled(&format!("burst {i}")))),
    )
    .await;
    assert!(concurrent.iter().all(|r| r.status() == 200));

    assert_eq!(
        gw.mock.requests_for_key("mock-401-revoked"),
        1,
        "an invalid key is not tried again"
    );
    assert_eq!(
        gw.mock.requests_for_key("mock-429-retry-2"),
        1,
        "a rate-limited key rests for its Retry-After"
    );
    assert!(
        gw.mock.requests_for_key("mock-500-broken") <= 3,
        "a failing key backs off"
    );
    assert_eq!(gw.mock.requests_for_key("sk-healthy"), 50);

    // The cooled key comes back after its 2 s; the invalid one does not.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    for i in 0..8 {
        assert_eq!(
            gw.post("/v1/chat/completions", pooled(&format!("later {i}")))
                .await
                .status(),
            200
        );
    }
    assert!(
        gw.mock.requests_for_key("mock-429-retry-2") >= 2,
        "the cooled key is used again"
    );
    assert_eq!(gw.mock.requests_for_key("mock-401-revoked"), 1);
}

const LIMITED_POOL: &str = r#"
[[providers]]
name = "quota"
kind = "openai_compatible"
base_url = "{mock}"
strategy = "least_loaded"
keys = [
  { id = "q1", key_env = "Q1", rpm = 50 },
  { id = "q2", key_env = "Q2", rpm = 50 },
  { id = "q3", key_env = "Q3", rpm = 50 },
]
[[models]]
name = "quota-gpt"
provider = "quota"
upstream_model = "mock-gpt"
"#;

#[tokio::test]
async fn three_hundred_concurrent_calls_never_exceed_a_key_rpm() {
    let gw = TestGateway::start_with(Setup {
        extra: LIMITED_POOL,
        env: vec![("Q1", "sk-q1"), ("Q2", "sk-q2"), ("Q3", "sk-q3")],
        ..Default::default()
    })
    .await;
    let body = json!({"model": "quota-gpt", "messages": [{"role": "user", "content": "hi"}]});
    let responses = futures_util::future::join_all(
        (0..300).map(|_| gw.post("/v1/chat/completions", body.clone())),
    )
    .await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let refused: Vec<_> = responses.iter().filter(|r| r.status() == 503).collect();
    assert_eq!(ok + refused.len(), 300);
    for key in ["sk-q1", "sk-q2", "sk-q3"] {
        assert!(
            gw.mock.requests_for_key(key) <= 50,
            "{key}: {}",
            gw.mock.requests_for_key(key)
        );
    }
    assert_eq!(ok as u64, gw.mock.total_requests());
    assert_eq!(ok, 150, "all three keys used to their quota");
    assert!(refused
        .iter()
        .all(|r| r.headers().contains_key("retry-after")));
    // Other models are not affected.
    assert_eq!(
        gw.post("/v1/chat/completions", chat("still fine"))
            .await
            .status(),
        200
    );
}

/// Runs the real `tollgate` binary against the gateway's database.
fn cli(gw: &TestGateway, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("TOLLGATE_CONFIG")
        .env("TOLLGATE_STORAGE__DATABASE_URL", &gw.db_url)
        .env("TOLLGATE_MASTER_KEY", crate::common::TEST_MASTER_KEY)
        .env("TOLLGATE_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

// Multi-threaded: `cli` blocks its thread while the child runs, and the gateway's
// background tasks (the usage writer mid-transaction) must go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_added_from_the_cli_join_the_running_pool() {
    let gw = TestGateway::start().await;
    let added = cli(
        &gw,
        &["upstream", "add", "--provider", "local", "--id", "db-1"],
        "sk-from-the-store\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while gw.mock.requests_for_key("sk-from-the-store") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stored key was not used within 3 s"
        );
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    let stats = gw.running().gateway.upstreams[0].pool.stats();
    assert_eq!(
        stats.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["up-1", "db-1"]
    );

    let disabled = cli(&gw, &["upstream", "disable", "db-1"], "");
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = gw.mock.requests_for_key("sk-from-the-store");
    for _ in 0..6 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    assert_eq!(
        gw.mock.requests_for_key("sk-from-the-store"),
        before,
        "a disabled key is not used"
    );
}

/// SPEC §5: a key the upstream refused stays out of rotation until an operator
/// enables it again; `upstream enable` does, on a running gateway, within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_stored_key_returns_when_enabled_again() {
    let gw = TestGateway::start().await;
    let added = cli(
        &gw,
        &["upstream", "add", "--provider", "local", "--id", "db-bad"],
        "mock-401\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let state = |gw: &TestGateway| {
        gw.running().gateway.upstreams[0]
            .pool
            .stats()
            .into_iter()
            .find(|k| k.id == "db-bad")
            .map(|k| k.state)
    };
    // Calls go on until the stored key was tried and found invalid.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while state(&gw) != Some("invalid") {
        assert!(
            std::time::Instant::now() < deadline,
            "db-bad never became invalid: {:?}",
            state(&gw)
        );
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    // It does not come back by itself.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(state(&gw), Some("invalid"));
    let enabled = cli(&gw, &["upstream", "enable", "db-bad"], "");
    assert!(
        enabled.status.success(),
        "{}",
        String::from_utf8_lossy(&enabled.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while state(&gw) != Some("ok") {
        assert!(
            std::time::Instant::now() < deadline,
            "db-bad was not re-enabled: {:?}",
            state(&gw)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
