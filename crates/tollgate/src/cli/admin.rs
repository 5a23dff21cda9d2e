//! `tollgate admin create|passwd --username U`: admin users of the admin API. The
//! password comes from TOLLGATE_ADMIN_PASSWORD or standard input, never from the
//! command line (argv is visible to every user of the machine); at least 12
//! characters. A new password ends every session of that user.
//!
//! `tollgate admin rotate-master-key`: re-encrypts every stored upstream key under a
//! new master key in one transaction, while gateways keep running.
//!
//! The new key is saved before the database changes, so no crash can leave rows
//! sealed under a key that exists nowhere: with a key file, it is written beside it
//! (`tollgate.key.new`) and renamed over it after the commit; with
//! TOLLGATE_MASTER_KEY, it is printed once (or written to `--new-key-file`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::upstream::{load_master_key, read_stdin_line, stdin_is_terminal};
use crate::auth::admin as credentials;
use crate::config::{process_env, Env, StorageConfig, ADMIN_PASSWORD_VAR};
use crate::secrets::{key_file, MasterKey, MasterKeySource, MASTER_KEY_VAR};
use crate::store::Store;

/// Where the new master key may be given instead of generated.
const NEW_KEY_VAR: &str = "TOLLGATE_NEW_MASTER_KEY";

/// `tollgate admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user; the password is read from TOLLGATE_ADMIN_PASSWORD or
    /// standard input (at least 12 characters).
    Create {
        /// The new admin's username.
        #[arg(long)]
        username: String,
    },
    /// Set an admin user's password (from TOLLGATE_ADMIN_PASSWORD or standard input);
    /// every session of that user ends.
    Passwd {
        /// The admin's username.
        #[arg(long)]
        username: String,
    },
    /// Re-encrypt every stored upstream key under a new master key (generated, or
    /// TOLLGATE_NEW_MASTER_KEY).
    RotateMasterKey {
        /// Also write the new key to FILE (mode 0600; it must not exist yet). With
        /// TOLLGATE_MASTER_KEY, the new key goes there instead of standard output.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

/// Runs an admin subcommand against the `[storage]` database.
pub async fn run(storage: &StorageConfig, command: AdminCommand) -> ExitCode {
    let store = match Store::open(&storage.database_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        AdminCommand::Create { username } => create(&store, &username).await,
        AdminCommand::Passwd { username } => passwd(&store, &username).await,
        AdminCommand::RotateMasterKey { new_key_file } => {
            rotate(&store, new_key_file.as_deref()).await
        }
    };
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn create(store: &Store, username: &str) -> Result<(), String> {
    crate::store::check_username(username)?;
    if store
        .find_admin(username)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!(
            "admin user {username} exists already: change its password with `tollgate admin passwd --username {username}`"
        ));
    }
    let hash = new_password_hash(&process_env(), username)?;
    store
        .insert_admin(username, &hash)
        .await
        .map_err(|e| e.to_string())?;
    println!("created admin user {username}; log in with POST /admin/api/login");
    Ok(())
}

async fn passwd(store: &Store, username: &str) -> Result<(), String> {
    if store
        .find_admin(username)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!(
            "no admin user named {username}: create it with `tollgate admin create --username {username}`"
        ));
    }
    let hash = new_password_hash(&process_env(), username)?;
    store
        .set_admin_password(username, &hash)
        .await
        .map_err(|e| e.to_string())?;
    println!("changed the password of admin user {username}; their sessions have ended");
    Ok(())
}

/// The new password's argon2id hash. The password comes from TOLLGATE_ADMIN_PASSWORD,
/// else from standard input (typed twice on a terminal); it is checked against the
/// rules before anything is written.
fn new_password_hash(env: &Env, username: &str) -> Result<String, String> {
    let password = match env.get(ADMIN_PASSWORD_VAR).filter(|p| !p.is_empty()) {
        Some(p) => p.clone(),
        None => {
            let read = |what: &str| {
                read_stdin_line(what)
                    .map_err(|e| format!("cannot read the password from standard input: {e}"))
            };
            let first = read(&format!("new password for {username}"))?;
            if first.is_empty() {
                return Err(format!(
                    "no password on standard input: pipe it in (e.g. `printenv PW | tollgate admin passwd --username {username}`) or set {ADMIN_PASSWORD_VAR}"
                ));
            }
            if stdin_is_terminal() && read("the same password again")? != first {
                return Err("the two passwords differ: nothing was changed".to_owned());
            }
            first
        }
    };
    credentials::check_password(&password)?;
    credentials::hash_password(&password).map_err(|e| e.to_string())
}

