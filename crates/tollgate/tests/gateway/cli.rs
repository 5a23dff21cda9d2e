//! The `tollgate` binary's subcommands.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tollgate::admission::hmac::HmacSecret;
use tollgate::secrets::MasterKey;
use tollgate::store::Store;

use crate::common::{
    master_key, output_text, status_of, within_a_second, TestGateway, TEST_MASTER_KEY,
};

fn tollgate(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_MASTER_KEY")
        .env("TOLLGATE_LOG", "error");
    c
}

#[test]
fn config_check_prints_every_problem_with_location_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nlisten = \"nowhere\"\n[[providers]]\nname = \"x\"\nkind = \"openai_compatible\"\n[[models]]\nname = \"m\"\nprovider = \"ghost\"\n",
    )
    .unwrap();
    let out = tollgate(dir.path())
        .args(["config", "check", "--config", "bad.toml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for expected in [
        "bad.toml: server.listen",
        "bad.toml: providers[0].base_url",
        "bad.toml: models[0].provider",
        "fix:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let ok = tollgate(dir.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("mock-gpt"));
}

#[test]
fn keys_create_list_show_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate(dir.path())
        .args([
            "keys", "create", "--name", "ci", "--owner", "alice", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(key.starts_with("tg-live-") && key.len() >= 8 + 32);

    let list = tollgate(dir.path())
        .args(["keys", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(id) && text.contains("alice"));
    assert!(!text.contains(key), "secret shown in list");
    assert!(text.contains(&key[..12]) && text.contains('…'));

    let show = tollgate(dir.path())
        .args(["keys", "show", id, "--json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["status"], "active");
    assert!(shown.get("key").is_none());

    assert!(tollgate(dir.path())
        .args(["keys", "revoke", id])
        .status()
        .unwrap()
        .success());
    let show = tollgate(dir.path())
        .args(["keys", "show", id, "--json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["status"], "revoked");

    let missing = tollgate(dir.path())
        .args(["keys", "revoke", "key_nope"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("key_nope"));
}

#[test]
fn version_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let v = tollgate(dir.path()).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("tollgate "));
    let m = tollgate(dir.path()).arg("migrate").output().unwrap();
    assert!(m.status.success());
    assert!(dir.path().join("tollgate.db").exists());
}

#[test]
fn keys_need_only_storage_not_provider_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "[storage]\ndatabase_url = \"sqlite://keys.db\"\n[[providers]]\nname = \"o\"\nkind = \"openai\"\nkeys = [ { id = \"a\", key_env = \"TOLLGATE_TEST_UNSET_VAR\" } ]\n",
    )
    .unwrap();
    let out = tollgate(dir.path())
        .args([
            "keys", "create", "--name", "x", "--json", "--config", "t.toml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("keys.db").exists());
    // serve still refuses the configuration and says why.
    let serve = tollgate(dir.path())
        .args(["serve", "--config", "t.toml"])
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("TOLLGATE_TEST_UNSET_VAR"));
}

/// Runs `tollgate keys args…` in `dir` with the test master key.
fn keys(dir: &Path, args: &[&str]) -> Output {
    tollgate(dir)
        .arg("keys")
        .args(args)
        .env("TOLLGATE_MASTER_KEY", TEST_MASTER_KEY)
        .output()
        .unwrap()
}

/// Runs `tollgate keys args…`, which must succeed, and parses its JSON output.
#[track_caller]
fn keys_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = keys(dir, args);
    assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", output_text(&out)))
}

/// Every byte the database keeps on disk: the file, its WAL and shared memory.
fn database_bytes(dir: &Path) -> Vec<u8> {
    ["tollgate.db", "tollgate.db-wal", "tollgate.db-shm"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.exists())
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn keys_create_with_every_flag_then_show_reflects_it() {
    let dir = tempfile::tempdir().unwrap();
    let created = keys_json(
        dir.path(),
        &[
            "create",
            "--name",
            "full",
            "--owner",
            "alice",
            "--team",
            "ml",
            "--tier",
            "premium",
            "--models",
            "mock-gpt,gpt-alias",
            "--endpoints",
            "chat,embeddings",
            "--rpm",
            "10",
            "--rph",
            "100",
            "--rpd",
            "1000",
            "--tpm",
            "5000",
            "--tpd",
            "50000",
            "--tokens-per-month",
            "1000000",
            "--daily-budget",
            "1.5",
            "--monthly-budget",
            "30",
            "--expires",
            "30d",
            "--ip",
            "10.0.0.0/8",
            "--ip",
            "192.168.1.7",
            "--cors-origin",
            "https://app.example.com",
            "--cors-origin",
            "http://localhost:3000/",
            "--no-streaming",
            "--no-tools",
            "--no-vision",
            "--max-tokens",
            "512",
            "--dedicated-upstream",
            "up-1",
            "--region",
            "eu",
            "--env",
            "test",
            "--hmac",
            "--json",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    let hmac = created["hmac_secret"].as_str().unwrap().to_owned();
    assert!(key.starts_with("tg-test-") && key.len() >= 8 + 32, "{key}");
    assert!(hmac.len() >= 32 && hmac != key);

    let shown = keys_json(dir.path(), &["show", &id, "--json"]);
    let expected_policy = serde_json::json!({
        "permissions": {
            "models": ["mock-gpt", "gpt-alias"],
            "endpoints": ["/v1/chat/completions", "/v1/embeddings"],
            "max_tokens": 512,
            "streaming": false,
            "tools": false,
            "vision": false
        },
        "limits": {
            "rpm": 10, "rph": 100, "rpd": 1000, "tpm": 5000, "tpd": 50000,
            "tokens_per_month": 1000000
        },
        "budgets": {"daily": 1.5, "monthly": 30.0},
        "ip_allowlist": ["10.0.0.0/8", "192.168.1.7/32"],
        "cors_origins": ["https://app.example.com", "http://localhost:3000"]
    });
    assert_eq!(shown["policy"], expected_policy, "{shown}");
    assert_eq!(created["policy"], expected_policy);
    for (field, value) in [
        ("id", id.as_str()),
        ("name", "full"),
        ("owner", "alice"),
        ("team", "ml"),
        ("tier", "premium"),
        ("env", "test"),
        ("status", "active"),
        ("dedicated_upstream", "up-1"),
        ("region", "eu"),
    ] {
        assert_eq!(shown[field].as_str(), Some(value), "{field}: {shown}");
    }
    assert_eq!(shown["hmac"], true);
    let expires = chrono::DateTime::parse_from_rfc3339(shown["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let in_30d = chrono::Utc::now().timestamp() + 30 * 86_400;
    assert!(
        (in_30d - 120..=in_30d).contains(&expires),
        "{expires} vs {in_30d}"
    );
    let shown_text = shown.to_string();
    assert!(!shown_text.contains(&key) && !shown_text.contains(&hmac));

    // The readable form spells the policy out.
    let out = keys(dir.path(), &["show", &id]);
    let text = output_text(&out);
    for expected in [
        "mock-gpt, gpt-alias",
        "/v1/chat/completions, /v1/embeddings",
        "streaming refused, tools refused, vision refused",
        "rpm 10, rph 100, rpd 1000, tpm 5000, tpd 50000, tokens/month 1000000",
        "daily 1.5, monthly 30",
        "10.0.0.0/8, 192.168.1.7/32",
        "https://app.example.com, http://localhost:3000",
        "max tokens:",
        "512",
        "required (signing secret sealed under master key",
        &master_key().fingerprint(),
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert!(!text.contains(&key) && !text.contains(&hmac));
    let list = keys(dir.path(), &["list"]);
    assert!(!output_text(&list).contains(&key) && !output_text(&list).contains(&hmac));

    // The signing secret is stored only sealed under the master key.
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("tollgate.db").display()
    ))
    .await
    .unwrap();
    let record = store.find_key(&id).await.unwrap();
    store.close().await;
    let sealed = record.hmac_secret.unwrap();
    assert!(!sealed.contains(&hmac));
    assert_eq!(
        HmacSecret::open(&sealed, &master_key()).unwrap().expose(),
        hmac
    );
    assert!(HmacSecret::open(&sealed, &MasterKey::generate()).is_err());
    let bytes = database_bytes(dir.path());
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, &hmac),
        "the signing secret is stored in clear"
    );
    assert!(
        !contains(&bytes, &hmac[8..24]),
        "part of the signing secret is stored in clear"
    );
    assert!(!contains(&bytes, &key), "the key is stored in clear");

    // Without --hmac there is no signing secret.
    let plain = keys_json(dir.path(), &["create", "--name", "plain", "--json"]);
    assert!(plain.get("hmac_secret").is_none());
    assert_eq!(plain["hmac"], false);
}

#[test]
fn keys_update_sets_and_clears_fields() {
    let dir = tempfile::tempdir().unwrap();
    let created = keys_json(
        dir.path(),
        &[
            "create",
            "--name",
            "u",
            "--owner",
            "bob",
            "--region",
            "us",
            "--rpm",
            "10",
            "--tpm",
            "900",
            "--models",
            "a,b",
            "--ip",
            "10.0.0.0/8",
            "--daily-budget",
            "4",
            "--expires",
            "12h",
            "--json",
        ],
    );
    let id = created["id"].as_str().unwrap();
    let updated = keys_json(
        dir.path(),
        &[
            "update",
            id,
            "--name",
            "renamed",
            "--rpm",
            "0",
            "--rph",
            "50",
            "--clear",
            "models,ip,owner",
            "--clear",
            "expires",
            "--no-tools",
            "--daily-budget",
            "0",
            "--monthly-budget",
            "9.5",
            "--endpoints",
            "/v1/embeddings",
            "--metadata",
            r#"{"project":"x"}"#,
            "--json",
        ],
    );
    assert_eq!(updated["name"], "renamed");
    let shown = keys_json(dir.path(), &["show", id, "--json"]);
    assert_eq!(shown, updated);
    assert_eq!(shown["owner"], serde_json::Value::Null);
    assert_eq!(shown["expires_at"], serde_json::Value::Null);
    assert_eq!(shown["region"], "us", "untouched fields stay");
    assert_eq!(shown["metadata"], serde_json::json!({"project": "x"}));
    assert_eq!(
        shown["policy"],
        serde_json::json!({
            "permissions": {
                "endpoints": ["/v1/embeddings"],
                "streaming": true, "tools": false, "vision": true
            },
            "limits": {"rph": 50, "tpm": 900},
            "budgets": {"monthly": 9.5},
            "ip_allowlist": [],
            "cors_origins": []
        })
    );

    // Everything back to the tier's values and defaults.
    let cleared = keys_json(
        dir.path(),
        &[
            "update",
            id,
            "--clear",
            "limits,budgets,endpoints,region,metadata",
            "--tools",
            "--json",
        ],
    );
    assert_eq!(
        cleared["policy"],
        serde_json::to_value(tollgate::admission::KeyPolicy::default()).unwrap()
    );
    assert_eq!(cleared["region"], serde_json::Value::Null);
    assert_eq!(cleared["metadata"], serde_json::json!({}));

    // The readable form says where a limit comes from.
    let out = keys(dir.path(), &["update", id, "--tpd", "77"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("updated key") && text.contains("tpd 77") && text.contains("rpm tier"),
        "{text}"
    );

    let nothing = keys(dir.path(), &["update", id]);
    assert!(!nothing.status.success());
    assert!(
        output_text(&nothing).contains("nothing to change"),
        "{}",
        output_text(&nothing)
    );
}

#[test]
fn keys_refuse_bad_flag_values_with_the_flag_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let created = keys_json(dir.path(), &["create", "--name", "ok", "--json"]);
    let id = created["id"].as_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["create", "--name", "x", "--ip", "10.0.0.0/33"],
            vec!["--ip", "not a CIDR", "10.0.0.0/8"],
        ),
        (
            vec!["create", "--name", "x", "--endpoints", "chat,files"],
            vec![
                "--endpoints",
                "files",
                "chat (/v1/chat/completions)",
                "embeddings",
                "usage (/v1/usage)",
            ],
        ),
        (
            vec!["create", "--name", "x", "--expires", "2020-01-01T00:00:00Z"],
            vec!["--expires", "in the past"],
        ),
        (
            vec!["create", "--name", "x", "--expires", "3y"],
            vec!["--expires", "30d"],
        ),
        (
            vec!["create", "--name", "x", "--rpm", "-5"],
            vec!["--rpm", "whole number"],
        ),
        (
            vec!["create", "--name", "x", "--tpm", "lots"],
            vec!["--tpm", "whole number"],
        ),
        (
            vec!["create", "--name", "x", "--daily-budget", "-1"],
            vec!["--daily-budget", "amount"],
        ),
        (
            vec!["create", "--name", "x", "--monthly-budget", "NaN"],
            vec!["--monthly-budget", "amount"],
        ),
        (
            vec!["create", "--name", "x", "--cors-origin", "app.example.com"],
            vec!["--cors-origin", "https://app.example.com"],
        ),
        (
            vec!["create", "--name", "x", "--tier", "gold tier"],
            vec!["--tier", "A-Z a-z 0-9"],
        ),
        (vec!["create", "--name", " "], vec!["--name", "empty"]),
        (
            vec!["create", "--name", "x", "--models", "a,,b"],
            vec!["--models", "empty"],
        ),
        (
            vec!["create", "--name", "x", "--env", "prod"],
            vec!["--env", "live", "test"],
        ),
        (
            vec!["create", "--name", "x", "--no-streaming", "--streaming"],
            vec!["--no-streaming", "--streaming"],
        ),
        (
            vec!["update", id, "--rpm", "5", "--clear", "rpm"],
            vec!["--rpm and --clear rpm contradict"],
        ),
        (
            vec!["update", id, "--tpm", "5", "--clear", "limits"],
            vec!["--tpm and --clear limits contradict"],
        ),
        (
            vec!["update", id, "--clear", "everything"],
            vec!["--clear", "tokens-per-month", "cors-origin"],
        ),
        (
            vec!["update", id, "--metadata", "[1]"],
            vec!["--metadata", "JSON object"],
        ),
        (vec!["update", "key_nope", "--rpm", "5"], vec!["key_nope"]),
        (vec!["suspend", "key_nope"], vec!["key_nope"]),
        (vec!["regenerate", "key_nope"], vec!["key_nope"]),
        (vec!["delete", "key_nope"], vec!["key_nope"]),
    ];
    for (args, expected) in cases {
        let out = keys(dir.path(), &args);
        let text = output_text(&out);
        assert!(!out.status.success(), "accepted {args:?}: {text}");
        for e in expected {
            assert!(text.contains(e), "{args:?}: {e:?} missing in:\n{text}");
        }
    }
    // Nothing was created or changed by the refused commands.
    let list = keys_json(dir.path(), &["list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        keys_json(dir.path(), &["show", id, "--json"]),
        created_view(&created)
    );
}

/// What `show --json` prints for a key just created (`create --json` minus the secret).
fn created_view(created: &serde_json::Value) -> serde_json::Value {
    let mut view = created.clone();
    view.as_object_mut().unwrap().remove("key");
    view
}

/// A config file in `dir` pointing at the gateway's database.
fn config_for(dir: &Path, gw: &TestGateway) -> String {
    let path = dir.join("cli.toml");
    std::fs::write(
        &path,
        format!("[storage]\ndatabase_url = \"{}\"\n", gw.db_url),
    )
    .unwrap();
    path.display().to_string()
}

/// Runs `tollgate keys args… --config config` off the async runtime.
async fn keys_async(dir: &Path, config: &str, args: &[&str], master: &str) -> Output {
    let mut cmd = tollgate(dir);
    cmd.arg("keys")
        .args(args)
        .args(["--config", config])
        .env("TOLLGATE_MASTER_KEY", master);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    out
}

#[tokio::test]
async fn keys_lifecycle_applies_to_a_running_gateway_within_a_second() {
    let gw = TestGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &gw);
    let run =
        |args: &'static [&'static str]| keys_async(dir.path(), &config, args, TEST_MASTER_KEY);

    let out = run(&["create", "--name", "life", "--json"]).await;
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let old = created["key"].as_str().unwrap().to_owned();
    within_a_second(&gw, &old, 200, "new key accepted").await;

    let args = |verb: &str| vec![verb.to_owned(), id.clone()];
    let run_owned = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        let config = config.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            keys_async(&dir, &config, &refs, TEST_MASTER_KEY).await
        }
    };
    run_owned(args("suspend")).await;
    within_a_second(&gw, &old, 403, "suspension applied").await;
    run_owned(args("resume")).await;
    within_a_second(&gw, &old, 200, "resumption applied").await;

    let out = run_owned(vec!["regenerate".into(), id.clone(), "--json".into()]).await;
    let regenerated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(regenerated["id"].as_str(), Some(id.as_str()), "same id");
    let new = regenerated["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    within_a_second(&gw, &old, 401, "old secret refused").await;
    assert_eq!(status_of(&gw, &new).await, 200, "new secret accepted");

    run_owned(args("revoke")).await;
    within_a_second(&gw, &new, 403, "revocation applied").await;
    let mut cmd = tollgate(dir.path());
    cmd.args(["keys", "resume", &id, "--config", &config]);
    let refused = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("revoked"),
        "{}",
        output_text(&refused)
    );

    run_owned(args("delete")).await;
    within_a_second(&gw, &new, 401, "deletion applied").await;
    let listed = run(&["list", "--json"]).await;
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&id));
}

