//! The request log's writes on SQLite: a connection of their own (rusqlite), beside
//! sqlx's pool, on a blocking thread.
//!
//! Every call of the gateway ends in one request-log row, so this INSERT is the
//! store's hottest statement by far. Through sqlx it cost ~4.1 µs per row: each text
//! value is copied once to cross to sqlx's connection thread and again into SQLite,
//! and each statement hops threads twice. Here one cached single-row statement is
//! bound in place from the rows (SQLite copies each text once) and run on the
//! thread that holds the connection: ~2.3 µs per row, measured on the same table and
//! machine. Both connections are the same SQLite library (rusqlite shares sqlx's
//! `libsqlite3-sys`) and open the same file in WAL mode; SQLite's file locks order
//! their writes, and `busy_timeout` makes either wait its turn.

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::daily::{self, DailyDeltas};
use super::reports::DailyRow;
use super::sql::Value;
use super::usage::{insert_sql, row_values, Column};
use super::{Backend, StoreError, SQLITE_WAL_AUTOCHECKPOINT_PAGES};
use crate::usage::UsageRow;

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The request log's own connection to a SQLite file.
#[derive(Debug, Clone)]
pub(crate) struct SqliteLog {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteLog {
    /// Opens the database file at `path` (it must exist: sqlx's pool creates it),
    /// with the pool's settings: WAL, `synchronous = NORMAL`, the same WAL copy
    /// interval and busy timeout.
    pub fn open(path: &Path) -> Result<SqliteLog, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // The journal mode is the file's (the pool set WAL); the rest are per connection.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT_PAGES)?;
        Ok(SqliteLog {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Writes `rows` in one transaction on a blocking thread, with the calls of those
    /// it inserted added to `usage_daily`; a row whose request id is already stored is
    /// skipped (and not counted again), so a batch can be retried.
    pub async fn insert(&self, rows: Arc<Vec<UsageRow>>) -> Result<(), StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held rolled its transaction back (the
            // transaction's drop): the connection is still good.
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            insert_rows(&mut connection, &rows)
        })
        .await
        .map_err(|e| StoreError::WriterThread(e.to_string()))?
        .map_err(StoreError::Sqlite)
    }

    /// The value of a pragma on this connection (for tests).
    #[cfg(test)]
    pub fn pragma(&self, name: &str) -> i64 {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connection
            .pragma_query_value(None, name, |row| row.get(0))
            .expect("the pragma reads")
    }
}

/// The single-row INSERT.
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1, Backend::Sqlite));

/// Inserts `rows` in one transaction with the cached single-row statement (as fast
/// per row as 64-row statements here, and simpler), and adds the calls of the rows it
/// inserted to `usage_daily` before the commit.
fn insert_rows(connection: &mut Connection, rows: &[UsageRow]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // IMMEDIATE: the write lock first (waiting its turn), never a read to upgrade.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut deltas = DailyDeltas::default();
    {
        let mut insert = transaction.prepare_cached(&INSERT_ONE)?;
        for r in rows {
            for (index, value) in row_values(r).into_iter().enumerate() {
                // Parameters count from 1.
                let index = index + 1;
                match value {
                    Column::Text(text) => insert.raw_bind_parameter(index, text),
                    Column::OwnedText(text) => insert.raw_bind_parameter(index, text),
                    Column::Int(n) => insert.raw_bind_parameter(index, n),
                    Column::Bool(b) => insert.raw_bind_parameter(index, b),
                }?;
            }
            // 1 when inserted, 0 when the request id was stored already.
            if insert.raw_execute()? == 1 {
                deltas.add(r);
            }
        }
    }
    add_daily(&transaction, deltas)?;
    transaction.commit()
}

