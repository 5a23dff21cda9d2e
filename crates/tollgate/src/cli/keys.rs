//! `tollgate keys create|list|show|revoke`: client keys, straight in the database.
//! Running gateways pick the change up within a second.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::auth::secret;
use crate::config::StorageConfig;
use crate::store::{KeyRecord, KeyStatus, NewKey, Store};

/// `tollgate keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// A name saying what the key is for.
        #[arg(long)]
        name: String,
        /// The user the key belongs to (budgets and analytics group by owner).
        #[arg(long)]
        owner: Option<String>,
        /// The tier whose models and limits apply (default `standard`).
        #[arg(long, default_value = "standard")]
        tier: String,
        /// Bind the key to one upstream key, which then serves only this client.
        #[arg(long, value_name = "UPSTREAM_KEY_ID")]
        dedicated_upstream: Option<String>,
        /// Prefer upstream keys of this region.
        #[arg(long)]
        region: Option<String>,
        /// `live` or `test`, shown in the key's prefix.
        #[arg(long, default_value = "live", value_parser = ["live", "test"])]
        env: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List keys (masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one key (masked).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key for good.
    Revoke { id: String },
}

/// Runs a keys subcommand.
pub async fn run(storage: &StorageConfig, command: KeysCommand) -> ExitCode {
    let store = match Store::open(&storage.database_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = execute(&store, command).await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(store: &Store, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create {
            name,
            owner,
            tier,
            dedicated_upstream,
            region,
            env,
            json,
        } => {
            if name.trim().is_empty() {
                return Err("--name must not be empty".to_owned());
            }
            let secret = secret::generate(&env);
            let new = NewKey {
                id: secret::new_key_id(),
                name,
                owner,
                team: None,
                tier,
                env,
                secret_hash: secret::hash_hex(&secret::hash(&secret)),
                masked: secret::mask(&secret),
                expires_at: None,
                dedicated_upstream,
                region,
            };
            let record = store.insert_key(&new).await.map_err(|e| e.to_string())?;
            if json {
                let mut value = record_json(&record);
                value["key"] = json!(secret);
                println!("{value}");
            } else {
                println!("created key {} ({})", record.id, record.name);
                println!("secret, shown only this once — store it now:\n  {secret}");
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let keys = store.list_keys().await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(keys.iter().map(record_json).collect())
                );
            } else if keys.is_empty() {
                println!("no keys yet: create one with `tollgate keys create --name NAME`");
            } else {
                println!(
                    "{:<22} {:<20} {:<14} {:<10} {:<20} CREATED",
                    "ID", "NAME", "OWNER", "STATUS", "KEY"
                );
                for k in &keys {
                    println!(
                        "{:<22} {:<20} {:<14} {:<10} {:<20} {}",
                        k.id,
                        k.name,
                        k.owner.as_deref().unwrap_or("-"),
                        k.status.as_str(),
                        k.masked,
                        time(k.created_at)
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Show { id, json } => {
            let k = store.find_key(&id).await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", record_json(&k));
            } else {
                println!("id:       {}\nname:     {}\nowner:    {}\nstatus:   {}\nkey:      {}\ntier:     {}\ncreated:  {}", k.id, k.name, k.owner.as_deref().unwrap_or("-"), k.status.as_str(), k.masked, k.tier, time(k.created_at));
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            let k = store
                .set_key_status(&id, KeyStatus::Revoked)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "revoked key {} ({}); running gateways refuse it within a second",
                k.id, k.masked
            );
            Ok(())
        }
    }
}

fn record_json(k: &KeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "owner": k.owner,
        "tier": k.tier,
        "status": k.status.as_str(),
        "masked": k.masked,
        "created_at": time(k.created_at),
    })
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}
