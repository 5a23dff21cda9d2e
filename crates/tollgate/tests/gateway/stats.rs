//! `tollgate stats` against a running gateway (SPEC §9), through the real binary.

use crate::common::*;

fn stats(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command
        .arg("stats")
        .args(args)
        .current_dir(dir.path())
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .env_remove("TOLLGATE_ADMIN_PASSWORD");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

// Multi-threaded: the binary runs while this thread waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_shows_each_key_by_token_or_password() {
    let gw = TestGateway::start_with(Setup {
        upstream_keys: vec![("up-good", "sk-good"), ("up-bad", "mock-401")],
        ..Setup::default()
    })
    .await;
    for _ in 0..4 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    let token = admin_token(&gw).await;
    let out = stats(&["--url", &gw.url, "--token", &token], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("up-good") && text.contains("up-bad"),
        "{text}"
    );
    assert!(
        text.contains("invalid"),
        "the 401 key is shown invalid: {text}"
    );
    assert!(!text.contains("sk-good"), "no secret: {text}");

    // Logging in with the password works too, and --json is one object.
    let out = stats(
        &["--url", &gw.url, "--json", "--health"],
        &[("TOLLGATE_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["providers"][0]["provider"], "local");
    assert_eq!(json["providers"][0]["usable_keys"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_when_a_provider_has_no_usable_key() {
    let gw = TestGateway::start_with(Setup {
        upstream_keys: vec![("up-bad", "mock-401")],
        ..Setup::default()
    })
    .await;
    let token = admin_token(&gw).await;
    let before = stats(&["--url", &gw.url, "--token", &token, "--health"], &[]);
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );
    // The only key answers 401 and is taken out of rotation.
    assert_ne!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        200
    );
    let after = stats(&["--url", &gw.url, "--token", &token, "--health"], &[]);
    let text = String::from_utf8_lossy(&after.stdout);
    assert_eq!(after.status.code(), Some(1), "{text}");
    assert!(text.contains("NO USABLE KEY: local"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_without_credentials_says_how_to_give_them() {
    let gw = TestGateway::start().await;
    let out = stats(&["--url", &gw.url], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("TOLLGATE_ADMIN_PASSWORD"),
        "{err}"
    );
    let out = stats(&["--url", "http://127.0.0.1:9", "--token", "x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the gateway"));
}
