//! Durable state behind the gateway: client keys, upstream keys, admin users and
//! sessions, request logs and their daily aggregates, and alert history, in SQLite or
//! PostgreSQL (chosen by the URL's scheme) through sqlx, with embedded migrations per
//! backend (`migrations/sqlite/`, `migrations/postgres/`, table for table the same).
//! The relay never waits on the store: keys are served from memory (`auth::KeyIndex`)
//! and usage rows arrive in batches (`usage::writer`).
//!
//! # Writing a store method for both backends
//!
//! - One SQL text per query, with `$1, $2, …` placeholders: PostgreSQL's own form,
//!   and one SQLite accepts too (`$NNN` binds the NNN-th value). A number may repeat.
//! - Run it inside [`with_pool!`]: the body is compiled once per backend, with the pool
//!   typed (`&SqlitePool` or `&PgPool`), so `sqlx::query(…).bind(…)`, `pool.begin()`
//!   and `&mut *tx` are written once. The body must answer the same type on both.
//! - Read rows into `#[derive(sqlx::FromRow)]` structs (generic over the backend) or
//!   scalars, with the Rust types the PostgreSQL columns have: `i64` for BIGINT (every
//!   integer column), `bool` for BOOLEAN (the INTEGER 0/1 flags of SQLite), `String`
//!   for TEXT (JSON too). On PostgreSQL `SUM` of a BIGINT is NUMERIC and `AVG` is
//!   NUMERIC: wrap them, `CAST(COALESCE(SUM(x), 0) AS BIGINT)`. A literal `1` is INT4:
//!   select a column or `CAST(1 AS BIGINT)`. Test flags as `WHERE stream`, and count
//!   them as `SUM(CASE WHEN stream THEN 1 ELSE 0 END)`, never `= 1` or `SUM(stream)`.
//! - A write that reads first, or that must not interleave with other writers of its
//!   table, starts its transaction with the write that bumps (or touches) the table's
//!   `revisions` row: SQLite then holds the database's write lock, PostgreSQL that
//!   row's lock, so the table's writers run one at a time on both and always take
//!   their locks in the same order (no deadlock). A table without a counter of its
//!   own takes its turn with [`TAKE_TURN`], which bumps (creating it on first use) a
//!   `revisions` row named after the table.
//! - A query whose text depends on the request (optional filters, a cursor, many
//!   rows) is built as [`sql::Sql`]: `$N` text plus the values it binds, one source
//!   for both backends, run as `sqlx::query_with(q.text(), q.arguments(pool)?)` (or
//!   `query_as_with`, `query_scalar_with`).
//! - Where SQL must differ, match on [`Store::backend`]; keep such places few.

mod admins;
mod alerts;
mod daily;
mod keys;
mod reports;
mod sql;
mod sqlite_log;
mod upstream_keys;
mod usage;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;
use sqlx::{PgPool, SqlitePool};

pub use admins::{check_username, AdminSession, AdminUser};
pub use alerts::{new_alert_event_id, AlertEvent, AlertState, DailySpend};
pub use keys::{
    check_origin, check_policy, dedup, endpoint_names, parse_cidr, parse_endpoint, parse_expiry,
    KeyFilter, KeyRecord, KeyStatus, KeyUpdate, NewKey, OwnerKeys, PolicyPatch,
};
pub use reports::{
    day_of_ms, day_range_ms, day_start_ms, id_at, id_time_ms, DailyRow, GroupBy, LogQuery,
    ReportFilter, ReportQuery, ReportRow, StatusFilter,
};
pub use upstream_keys::{
    NewUpstreamKey, StoredUpstreamKey, UpstreamKeyRow, UpstreamKeyStatus, UpstreamKeyUpdate,
};
pub use usage::{UsageRowView, UsageTotals};

/// Runs `$body` with `$pool` bound to the store's typed pool: the body is compiled
/// once for `&SqlitePool` and once for `&PgPool`, and must answer the same type.
///
/// ```ignore
/// let n: i64 = with_pool!(self, pool => {
///     sqlx::query_scalar("SELECT value FROM revisions WHERE name = $1")
///         .bind("client_keys")
///         .fetch_one(pool)
///         .await?
/// });
/// ```
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

