//! `[server]` and `[storage]`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use super::Validator;
use crate::config::raw::RawConfig;
use crate::config::*;

impl Validator<'_> {
    pub(super) fn server(&mut self, raw: &RawConfig) -> ServerConfig {
        let s = &raw.server;
        let listen_text = s
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            self.problem(
                "server.listen",
                format!("{listen_text:?} is not an address"),
                "use IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        ServerConfig {
            listen,
            max_body_bytes: self.positive(
                "server.max_body_bytes",
                s.max_body_bytes,
                10 * 1024 * 1024,
            ) as usize,
            upstream_connect_timeout: Duration::from_millis(self.positive(
                "server.upstream_connect_timeout_ms",
                s.upstream_connect_timeout_ms,
                5000,
            )),
            upstream_first_byte_timeout: Duration::from_millis(self.positive(
                "server.upstream_first_byte_timeout_ms",
                s.upstream_first_byte_timeout_ms,
                60_000,
            )),
            max_retries: match s.max_retries {
                None => 2,
                Some(n) if (0..=10).contains(&n) => n as u32,
                Some(n) => {
                    self.problem(
                        "server.max_retries",
                        format!("{n} is out of range"),
                        "use a number from 0 to 10",
                    );
                    2
                }
            },
            shutdown_grace: Duration::from_secs(self.positive(
                "server.shutdown_grace_s",
                s.shutdown_grace_s,
                30,
            )),
            trusted_proxies: self.trusted_proxies(s.trusted_proxies.as_deref().unwrap_or_default()),
            metrics_token: s.metrics_token.clone().unwrap_or_default(),
        }
    }

    pub(super) fn storage(&mut self, raw: &RawConfig) -> StorageConfig {
        let s = &raw.storage;
        let database_url = s
            .database_url
            .clone()
            .unwrap_or_else(|| "sqlite://tollgate.db".to_owned());
        match crate::store::Backend::of_url(&database_url) {
            Some(crate::store::Backend::Postgres) => {
                if let Err(e) = sqlx::postgres::PgConnectOptions::from_str(&database_url) {
                    self.problem(
                        "storage.database_url",
                        format!(
                            "{} is not a PostgreSQL URL tollgate can use: {e}",
                            crate::secrets::redact_url(&database_url)
                        ),
                        "use postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password)",
                    );
                }
            }
            Some(crate::store::Backend::Sqlite) if crate::store::sqlite_in_memory(&database_url) => {
                self.problem(
                    "storage.database_url",
                    "an in-memory SQLite database cannot hold the gateway's state: the CLI \
                     (keys create, …) would not see it, and it would vanish at exit",
                    "use a file, e.g. sqlite://tollgate.db",
                );
            }
            Some(crate::store::Backend::Sqlite) => {}
            None => self.problem(
                "storage.database_url",
                format!(
                    "{:?} is not a database URL tollgate knows",
                    crate::secrets::redact_url(&database_url)
                ),
                "use sqlite://tollgate.db (relative), sqlite:///absolute/path.db, or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
        }
        let redis_url = s.redis_url.clone().filter(|u| !u.trim().is_empty());
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                self.problem(
                    "storage.redis_url",
                    "this is not a Redis URL: it must start with redis:// or rediss://",
                    "use redis://HOST:PORT (rediss:// for TLS), e.g. redis://127.0.0.1:6379, with \
                     redis://:PASSWORD@HOST:PORT/DB when the server needs a password; leave it \
                     empty to keep limits in this process",
                );
            }
        }
        let spool_path = match s.spool_path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => std::path::PathBuf::from(p),
            None => default_spool_path(&database_url),
        };
        StorageConfig {
            spool_path,
            database_url,
            redis_url,
            log_retention_days: self.positive(
                "storage.log_retention_days",
                s.log_retention_days,
                90,
            ) as u32,
        }
    }

    fn trusted_proxies(&mut self, raw: &[String]) -> Vec<crate::admission::Cidr> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, text)| match text.parse() {
                Ok(cidr) => Some(cidr),
                Err(why) => {
                    self.problem(
                        &format!("server.trusted_proxies[{i}]"),
                        why,
                        "list the proxies in front of tollgate as CIDRs, e.g. [\"10.0.0.0/8\"]",
                    );
                    None
                }
            })
            .collect()
    }
}

/// The spool beside a SQLite file, else in the working directory.
fn default_spool_path(database_url: &str) -> std::path::PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    match file {
        Some(path) => std::path::PathBuf::from(format!("{path}.usage-spool")),
        None => std::path::PathBuf::from("tollgate.usage-spool"),
    }
}
