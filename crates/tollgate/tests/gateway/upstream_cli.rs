//! `tollgate upstream …` and `tollgate admin rotate-master-key` through the real
//! binary, against a real SQLite file in a temp dir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tollgate::secrets::MasterKey;
use tollgate::store::Store;

use crate::common::output_text;

const SECRET: &str = "sk-proj-UPSTREAMsecretVALUE0123456789xyz";
const MASKED: &str = "sk-p…9xyz";

fn tollgate(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_MASTER_KEY")
        .env_remove("TOLLGATE_NEW_MASTER_KEY")
        .env("TOLLGATE_LOG", "error");
    c
}

/// Runs `tollgate args…` with `stdin` piped in.
fn run(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = tollgate(dir);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // A command refused before it reads its input closes the pipe: not an error here.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        !output_text(&out).contains(SECRET),
        "secret printed:\n{}",
        output_text(&out)
    );
    out
}

fn add(dir: &Path, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["upstream", "add", "--provider", "openai", "--id", id];
    args.extend_from_slice(extra);
    run(dir, &args, &format!("{SECRET}\n"), env)
}

fn list(dir: &Path) -> serde_json::Value {
    let out = ok(run(dir, &["upstream", "list", "--json"], "", &[]));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn open_store(dir: &Path) -> Store {
    Store::open(&format!("sqlite://{}", dir.join("tollgate.db").display()))
        .await
        .unwrap()
}

fn key_file(dir: &Path) -> MasterKey {
    MasterKey::from_text(&std::fs::read_to_string(dir.join("tollgate.key")).unwrap()).unwrap()
}

/// Every byte the database keeps on disk: the file, its WAL and shared memory.
fn database_bytes(dir: &Path) -> Vec<u8> {
    ["tollgate.db", "tollgate.db-wal", "tollgate.db-shm"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|p: &PathBuf| p.exists())
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn add_from_stdin_then_list_shows_only_the_masked_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(add(
        dir.path(),
        "oa-1",
        &[
            "--rpm",
            "3500",
            "--tpm",
            "90000",
            "--daily-budget",
            "100.5",
            "--region",
            "us",
            "--weight",
            "2",
            "--tier",
            "standard",
        ],
        &[],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tollgate.key")
            && stderr.contains("Production must set TOLLGATE_MASTER_KEY"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(MASKED));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tollgate.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let table = ok(run(dir.path(), &["upstream", "list"], "", &[]));
    let table = String::from_utf8_lossy(&table.stdout);
    for expected in [
        "oa-1", "openai", "enabled", MASKED, "3500", "90000", "100.5", "us", "standard",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing in:\n{table}"
        );
    }
    let master = key_file(dir.path());
    assert!(table.contains(&master.fingerprint()));

    let rows = list(dir.path());
    let row = &rows[0];
    assert_eq!(row["id"], "oa-1");
    assert_eq!(row["masked"], MASKED);
    assert_eq!(row["status"], "enabled");
    assert_eq!(
        (row["rpm"].as_u64(), row["tpm"].as_u64()),
        (Some(3500), Some(90000))
    );
    assert_eq!(row["daily_budget"].as_f64(), Some(100.5));
    assert_eq!(
        (row["weight"].as_u64(), row["region"].as_str()),
        (Some(2), Some("us"))
    );
    assert_eq!(
        row["key_fingerprint"].as_str(),
        Some(master.fingerprint().as_str())
    );
    assert!(!rows.to_string().contains(SECRET));

    // The zero-config gateway serves only the built-in mock: the key would serve
    // nothing, and the operator is told.
    assert!(
        stderr.contains("no provider named \"openai\" is configured (configured: mock)"),
        "{stderr}"
    );
    // The key file is created once.
    let again = ok(add(dir.path(), "oa-2", &[], &[]));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("tollgate.key"));

    // Nowhere on disk in clear, not even in the WAL.
    let bytes = database_bytes(dir.path());
    assert!(!bytes.is_empty());
    assert!(!contains(&bytes, SECRET), "the secret is stored in clear");
    assert!(
        !contains(&bytes, &SECRET[8..24]),
        "part of the secret is stored in clear"
    );
}

#[test]
fn add_refuses_bad_input_and_never_takes_the_secret_from_argv() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], stdin: &str, expected: &str| {
        let out = run(dir.path(), args, stdin, &[]);
        assert!(!out.status.success(), "accepted {args:?}");
        assert!(
            output_text(&out).contains(expected),
            "{expected:?} missing in:\n{}",
            output_text(&out)
        );
    };
    let base = ["upstream", "add", "--provider", "openai", "--id"];
    refused(
        &[&base[..], &["oa-1"]].concat(),
        "\n  \n",
        "no upstream key on standard input",
    );
    refused(
        &[&base[..], &["oa-1"]].concat(),
        "",
        "no upstream key on standard input",
    );
    refused(
        &[&base[..], &["bad id"]].concat(),
        SECRET,
        "id \"bad id\" is not valid",
    );
    refused(
        &[&base[..], &["oa-1", "--rpm", "0"]].concat(),
        SECRET,
        "rpm must be a positive number",
    );
    refused(
        &[&base[..], &["oa-1", "--weight", "0"]].concat(),
        SECRET,
        "weight must be a positive",
    );
    refused(
        &[&base[..], &["oa-1", "--daily-budget=-5"]].concat(),
        SECRET,
        "daily budget",
    );
    refused(
        &[&base[..], &["oa-1", "--key", SECRET]].concat(),
        SECRET,
        "unexpected argument '--key'",
    );
    refused(
        &[&base[..], &["oa-1"]].concat(),
        "sk-a b\n",
        "spaces or control characters",
    );
    assert_eq!(list(dir.path()), serde_json::json!([]));
}

