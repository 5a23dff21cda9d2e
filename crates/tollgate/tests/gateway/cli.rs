//! The `tollgate` binary's subcommands.

use std::process::Command;

fn tollgate(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("TOLLGATE_CONFIG")
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