#[cfg(test)]
pub(crate) mod testing;

/// Bumps the `revisions` row named `$1`, creating it on first use: the first write of
/// a transaction that must take turns with the other writers of a table that has no
/// change counter of its own (SQLite: the database's write lock; PostgreSQL: the
/// row's lock, also when two transactions create it at once).
pub(crate) const TAKE_TURN: &str = "INSERT INTO revisions (name, value) VALUES ($1, 1)
     ON CONFLICT (name) DO UPDATE SET value = revisions.value + 1";

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be opened; `url` has its password masked, `fix` says
    /// what to do.
    #[error("cannot open database {url}: {source}; {fix}")]
    Open {
        url: String,
        source: sqlx::Error,
        fix: String,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A write of the request log's own SQLite connection failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread that writes the request log to SQLite failed (it panicked).
    #[error("the request log's writer thread failed: {0}")]
    WriterThread(String),
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

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (`sqlite://…`).
    Sqlite,
    /// A PostgreSQL server (`postgres://…` or `postgresql://…`).
    Postgres,
}

impl Backend {
    /// The backend a database URL names, by its scheme; `None` for any other URL.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// The typed pool behind a [`Store`]; queries reach it through [`with_pool!`].
/// SQLite's also has the request log's own connection (see [`sqlite_log`]).
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool, sqlite_log::SqliteLog),
    Postgres(PgPool),
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// Connections per PostgreSQL pool: the usage writer, the key and upstream pollers,
/// and room for admin requests.
const PG_MAX_CONNECTIONS: u32 = 8;

/// How long opening a connection may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages after which a SQLite commit copies the WAL back into the database file
/// (SQLite's default is 1000). The copy runs in the committing connection's thread,
/// which shares the gateway's CPU: at 25k calls/s the usage writer fills 1000 pages
/// every ~0.6 s, and each copy was one 3 ms run of that thread, which requests in
/// flight waited behind (the relay's p99 at 16 connections). A quarter of that keeps
/// each copy under a millisecond for the same work.
const SQLITE_WAL_AUTOCHECKPOINT_PAGES: u32 = 256;