#[test]
fn disable_enable_remove_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    ok(add(dir.path(), "oa-1", &[], &[]));

    let dup = add(dir.path(), "oa-1", &[], &[]);
    assert!(!dup.status.success());
    assert!(
        output_text(&dup).contains("upstream key oa-1 already exists"),
        "{}",
        output_text(&dup)
    );
    assert_eq!(list(dir.path()).as_array().unwrap().len(), 1);

    ok(run(dir.path(), &["upstream", "disable", "oa-1"], "", &[]));
    assert_eq!(list(dir.path())[0]["status"], "disabled");
    ok(run(dir.path(), &["upstream", "enable", "oa-1"], "", &[]));
    assert_eq!(list(dir.path())[0]["status"], "enabled");
    ok(run(dir.path(), &["upstream", "remove", "oa-1"], "", &[]));
    assert_eq!(list(dir.path()), serde_json::json!([]));

    for verb in ["disable", "enable", "remove"] {
        let missing = run(dir.path(), &["upstream", verb, "oa-1"], "", &[]);
        assert!(!missing.status.success());
        assert!(
            output_text(&missing).contains("no upstream key with id oa-1"),
            "{}",
            output_text(&missing)
        );
    }
}

#[tokio::test]
async fn every_change_bumps_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    ok(add(dir.path(), "oa-1", &[], &[]));
    let store = open_store(dir.path()).await;
    assert_eq!(store.upstream_keys_revision().await.unwrap(), 1);
    let steps: [&[&str]; 4] = [
        &["upstream", "disable", "oa-1"],
        &["upstream", "enable", "oa-1"],
        &["upstream", "disable", "oa-1"],
        &["upstream", "remove", "oa-1"],
    ];
    for (i, args) in steps.iter().enumerate() {
        ok(run(dir.path(), args, "", &[]));
        assert_eq!(
            store.upstream_keys_revision().await.unwrap(),
            i as i64 + 2,
            "{args:?}"
        );
    }
    // Refused changes leave it alone.
    assert!(!run(dir.path(), &["upstream", "remove", "oa-1"], "", &[])
        .status
        .success());
    assert_eq!(store.upstream_keys_revision().await.unwrap(), 5);
    store.close().await;
}

#[tokio::test]
async fn rotation_with_a_key_file_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    ok(add(dir.path(), "oa-1", &[], &[]));
    ok(add(dir.path(), "oa-2", &["--rpm", "10"], &[]));
    ok(run(
        dir.path(),
        &["keys", "create", "--name", "signer", "--hmac"],
        "",
        &[],
    ));
    let old = key_file(dir.path());
    let store = open_store(dir.path()).await;
    let revision = store.upstream_keys_revision().await.unwrap();

    let out = ok(run(dir.path(), &["admin", "rotate-master-key"], "", &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let new = key_file(dir.path());
    assert_ne!(new, old);
    assert!(
        stdout.contains("re-encrypted 2 upstream key(s) and 1 client signing secret(s)"),
        "{stdout}"
    );
    // The signing secret opens with the new master key only.
    let signer = store.list_keys().await.unwrap();
    let sealed = signer[0].hmac_secret.as_deref().unwrap();
    assert!(tollgate::admission::hmac::HmacSecret::open(sealed, &new).is_ok());
    assert!(tollgate::admission::hmac::HmacSecret::open(sealed, &old).is_err());
    assert!(stdout.contains(&new.fingerprint()) && stdout.contains(&old.fingerprint()));
    assert!(
        !stdout.contains(&new.to_base64()),
        "the key file mode never prints the key"
    );
    assert!(!dir.path().join("tollgate.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tollgate.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let keys = store.list_upstream_keys(&new).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.key.secret.expose() == SECRET));
    assert_eq!(keys[1].key.rpm, Some(10));
    let err = store
        .list_upstream_keys(&old)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("oa-1, oa-2") && !err.contains(SECRET), "{err}");
    assert_eq!(store.upstream_keys_revision().await.unwrap(), revision);
    let rows = list(dir.path());
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["key_fingerprint"].as_str() == Some(new.fingerprint().as_str())));

    // The CLI keeps working with the rotated file.
    ok(add(dir.path(), "oa-3", &[], &[]));
    assert_eq!(store.list_upstream_keys(&new).await.unwrap().len(), 3);

    // A pending key left by an unfinished rotation stops the next one, untouched.
    std::fs::write(dir.path().join("tollgate.key.new"), "pending").unwrap();
    let out = run(dir.path(), &["admin", "rotate-master-key"], "", &[]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("earlier rotation that did not finish"),
        "{}",
        output_text(&out)
    );
    assert_eq!(key_file(dir.path()), new);
    assert_eq!(store.list_upstream_keys(&new).await.unwrap().len(), 3);
    store.close().await;
}