/// A `usage_daily` row read by column name (the same names as sqlx's `FromRow`).
fn daily_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DailyRow> {
    Ok(DailyRow {
        day: r.get("day")?,
        key_id: r.get("key_id")?,
        model: r.get("model")?,
        owner: r.get("owner")?,
        requests: r.get("requests")?,
        successes: r.get("successes")?,
        failures: r.get("failures")?,
        errors: r.get("errors")?,
        prompt_tokens: r.get("prompt_tokens")?,
        completion_tokens: r.get("completion_tokens")?,
        cost_nanos: r.get("cost_nanos")?,
        latency_avg_ms: r.get("latency_avg_ms")?,
        latency_p95_ms: r.get("latency_p95_ms")?,
        latency_p99_ms: r.get("latency_p99_ms")?,
        latency_sum_ms: r.get("latency_sum_ms")?,
        latency_counts: r.get("latency_counts")?,
        updated_at: r.get("updated_at")?,
        admitted: r.get("admitted")?,
    })
}

/// The stored row of one `usage_daily` group.
static DAILY_SELECT: LazyLock<String> = LazyLock::new(daily::select_sql);

/// Adds `deltas` to `usage_daily` in the open transaction (which holds the write lock:
/// no other writer adds in between).
fn add_daily(connection: &Connection, deltas: DailyDeltas) -> rusqlite::Result<()> {
    let mut select = connection.prepare_cached(&DAILY_SELECT)?;
    for (key, batch) in deltas.into_groups() {
        let stored = select
            .query_row(params![key.0, key.1, key.2], daily_row)
            .optional()?;
        let upsert = daily::upsert(&daily::merged(key, stored, batch));
        let mut statement = connection.prepare_cached(upsert.text())?;
        for (index, value) in upsert.values().iter().enumerate() {
            // Parameters count from 1.
            match value {
                Value::Text(text) => statement.raw_bind_parameter(index + 1, text.as_deref()),
                Value::Int(n) => statement.raw_bind_parameter(index + 1, n),
                Value::Bytes(bytes) => statement.raw_bind_parameter(index + 1, bytes.as_slice()),
            }?;
        }
        statement.raw_execute()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::time::Duration;

    use crate::store::testing::{new_key, on_sqlite};
    use crate::store::usage::tests::row;
    use crate::store::Db;

    /// While another connection holds the write lock, a batch is not refused: it
    /// waits its turn and is written once the lock is free.
    #[tokio::test]
    async fn a_batch_waits_while_another_connection_writes() {
        on_sqlite(|store| async move {
            let Db::Sqlite(pool, _) = &store.db else {
                panic!("a SQLite store")
            };
            let mut other = pool.acquire().await.expect("a pool connection");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *other)
                .await
                .expect("the write lock");
            let writer = store.clone();
            let rows = Arc::new((0..40).map(|n| row(1_700_000_000_000, n)).collect());
            let write = tokio::spawn(async move { writer.insert_usage(rows).await });
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!write.is_finished(), "the batch waits for the lock");
            sqlx::query("COMMIT")
                .execute(&mut *other)
                .await
                .expect("the lock is released");
            write
                .await
                .expect("the write task")
                .expect("the batch is written once the lock is free");
            assert_eq!(store.list_usage(100).await.expect("list").len(), 40);
        })
        .await;
    }

    /// The request log's connection and sqlx's pool write the same file at once, from
    /// many tasks: each write waits its turn, none fails, every row is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_log_and_the_pool_write_the_same_file_at_once() {
        on_sqlite(|store| async move {
            let mut writes = tokio::task::JoinSet::new();
            for task in 0..8_i64 {
                let log = store.clone();
                writes.spawn(async move {
                    for batch in 0..10 {
                        let base = 1_700_000_000_000 + task * 1_000_000 + batch * 1_000;
                        let rows = Arc::new((0..50).map(|n| row(base, n)).collect());
                        log.insert_usage(rows).await.expect("the log's write");
                    }
                });
                let keys = store.clone();
                writes.spawn(async move {
                    for n in 0..10 {
                        keys.insert_key(&new_key(&format!("key_{task}_{n}"), None))
                            .await
                            .expect("the pool's write");
                    }
                });
            }
            while let Some(done) = writes.join_next().await {
                done.expect("a writer task");
            }
            assert_eq!(
                store.list_usage(10_000).await.expect("list").len(),
                8 * 10 * 50
            );
            assert_eq!(store.list_keys().await.expect("keys").len(), 8 * 10);
        })
        .await;
    }
}