impl Store {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating: SQLite for `sqlite:` URLs (the file is
    /// created if missing), PostgreSQL for `postgres://` and `postgresql://`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let open_err = |source: sqlx::Error| StoreError::Open {
            url: crate::secrets::redact_url(url),
            fix: open_fix(url, &source),
            source,
        };
        let db = match Backend::of_url(url) {
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url).map_err(open_err)?;
                // One connection first, for its own error: the pool retries refused
                // connections until its timeout and then reports only the timeout.
                let probe =
                    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
                        .await
                        .unwrap_or_else(|_| {
                            Err(sqlx::Error::Io(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                            )))
                        })
                        .map_err(open_err)?;
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(PG_MAX_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                Db::Postgres(pool)
            }
            _ => {
                if sqlite_in_memory(url) {
                    return Err(StoreError::Open {
                        url: crate::secrets::redact_url(url),
                        source: sqlx::Error::Configuration("an in-memory database".into()),
                        fix:
                            "use a file, e.g. sqlite://tollgate.db: the CLI (keys create, …) and \
                              the gateway share the database, and its rows must outlive the process"
                                .to_owned(),
                    });
                }
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(open_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma(
                        "wal_autocheckpoint",
                        SQLITE_WAL_AUTOCHECKPOINT_PAGES.to_string(),
                    )
                    .busy_timeout(Duration::from_secs(5));
                let path = options.get_filename().to_owned();
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                // After the pool: it created the file.
                let log = sqlite_log::SqliteLog::open(&path).map_err(|e| {
                    open_err(sqlx::Error::Configuration(
                        format!("the request log's connection: {e}").into(),
                    ))
                })?;
                Db::Sqlite(pool, log)
            }
        };
        Ok(Store { db })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations (on PostgreSQL under an advisory lock, so replicas
    /// starting together migrate once).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool, _) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// True for a SQLite URL of an in-memory database (`sqlite::memory:`,
/// `mode=memory`), which tollgate refuses: each connection would see its own.
pub fn sqlite_in_memory(url: &str) -> bool {
    Backend::of_url(url) == Some(Backend::Sqlite)
        && (url.contains(":memory:") || url.contains("mode=memory"))
}

/// What to do about a database that cannot be opened.
fn open_fix(url: &str, error: &sqlx::Error) -> String {
    const WHERE: &str = "storage.database_url (or TOLLGATE_STORAGE__DATABASE_URL)";
    if Backend::of_url(url) != Some(Backend::Postgres) {
        return format!(
            "check that the file's directory exists and is writable, and that {WHERE} is sqlite://PATH"
        );
    }
    let code = match error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    match (error, code.as_deref()) {
        (sqlx::Error::Configuration(_), _) => format!(
            "write {WHERE} as postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password)"
        ),
        (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut, _) => format!(
            "is PostgreSQL running and reachable there? Start it, or correct the host and port in {WHERE}"
        ),
        (sqlx::Error::Tls(_), _) => format!(
            "this build of tollgate connects to PostgreSQL without TLS: use sslmode=disable or sslmode=prefer in {WHERE}, over a trusted network"
        ),
        (_, Some("3D000")) => format!(
            "create the database (e.g. createdb -h HOST -U USER DATABASE), or name an existing one in {WHERE}"
        ),
        (_, Some("28P01" | "28000")) => format!(
            "check the user and password in {WHERE}, and that the server's pg_hba.conf lets this user connect from here"
        ),
        _ => format!("check {WHERE} and that the server accepts this user"),
    }
}

/// Milliseconds since the Unix epoch (negative before it). Read from `SystemTime`
/// directly: called several times per call, and `chrono::Utc::now()` first works out
/// the calendar date only for it to be turned back into a count.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_ms_is_unix_milliseconds() {
        let before = chrono::Utc::now().timestamp_millis();
        let now = now_ms();
        let after = chrono::Utc::now().timestamp_millis();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }

    #[tokio::test]
    async fn sqlite_copies_its_wal_back_in_small_steps() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("the store opens");
        let Db::Sqlite(pool, log) = &store.db else {
            panic!("a SQLite store")
        };
        // The request log's own connection: the same interval, and NORMAL (1) syncs.
        assert_eq!(
            log.pragma("wal_autocheckpoint"),
            i64::from(SQLITE_WAL_AUTOCHECKPOINT_PAGES)
        );
        assert_eq!(log.pragma("synchronous"), 1);
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .expect("the pragma reads");
        assert_eq!(pages, i64::from(SQLITE_WAL_AUTOCHECKPOINT_PAGES));
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("the pragma reads");
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused_with_the_fix() {
        for url in ["sqlite::memory:", "sqlite://file:t?mode=memory"] {
            let err = Store::open(url).await.expect_err(url).to_string();
            assert!(
                err.contains("use a file, e.g. sqlite://tollgate.db"),
                "{err}"
            );
        }
    }

    #[test]
    fn backends_follow_the_url_scheme() {
        assert_eq!(Backend::of_url("postgresql://x/y"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("mysql://x/y"), None);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_without_its_password_and_with_the_fix() {
        // Port 1 on loopback: nothing listens there.
        let err = Store::open("postgres://app:s3cret@127.0.0.1:1/tollgate")
            .await
            .expect_err("nothing listens")
            .to_string();
        assert!(
            err.contains("postgres://app:***@127.0.0.1:1/tollgate") && !err.contains("s3cret"),
            "{err}"
        );
        assert!(err.contains("is PostgreSQL running"), "{err}");

        let err = Store::open("postgres://app:s3cret@127.0.0.1:notaport/x")
            .await
            .expect_err("bad URL")
            .to_string();
        assert!(
            !err.contains("s3cret") && err.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_database_is_named_with_the_fix() {
        let base = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| testing::DEFAULT_POSTGRES_URL.to_owned());
        let (path, query) = base.split_once('?').unwrap_or((&base, ""));
        let (server, _) = path.rsplit_once('/').expect("a database in the URL");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let url = format!("{server}/tollgate_no_such_database{query}");
        let err = Store::open(&url)
            .await
            .expect_err("no database")
            .to_string();
        assert!(
            err.contains("tollgate_no_such_database") && err.contains("createdb"),
            "{err}"
        );
    }
}