#[tokio::test]
async fn the_gateway_opens_hmac_secrets_with_its_master_key_and_skips_others() {
    let gw = TestGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &gw);
    let create = |name: &'static str, master: String| {
        let dir = dir.path().to_owned();
        let config = config.clone();
        async move {
            let out = keys_async(
                &dir,
                &config,
                &["create", "--name", name, "--hmac", "--json"],
                &master,
            )
            .await;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (
                v["key"].as_str().unwrap().to_owned(),
                v["hmac_secret"].as_str().unwrap().to_owned(),
            )
        }
    };
    // Sealed under another master key: the gateway cannot open it and leaves the key out.
    let (foreign, _) = create("foreign", MasterKey::generate().to_base64()).await;
    let (signed, hmac) = create("signed", TEST_MASTER_KEY.to_owned()).await;
    let index = &gw.running().gateway.keys;
    let started = Instant::now();
    let key = loop {
        if let Ok(key) = index.authenticate(&signed, chrono::Utc::now().timestamp_millis()) {
            break key;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "hmac key not loaded within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        key.hmac_secret.as_ref().map(HmacSecret::expose),
        Some(hmac.as_str())
    );
    assert!(
        !format!("{key:?}").contains(&hmac),
        "Debug shows the signing secret"
    );
    assert!(
        index
            .authenticate(&foreign, chrono::Utc::now().timestamp_millis())
            .is_err(),
        "a key whose signing secret cannot be opened is never used"
    );
    assert_eq!(status_of(&gw, &foreign).await, 401);

    // The secret the CLI printed signs requests the gateway accepts.
    assert_eq!(status_of(&gw, &signed).await, 401, "unsigned");
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature = tollgate::admission::hmac::sign(
        &HmacSecret::new(hmac.clone()),
        "GET",
        "/v1/models",
        &ts,
        b"",
    );
    let send = || {
        gw.client
            .get(format!("{}/v1/models", gw.url))
            .bearer_auth(&signed)
            .header("x-tollgate-timestamp", &ts)
            .header("x-tollgate-signature", &signature)
            .send()
    };
    assert_eq!(
        send().await.unwrap().status(),
        200,
        "signed with the printed secret"
    );
    assert_eq!(send().await.unwrap().status(), 401, "replayed");
}

/// SPEC §1: SIGINT means a graceful stop and exit 0, even when it comes while the
/// gateway is still starting (here: as soon as it prints anything). Before the
/// handlers were installed first, such a signal killed the process.
#[cfg(unix)]
#[test]
fn sigint_while_starting_still_stops_gracefully_with_exit_0() {
    use std::io::BufRead;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = tollgate(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOLLGATE_MASTER_KEY", TEST_MASTER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    // The first thing serve prints (the built-in mock banner): it is starting.
    let first = lines
        .find(|line| line.as_ref().is_ok_and(|l| !l.trim().is_empty()))
        .expect("serve printed nothing")
        .unwrap();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Drain the rest so the child never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest = rest.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(0), "{status:?}\n{first}\n{rest}");
}
