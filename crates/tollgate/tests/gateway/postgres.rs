//! The gateway and its CLI on PostgreSQL (SPEC §11): a representative set of what the
//! rest of the suite proves on SQLite, each test in a schema of its own in the
//! PostgreSQL at TOLLGATE_TEST_POSTGRES_URL. (TOLLGATE_TEST_DATABASE=postgres runs
//! every TestGateway test on PostgreSQL.)

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tollgate::admission::hmac::HmacSecret;
use tollgate::secrets::MasterKey;
use tollgate::store::{Backend, Store};

use crate::common::{
    chat, chat_stream, master_key, output_text, within_a_second, PgSchema, Setup, TestGateway,
    TEST_MASTER_KEY,
};

async fn on_postgres(extra: &'static str) -> TestGateway {
    let gw = TestGateway::start_with(Setup {
        postgres: true,
        extra,
        ..Setup::default()
    })
    .await;
    assert_eq!(gw.running().gateway.store.backend(), Backend::Postgres);
    gw
}

/// Runs the real `tollgate` binary with `database_url` and the test master key, off
/// the async runtime.
async fn cli(database_url: &str, args: &[&str], stdin: &str) -> Output {
    cli_with(database_url, args, stdin, &[]).await
}

/// Like [`cli`], with more environment.
async fn cli_with(database_url: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .env("TOLLGATE_STORAGE__DATABASE_URL", database_url)
        .env("TOLLGATE_MASTER_KEY", TEST_MASTER_KEY)
        .env("TOLLGATE_LOG", "error")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        drop(dir);
        out
    })
    .await
    .unwrap()
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", output_text(&out));
    out
}

