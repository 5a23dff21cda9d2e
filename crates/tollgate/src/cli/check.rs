//! `tollgate config check` and `tollgate migrate`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{process_env, Config, StorageConfig};
use crate::store::Store;

/// Validates the configuration; exit 0 when it is usable, 1 otherwise.
pub fn config_check(path: Option<&Path>) -> ExitCode {
    let origin = path.map_or_else(
        || "(no file: defaults and environment)".to_owned(),
        |p| p.display().to_string(),
    );
    match Config::load(path, &process_env()) {
        Ok(config) => {
            println!("configuration OK: {origin}");
            println!("  listen:    {}", config.server.listen);
            println!(
                "  database:  {}",
                crate::secrets::redact_url(&config.storage.database_url)
            );
            for p in &config.providers {
                println!(
                    "  provider:  {} ({}, {} key(s))",
                    p.name,
                    p.kind.as_str(),
                    p.keys.len().max(1)
                );
            }
            println!(
                "  models:    {}",
                config
                    .models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for w in &config.warnings {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            println!("{origin}: {problems}");
            ExitCode::FAILURE
        }
    }
}

/// Applies pending database migrations.
pub async fn migrate(storage: &StorageConfig) -> ExitCode {
    match Store::open(&storage.database_url).await {
        Ok(store) => {
            store.close().await;
            println!(
                "database is up to date: {}",
                crate::secrets::redact_url(&storage.database_url)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
