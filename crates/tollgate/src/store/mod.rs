//! Durable state behind the gateway: client keys, upstream keys, admin users and
//! sessions, and request logs, in SQLite through sqlx, with embedded migrations. The
//! relay never waits on the store: keys are served from memory (`auth::KeyIndex`) and
//! usage rows arrive in batches (`usage::writer`).

mod admins;
mod alerts;
mod keys;
mod reports;
mod upstream_keys;
mod usage;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use admins::{check_username, AdminSession, AdminUser};
pub use alerts::{new_alert_event_id, AlertEvent, AlertState, CallCounts, DailySpend};
pub use keys::{
    check_origin, check_policy, dedup, endpoint_names, parse_cidr, parse_endpoint, parse_expiry,
    KeyFilter, KeyRecord, KeyStatus, KeyUpdate, NewKey, OwnerKeys, PolicyPatch,
};
pub use reports::{
    day_range_ms, day_start_ms, id_at, id_time_ms, DailyRow, GroupBy, LogQuery, ReportFilter,
    ReportQuery, ReportRow, StatusFilter,
};
pub use upstream_keys::{
    NewUpstreamKey, StoredUpstreamKey, UpstreamKeyRow, UpstreamKeyStatus, UpstreamKeyUpdate,
};
pub use usage::{UsageRowView, UsageTotals};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL cannot be used.
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// No row has that id.
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    /// A stored value is not what the schema promises.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A row with that id exists already.
    #[error("{what} {id} already exists: choose another id, or remove the existing one first")]
    Duplicate { what: &'static str, id: String },
    /// What was given cannot be stored; the message says which field and why.
    #[error("{0}")]
    Invalid(String),
    /// Stored upstream keys that the master key cannot open (never used as plaintext).
    #[error("upstream key(s) {} cannot be decrypted with the current master key (fingerprint {fingerprint}): {reason}", ids.join(", "))]
    Undecryptable {
        ids: Vec<String>,
        fingerprint: String,
        reason: String,
    },
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Store { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Checks that the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