#[tokio::test]
async fn calls_leave_one_usage_row_each() {
    let gw = on_postgres("").await;
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hello there"))
            .await
            .status(),
        200
    );
    let streamed = gw
        .post("/v1/chat/completions", chat_stream("hello again"))
        .await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().contains("[DONE]"));
    assert_eq!(
        gw.post(
            "/v1/chat/completions",
            json!({"model": "nope", "messages": []})
        )
        .await
        .status(),
        404
    );

    let rows = gw.wait_for_rows(3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let served: Vec<_> = rows.iter().filter(|r| r.status == 200).collect();
    assert_eq!(served.len(), 2);
    for r in &served {
        assert_eq!(r.key_id.as_deref(), Some(gw.key_id.as_str()));
        assert_eq!(r.owner.as_deref(), Some("owner-1"));
        assert_eq!(
            (r.model_served.as_deref(), r.provider.as_deref()),
            (Some("mock-gpt"), Some("local"))
        );
        assert_eq!(r.upstream_key_id.as_deref(), Some("up-1"));
        assert!(r.prompt_tokens > 0 && r.completion_tokens > 0 && r.cost_nanos > 0);
        assert_eq!(r.client_ip.as_deref(), Some("127.0.0.1"));
    }
    assert_eq!(served.iter().filter(|r| r.stream).count(), 1);
    let refused = rows.iter().find(|r| r.status == 404).unwrap();
    assert_eq!(refused.model_served, None);
    // Newest first, by request id (time-ordered).
    assert!(rows.windows(2).all(|w| w[0].request_id > w[1].request_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_and_revoked_by_the_cli_apply_within_a_second() {
    let gw = on_postgres("").await;
    let out = ok(cli(
        &gw.db_url,
        &["keys", "create", "--name", "pg", "--json"],
        "",
    )
    .await);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["key"].as_str().unwrap().to_owned();
    within_a_second(&gw, &secret, 200, "new key accepted").await;

    ok(cli(&gw.db_url, &["keys", "suspend", &id], "").await);
    within_a_second(&gw, &secret, 403, "suspension applied").await;
    ok(cli(&gw.db_url, &["keys", "resume", &id], "").await);
    within_a_second(&gw, &secret, 200, "resumption applied").await;
    ok(cli(&gw.db_url, &["keys", "revoke", &id], "").await);
    within_a_second(&gw, &secret, 403, "revocation applied").await;
    let refused = cli(&gw.db_url, &["keys", "resume", &id], "").await;
    assert!(!refused.status.success() && output_text(&refused).contains("revoked"));

    let listed = ok(cli(&gw.db_url, &["keys", "list", "--json"], "").await);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&id) && !listed.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_keys_are_stored_sealed_and_join_the_running_pool() {
    const SECRET: &str = "sk-stored-in-postgres-0123456789";
    let gw = on_postgres("").await;
    let added = ok(cli(
        &gw.db_url,
        &["upstream", "add", "--provider", "local", "--id", "db-1"],
        &format!("{SECRET}\n"),
    )
    .await);
    assert!(!output_text(&added).contains(SECRET));

    // No column of any row holds the secret, or a part of it.
    let pool = sqlx::PgPool::connect(&gw.db_url).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT CAST(u AS TEXT) FROM upstream_keys u")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("db-1") && rows[0].contains("sk-s…6789"));
    assert!(
        !rows[0].contains(&SECRET[6..22]),
        "stored in clear: {}",
        rows[0]
    );

    let deadline = Instant::now() + Duration::from_secs(3);
    while gw.mock.requests_for_key(SECRET) == 0 {
        assert!(
            Instant::now() < deadline,
            "the stored key was not used within 3 s"
        );
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }

    ok(cli(&gw.db_url, &["upstream", "disable", "db-1"], "").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = gw.mock.requests_for_key(SECRET);
    for _ in 0..4 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    assert_eq!(
        gw.mock.requests_for_key(SECRET),
        before,
        "disabled key used"
    );
}

#[tokio::test]
async fn spend_and_daily_limits_survive_a_restart() {
    let mut gw = on_postgres("[tiers.standard]\nrpm = 0\nrph = 0\nrpd = 3\n").await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("hi")).await.status(),
            200
        );
    }
    gw.restart().await;
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        429
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
    assert_eq!(usage["usage"]["today"]["requests"], json!(3));
    assert!(usage["usage"]["month"]["cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_config_check_take_a_postgres_url() {
    let schema = PgSchema::create().await;
    let first = ok(cli(&schema.url, &["migrate"], "").await);
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("database is up to date: postgres://"),
        "{}",
        output_text(&first)
    );
    ok(cli(&schema.url, &["migrate"], "").await);
    let store = Store::connect(&schema.url).await.unwrap();
    assert_eq!(store.keys_revision().await.unwrap(), 0);
    assert_eq!(store.upstream_keys_revision().await.unwrap(), 0);
    store.close().await;

    let checked = ok(cli(&schema.url, &["config", "check"], "").await);
    assert!(output_text(&checked).contains("database:  postgres://"));
    let secret_url = "postgresql://app:s3cret-pw@127.0.0.1:1/tollgate";
    let checked = ok(cli(secret_url, &["config", "check"], "").await);
    assert!(
        output_text(&checked).contains("postgresql://app:***@127.0.0.1:1/tollgate")
            && !output_text(&checked).contains("s3cret-pw"),
        "{}",
        output_text(&checked)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_reseals_every_stored_secret() {
    const SECRET: &str = "sk-rotated-in-postgres-0123456789";
    let schema = PgSchema::create().await;
    ok(cli(
        &schema.url,
        &["upstream", "add", "--provider", "openai", "--id", "oa-1"],
        &format!("{SECRET}\n"),
    )
    .await);
    ok(cli(
        &schema.url,
        &["keys", "create", "--name", "signer", "--hmac"],
        "",
    )
    .await);
    let new = MasterKey::generate();
    let out = ok(cli_with(
        &schema.url,
        &["admin", "rotate-master-key"],
        "",
        &[("TOLLGATE_NEW_MASTER_KEY", &new.to_base64())],
    )
    .await);
    assert!(
        output_text(&out).contains("re-encrypted 1 upstream key(s) and 1 client signing secret(s)"),
        "{}",
        output_text(&out)
    );
    let store = Store::connect(&schema.url).await.unwrap();
    let keys = store.list_upstream_keys(&new).await.unwrap();
    assert_eq!(keys[0].key.secret.expose(), SECRET);
    assert!(store.list_upstream_keys(&master_key()).await.is_err());
    let signer = store.list_keys().await.unwrap();
    let sealed = signer[0].hmac_secret.as_deref().unwrap();
    assert!(HmacSecret::open(sealed, &new).is_ok());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_with_the_password_masked_and_the_fix() {
    let url = "postgres://app:s3cret-pw@127.0.0.1:1/tollgate";
    for args in [
        &["migrate"][..],
        &["keys", "list"][..],
        &["upstream", "list"][..],
    ] {
        let out = cli(url, args, "").await;
        assert!(!out.status.success(), "{args:?}");
        let shown = output_text(&out);
        assert!(
            shown.contains("cannot open database postgres://app:***@127.0.0.1:1/tollgate")
                && shown.contains("is PostgreSQL running")
                && shown.contains("storage.database_url")
                && !shown.contains("s3cret-pw"),
            "{args:?}: {shown}"
        );
    }
    let out = cli(
        "postgres://app:pw@db.example:notaport/x",
        &["keys", "list"],
        "",
    )
    .await;
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("storage.database_url"),
        "{}",
        output_text(&out)
    );
}