#[tokio::test]
async fn rotation_with_the_environment_prints_the_new_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::generate();
    let old_text = old.to_base64();
    let env = [("TOLLGATE_MASTER_KEY", old_text.as_str())];
    ok(add(dir.path(), "oa-1", &[], &env));
    assert!(!dir.path().join("tollgate.key").exists());

    let out = ok(run(dir.path(), &["admin", "rotate-master-key"], "", &env));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("TOLLGATE_MASTER_KEY="))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let new = MasterKey::from_text(lines[0]).unwrap();
    assert!(stdout.contains("on every gateway"), "{stdout}");
    assert!(!dir.path().join("tollgate.key").exists());

    let store = open_store(dir.path()).await;
    assert_eq!(
        store.list_upstream_keys(&new).await.unwrap()[0]
            .key
            .secret
            .expose(),
        SECRET
    );
    assert!(store.list_upstream_keys(&old).await.is_err());

    // The old key is now refused by the CLI too, naming the key it cannot open.
    let stale = run(dir.path(), &["admin", "rotate-master-key"], "", &env);
    assert!(!stale.status.success());
    assert!(
        output_text(&stale).contains("oa-1"),
        "{}",
        output_text(&stale)
    );

    // A given new key, written to a file instead of printed.
    let next = MasterKey::generate();
    let (new_text, next_text) = (new.to_base64(), next.to_base64());
    let out = ok(run(
        dir.path(),
        &["admin", "rotate-master-key", "--new-key-file", "next.key"],
        "",
        &[
            ("TOLLGATE_MASTER_KEY", new_text.as_str()),
            ("TOLLGATE_NEW_MASTER_KEY", next_text.as_str()),
        ],
    ));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&next_text));
    let written = std::fs::read_to_string(dir.path().join("next.key")).unwrap();
    assert_eq!(MasterKey::from_text(&written).unwrap(), next);
    assert_eq!(store.list_upstream_keys(&next).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn rotation_refuses_rows_the_current_key_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let a = MasterKey::generate();
    let a_text = a.to_base64();
    ok(add(
        dir.path(),
        "oa-1",
        &[],
        &[("TOLLGATE_MASTER_KEY", a_text.as_str())],
    ));

    // Run from a place where the key file holds another key.
    let out = run(dir.path(), &["admin", "rotate-master-key"], "", &[]);
    assert!(!out.status.success());
    let message = output_text(&out);
    assert!(
        message.contains("nothing was changed")
            && message.contains("oa-1")
            && message.contains(&a.fingerprint()),
        "{message}"
    );
    let file_key = key_file(dir.path());
    assert_ne!(file_key, a);
    assert!(!dir.path().join("tollgate.key.new").exists());
    // Nor may that other key seal new rows beside them.
    let mixed = add(dir.path(), "oa-2", &[], &[]);
    assert!(!mixed.status.success());
    assert!(
        output_text(&mixed).contains(&a.fingerprint()),
        "{}",
        output_text(&mixed)
    );

    let store = open_store(dir.path()).await;
    assert_eq!(store.list_upstream_keys(&a).await.unwrap().len(), 1);
    store.close().await;
}

#[test]
fn a_master_key_of_the_wrong_length_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = add(
        dir.path(),
        "oa-1",
        &[],
        &[("TOLLGATE_MASTER_KEY", "dHdlbHZlIGJ5dGVz")],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("TOLLGATE_MASTER_KEY must be 32 bytes in base64 or hex; got 12 bytes"),
        "{}",
        output_text(&out)
    );
    assert!(!dir.path().join("tollgate.key").exists());
    let hex = run(
        dir.path(),
        &["admin", "rotate-master-key"],
        "",
        &[("TOLLGATE_MASTER_KEY", &"ab".repeat(31))],
    );
    assert!(
        output_text(&hex).contains("got 31 bytes"),
        "{}",
        output_text(&hex)
    );
    assert_eq!(list(dir.path()), serde_json::json!([]));
}
