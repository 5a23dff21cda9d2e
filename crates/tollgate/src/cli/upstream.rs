//! `tollgate upstream add|list|disable|enable|remove`: upstream (provider) keys stored
//! in the database, sealed under the master key. The secret is read from standard
//! input, never from the command line, and only its masked form is ever shown.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::process::{ExitCode, Stdio};

use clap::Subcommand;
use serde_json::json;

use crate::config::{process_env, Config, Env, Secret, StorageConfig};
use crate::secrets::{MasterKey, MasterKeySource, DEFAULT_KEY_FILE};
use crate::store::{NewUpstreamKey, Store, UpstreamKeyRow, UpstreamKeyStatus};

/// Bytes read from standard input at most (a key is far shorter).
const MAX_INPUT: u64 = 8192;

/// `tollgate upstream …`
#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Add a key to a provider's pool; the key itself is read from standard input.
    Add {
        /// The provider (a `[[providers]]` name) whose pool the key joins.
        #[arg(long)]
        provider: String,
        /// A stable id for the key, shown in listings, stats and logs.
        #[arg(long)]
        id: String,
        /// Requests per minute this key may receive.
        #[arg(long, value_name = "N")]
        rpm: Option<u32>,
        /// Tokens per minute this key may consume.
        #[arg(long, value_name = "N")]
        tpm: Option<u32>,
        /// Spend per day on this key, in the configured currency.
        #[arg(long, value_name = "X")]
        daily_budget: Option<f64>,
        /// Region of the key; client keys of that region prefer it.
        #[arg(long, value_name = "R")]
        region: Option<String>,
        /// Share of traffic under the weighted strategy.
        #[arg(long, value_name = "W", default_value_t = 1)]
        weight: u32,
        /// Tier of client keys this key serves (hybrid strategy).
        #[arg(long, value_name = "T")]
        tier: Option<String>,
    },
    /// List keys (masked).
    List {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Take a key out of rotation.
    Disable { id: String },
    /// Put a disabled key back into rotation.
    Enable { id: String },
    /// Delete a key for good.
    Remove { id: String },
}