async fn rotate(store: &Store, copy_to: Option<&Path>) -> Result<(), String> {
    let env = process_env();
    let (old, source) = load_master_key(&env)?;
    let new = match env.get(NEW_KEY_VAR) {
        Some(text) => MasterKey::from_text_named(text, NEW_KEY_VAR).map_err(|e| e.to_string())?,
        None => MasterKey::generate(),
    };
    if new == old {
        return Err(format!(
            "{NEW_KEY_VAR} is the current master key ({}): give a different key, or unset it to generate one",
            old.fingerprint()
        ));
    }
    // Every row must open with the current key before anything is written.
    store
        .list_upstream_keys(&old)
        .await
        .map_err(|e| format!("nothing was changed: {e}"))?;

    let pending = match &source {
        MasterKeySource::File { path, .. } => Some((pending_path(path), path.clone())),
        MasterKeySource::Environment => None,
    };
    if let Some((pending, _)) = &pending {
        if pending.exists() {
            return Err(format!(
                "{} exists from an earlier rotation that did not finish. If `tollgate upstream list` shows its fingerprint, move it over the key file; otherwise remove it. Then run this again.",
                pending.display()
            ));
        }
        key_file::write_new(pending, &new).map_err(|e| e.to_string())?;
    }
    if let Some(copy) = copy_to {
        if let Err(e) = key_file::write_new(copy, &new) {
            discard(pending.as_ref().map(|(p, _)| p.as_path()));
            return Err(e.to_string());
        }
    }

    // Client keys' HMAC signing secrets first: if one cannot be opened, nothing changed.
    let signing = match store.reencrypt_hmac_secrets(&old, &new).await {
        Ok(n) => n,
        Err(e) => {
            discard(pending.as_ref().map(|(p, _)| p.as_path()));
            discard(copy_to);
            return Err(format!("nothing was changed: {e}"));
        }
    };
    let count = match store.reencrypt_upstream_keys(&old, &new).await {
        Ok(n) => n,
        Err(e) if unchanged(store, &new).await => {
            discard(pending.as_ref().map(|(p, _)| p.as_path()));
            discard(copy_to);
            return Err(format!("nothing was changed: {e}"));
        }
        Err(e) => {
            let kept = pending.as_ref().map(|(p, _)| p.as_path()).or(copy_to);
            let place = match kept {
                Some(p) => format!("it is kept in {}", p.display()),
                None => {
                    // The only copy would otherwise be this process's memory.
                    println!("{MASTER_KEY_VAR}={}", new.to_base64());
                    "it is printed above".to_owned()
                }
            };
            return Err(format!(
                "re-encryption reported {e}, and the database may already use the new master key {}; {place}. Check the fingerprints with `tollgate upstream list` before discarding it",
                new.fingerprint()
            ));
        }
    };
    println!(
        "re-encrypted {count} upstream key(s) and {signing} client signing secret(s) under master key {} (was {})",
        new.fingerprint(),
        old.fingerprint()
    );

    match pending {
        Some((pending, path)) => {
            key_file::promote(&pending, &path).map_err(|e| {
                format!(
                    "the database now uses the new master key, which is saved in {}: {e}. Move it over the key file by hand (mv {} {}) before restarting any gateway.",
                    pending.display(), pending.display(), path.display()
                )
            })?;
            println!(
                "{} now holds the new key. Running gateways keep serving the keys they hold in memory; restart them to load the new key (a gateway that reloads upstream keys before its restart cannot open them).",
                path.display()
            );
        }
        None => match copy_to {
            Some(copy) => println!(
                "the new key is in {}. Set {MASTER_KEY_VAR} to its content on every gateway and restart them; running gateways keep serving the keys they hold in memory until then.",
                copy.display()
            ),
            None => {
                println!(
                    "Set {MASTER_KEY_VAR} to this new key on every gateway and restart them; running gateways keep serving the keys they hold in memory until then. It is shown only this once:"
                );
                println!("{MASTER_KEY_VAR}={}", new.to_base64());
            }
        },
    }
    Ok(())
}

/// `tollgate.key` → `tollgate.key.new`.
fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// True when no stored row is sealed under `new` (a failed rotation left nothing
/// behind); false when that cannot be told.
async fn unchanged(store: &Store, new: &MasterKey) -> bool {
    let fingerprint = new.fingerprint();
    store
        .list_upstream_key_rows()
        .await
        .is_ok_and(|rows| rows.iter().all(|r| r.key_fingerprint != fingerprint))
}

/// Removes a file written for a rotation that did not happen.
fn discard(path: Option<&Path>) {
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}