/// Runs an upstream subcommand against the `[storage]` database.
pub async fn run(
    config: Option<&Path>,
    storage: &StorageConfig,
    command: UpstreamCommand,
) -> ExitCode {
    let store = match Store::open(&storage.database_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = execute(config, &store, command).await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(
    config: Option<&Path>,
    store: &Store,
    command: UpstreamCommand,
) -> Result<(), String> {
    match command {
        UpstreamCommand::Add {
            provider,
            id,
            rpm,
            tpm,
            daily_budget,
            region,
            weight,
            tier,
        } => {
            let env = process_env();
            let (master, _) = load_master_key(&env)?;
            let mut key = NewUpstreamKey {
                id,
                provider,
                // Check the flags before anyone pastes a key; the real one comes next.
                secret: Secret::new("placeholder"),
                rpm,
                tpm,
                daily_budget,
                region,
                weight,
                tier,
            };
            key.validate()?;
            key.secret = read_secret(&key.provider, &key.id)?;
            store
                .insert_upstream_key(&key, &master)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "added upstream key {} ({}) to provider {}, encrypted under master key {}",
                key.id,
                crate::secrets::mask(key.secret.expose()),
                key.provider,
                master.fingerprint()
            );
            warn_unknown_provider(config, &env, &key.provider);
            Ok(())
        }
        UpstreamCommand::List { json } => {
            let rows = store
                .list_upstream_key_rows()
                .await
                .map_err(|e| e.to_string())?;
            print_list(&rows, json);
            Ok(())
        }
        UpstreamCommand::Disable { id } => {
            set_status(store, &id, UpstreamKeyStatus::Disabled).await
        }
        UpstreamCommand::Enable { id } => set_status(store, &id, UpstreamKeyStatus::Enabled).await,
        UpstreamCommand::Remove { id } => {
            store
                .delete_upstream_key(&id)
                .await
                .map_err(|e| e.to_string())?;
            println!("removed upstream key {id}");
            Ok(())
        }
    }
}

async fn set_status(store: &Store, id: &str, status: UpstreamKeyStatus) -> Result<(), String> {
    store
        .set_upstream_key_status(id, status)
        .await
        .map_err(|e| e.to_string())?;
    println!("upstream key {id} is {}", status.as_str());
    Ok(())
}

/// The master key from TOLLGATE_MASTER_KEY or `./tollgate.key`, warning on stderr
/// when the file was just created.
pub(super) fn load_master_key(env: &Env) -> Result<(MasterKey, MasterKeySource), String> {
    let (key, source) =
        MasterKey::load(env, Path::new(DEFAULT_KEY_FILE)).map_err(|e| e.to_string())?;
    if let MasterKeySource::File {
        path,
        created: true,
    } = &source
    {
        eprintln!(
            "warning: TOLLGATE_MASTER_KEY is not set, so a new master key was generated in {} (mode 0600). \
             Production must set TOLLGATE_MASTER_KEY; keep this key safe: without it the stored upstream keys cannot be decrypted.",
            path.display()
        );
    }
    Ok((key, source))
}

/// Reads one line from standard input, trimmed; prompts without echo on a terminal.
fn read_secret(provider: &str, id: &str) -> Result<Secret, String> {
    let line = read_stdin_line(&format!("upstream key for {provider}/{id}"))
        .map_err(|e| format!("cannot read the upstream key from standard input: {e}"))?;
    let key = line.trim();
    if key.is_empty() {
        return Err(format!(
            "no upstream key on standard input: pipe it in, e.g. `printenv OPENAI_KEY | tollgate upstream add --provider {provider} --id {id}`"
        ));
    }
    Ok(Secret::new(key))
}

/// Reads one line (at most 8 KiB) from standard input, without its line ending. On a
/// terminal it first prompts `what` on standard error and hides the input.
pub(super) fn read_stdin_line(what: &str) -> std::io::Result<String> {
    let stdin = std::io::stdin();
    let hidden = stdin.is_terminal() && {
        let hidden = set_echo(false);
        let note = if hidden {
            "input hidden"
        } else {
            "input visible"
        };
        eprint!("{what} ({note}), then Enter: ");
        hidden
    };
    let mut line = String::new();
    let read = stdin.lock().take(MAX_INPUT).read_line(&mut line);
    if hidden {
        set_echo(true);
        eprintln!();
    }
    read?;
    let end = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(end);
    Ok(line)
}

/// True when standard input is a terminal (a person is typing).
pub(super) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Turns terminal echo on or off with `stty`; answers whether it worked.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Warns when no configured provider has that name (the key would serve nothing).
/// Silent when the configuration cannot be loaded here (e.g. provider secrets are
/// not in this shell's environment).
fn warn_unknown_provider(config: Option<&Path>, env: &Env, provider: &str) {
    let Ok(config) = Config::load(config, env) else {
        return;
    };
    if !config.providers.iter().any(|p| p.name == provider) {
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "warning: no provider named {provider:?} is configured (configured: {}); the key serves no calls until one is",
            names.join(", ")
        );
    }
}

fn print_list(rows: &[UpstreamKeyRow], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::Value::Array(rows.iter().map(row_json).collect())
        );
        return;
    }
    if rows.is_empty() {
        println!("no upstream keys stored: add one with `tollgate upstream add --provider P --id ID` (key on standard input)");
        return;
    }
    println!(
        "{:<20} {:<12} {:<9} {:<12} {:>7} {:>9} {:>10} {:<10} {:>6} {:<10} MASTER KEY",
        "ID", "PROVIDER", "STATUS", "KEY", "RPM", "TPM", "BUDGET/DAY", "REGION", "WEIGHT", "TIER"
    );
    for r in rows {
        let num = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "{:<20} {:<12} {:<9} {:<12} {:>7} {:>9} {:>10} {:<10} {:>6} {:<10} {}",
            r.id,
            r.provider,
            r.status.as_str(),
            r.masked,
            num(r.rpm),
            num(r.tpm),
            r.daily_budget
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            r.region.as_deref().unwrap_or("-"),
            r.weight,
            r.tier.as_deref().unwrap_or("-"),
            r.key_fingerprint
        );
    }
}

fn row_json(r: &UpstreamKeyRow) -> serde_json::Value {
    json!({
        "id": r.id,
        "provider": r.provider,
        "status": r.status.as_str(),
        "masked": r.masked,
        "rpm": r.rpm,
        "tpm": r.tpm,
        "daily_budget": r.daily_budget,
        "region": r.region,
        "weight": r.weight,
        "tier": r.tier,
        "key_fingerprint": r.key_fingerprint,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
    })
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}
