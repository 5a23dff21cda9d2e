//! Request log rows.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use chrono::NaiveDate;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgPool};

use super::daily::{self, DailyDeltas};
use super::reports::day_start_ms;
use super::{with_pool, Backend, Db, Store, StoreError};
use crate::usage::UsageRow;

/// Rows per multi-row INSERT on PostgreSQL, largest first: a batch is cut into as
/// many statements of the first size as fit, then at most one of each smaller size, so
/// any batch takes few statements (each a round trip to the server) and each statement
/// text is prepared once and then served from sqlx's statement cache. (SQLite writes
/// row by row through [`SqliteLog`](super::sqlite_log::SqliteLog).)
const STATEMENT_ROWS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// The columns an insert writes, in bind order (the order of [`row_values`]).
const INSERT_COLUMNS: [&str; 22] = [
    "request_id",
    "created_at",
    "key_id",
    "owner",
    "endpoint",
    "model_requested",
    "model_served",
    "provider",
    "upstream_key_id",
    "status",
    "error_type",
    "stream",
    "latency_ms",
    "ttfb_ms",
    "prompt_tokens",
    "completion_tokens",
    "usage_estimated",
    "cost_nanos",
    "cache_hit",
    "downgraded_from",
    "client_ip",
    "user_agent",
];

/// One value of a row, borrowed from it where it can be.
#[derive(Debug, PartialEq)]
pub(super) enum Column<'r> {
    Text(Option<&'r str>),
    OwnedText(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

/// The values of `r`, in [`INSERT_COLUMNS`] order.
pub(super) fn row_values(r: &UsageRow) -> [Column<'_>; INSERT_COLUMNS.len()] {
    use Column::{Bool, Int, OwnedText, Text};
    [
        Text(Some(&r.request_id)),
        Int(Some(r.created_at_ms)),
        Text(r.key_id.as_deref()),
        Text(r.owner.as_deref()),
        Text(Some(&r.endpoint)),
        Text(r.model_requested.as_deref()),
        Text(r.model_served.as_deref()),
        Text(r.provider.as_deref()),
        Text(r.upstream_key_id.as_deref()),
        Int(Some(i64::from(r.status))),
        Text(r.error_type.as_deref()),
        Bool(r.stream),
        Int(Some(r.latency_ms)),
        Int(r.ttfb_ms),
        Int(Some(r.prompt_tokens as i64)),
        Int(Some(r.completion_tokens as i64)),
        Bool(r.usage_estimated),
        Int(Some(r.cost_nanos)),
        Bool(r.cache_hit),
        Text(r.downgraded_from.as_deref()),
        OwnedText(r.client_ip.map(ip_text)),
        Text(r.user_agent.as_ref().and_then(|v| v.to_str().ok())),
    ]
}

/// The PostgreSQL INSERT of each size in [`STATEMENT_ROWS`], answering the ids of the
/// rows it inserted (the others were stored already).
static INSERTS_PG: LazyLock<Vec<String>> = LazyLock::new(|| {
    STATEMENT_ROWS
        .iter()
        .map(|&rows| insert_sql(rows, Backend::Postgres) + " RETURNING request_id")
        .collect()
});

/// Cuts `rows` rows into statement sizes from [`STATEMENT_ROWS`]: (index of the
/// size, start row) for each statement.
fn statement_plan(rows: usize) -> Vec<(usize, usize)> {
    let mut plan = Vec::new();
    let mut start = 0;
    for (index, &size) in STATEMENT_ROWS.iter().enumerate() {
        while rows - start >= size {
            plan.push((index, start));
            start += size;
        }
    }
    plan
}

/// `INSERT … VALUES (…), (…) … ON CONFLICT (request_id) DO NOTHING` for `rows` rows:
/// SQLite's with positional `?` (it looks up every numbered `$N`), PostgreSQL's with
/// `$N`.
pub(super) fn insert_sql(rows: usize, backend: Backend) -> String {
    let width = INSERT_COLUMNS.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width)
                .map(|c| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", r * width + c),
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO request_logs ({}) VALUES {} ON CONFLICT (request_id) DO NOTHING",
        INSERT_COLUMNS.join(", "),
        values.join(", ")
    )
}

impl Store {
    /// Writes a batch of usage rows in one transaction, and adds the calls of the rows
    /// it inserted to `usage_daily` in the same transaction (see `store::daily`); a row
    /// whose request id is already stored is skipped, so a batch can be retried. Shared
    /// rows: SQLite writes them on a blocking thread, and the caller keeps them to spool
    /// if the write fails.
    pub async fn insert_usage(&self, rows: Arc<Vec<UsageRow>>) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(_, log) => log.insert(rows).await,
            Db::Postgres(pool) => insert_postgres(pool, &rows).await,
        }
    }
}

/// Writes `rows` to PostgreSQL in multi-row statements, and their calls to
/// `usage_daily`, in one transaction.
async fn insert_postgres(pool: &PgPool, rows: &[UsageRow]) -> Result<(), StoreError> {
    let plan = statement_plan(rows.len());
    // Each statement's values are gathered just before it runs.
    let statement = |&(size, start): &(usize, usize)| {
        let chunk = &rows[start..start + STATEMENT_ROWS[size]];
        postgres_arguments(chunk)
            .map(|arguments| sqlx::query_scalar_with::<_, String, _>(&INSERTS_PG[size], arguments))
            .map_err(sqlx::Error::Encode)
    };
    let mut tx = pool.begin().await?;
    let mut inserted: HashSet<String> = HashSet::with_capacity(rows.len());
    for step in &plan {
        inserted.extend(statement(step)?.fetch_all(&mut *tx).await?);
    }
    let mut deltas = DailyDeltas::default();
    for row in rows.iter().filter(|r| inserted.contains(&*r.request_id)) {
        deltas.add(row);
    }
    daily::add_postgres(pool, &mut tx, deltas).await?;
    tx.commit().await?;
    Ok(())
}

/// The values of `rows`, in [`INSERT_COLUMNS`] order, in one argument list sized for
/// all of them at once (binding value by value regrows it a dozen times a batch).
fn postgres_arguments(rows: &[UsageRow]) -> Result<PgArguments, BoxDynError> {
    let mut arguments = PgArguments::default();
    arguments.reserve(rows.len() * INSERT_COLUMNS.len(), rows.len() * 256);
    for r in rows {
        for value in row_values(r) {
            match value {
                Column::Text(text) => arguments.add(text),
                Column::OwnedText(text) => arguments.add(text),
                Column::Int(n) => arguments.add(n),
                Column::Bool(b) => arguments.add(b),
            }?;
        }
    }
    Ok(arguments)
}

/// An address as text; IPv4 (the usual client) without `core::fmt`.
pub(super) fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                text.push_str(itoa::Buffer::new().format(octet));
            }
            text
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// Admitted calls of one key (and owner) since a time, split by whether they fall on
/// or after `day_start`: what in-process limits and budgets resume from at start.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotals {
    pub key_id: Option<String>,
    pub owner: Option<String>,
    /// True for the totals from `day_start` on.
    pub today: bool,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
}

impl Store {
    /// Totals per key and owner of the calls that reached a model (admitted) from
    /// `since_ms` on, split at `day_start_ms`. Reads the time range as a key range.
    pub async fn usage_totals_since(
        &self,
        since_ms: i64,
        day_start_ms: i64,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        let first_id = format!("req_{:012x}", since_ms.max(0));
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, UsageTotals>(
                "SELECT key_id, owner, created_at >= $1 AS today, COUNT(*) AS requests,
                        CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
                        CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens,
                        CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos
                 FROM request_logs
                 WHERE request_id >= $2 AND created_at >= $3 AND model_served IS NOT NULL
                 GROUP BY key_id, owner, today",
            )
            .bind(day_start_ms)
            .bind(first_id)
            .bind(since_ms)
            .fetch_all(pool)
            .await?
        }))
    }

    /// [`Store::usage_totals_since`] from the start of `first_day` on, split at the
    /// start of `today`, read from `usage_daily` (a few rows a day) instead of the
    /// request log (every call, sorted: a month of it took ~45 s at a million calls a
    /// day). Owners are as `usage_daily` keeps them: the newest per day, key and model.
    /// While the range holds a row from before migration 0008, whose count of admitted
    /// calls is unknown, it reads the log as before.
    pub async fn usage_totals_month(
        &self,
        first_day: NaiveDate,
        today: NaiveDate,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        let (from, to) = (first_day.to_string(), today.to_string());
        let unknown: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM usage_daily WHERE day >= $1 AND day <= $2 AND admitted < 0",
            )
            .bind(&from)
            .bind(&to)
            .fetch_one(pool)
            .await?
        });
        if unknown > 0 {
            return self
                .usage_totals_since(day_start_ms(first_day), day_start_ms(today))
                .await;
        }
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, UsageTotals>(
                "SELECT NULLIF(key_id, '') AS key_id, owner, day = $2 AS today,
                        CAST(SUM(admitted) AS BIGINT) AS requests,
                        CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens,
                        CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens,
                        CAST(SUM(cost_nanos) AS BIGINT) AS cost_nanos
                 FROM usage_daily
                 WHERE day >= $1 AND day <= $2
                 GROUP BY key_id, owner, today
                 HAVING SUM(admitted) > 0",
            )
            .bind(&from)
            .bind(&to)
            .fetch_all(pool)
            .await?
        }))
    }
}

/// A stored request log row, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRowView {
    pub request_id: String,
    pub created_at: i64,
    pub key_id: Option<String>,
    pub owner: Option<String>,
    pub endpoint: String,
    pub model_requested: Option<String>,
    pub model_served: Option<String>,
    pub provider: Option<String>,
    pub upstream_key_id: Option<String>,
    pub status: i64,
    pub error_type: Option<String>,
    pub stream: bool,
    pub latency_ms: i64,
    pub ttfb_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    pub usage_estimated: bool,
    pub downgraded_from: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Store {
    /// The newest `limit` request log rows, newest first.
    pub async fn list_usage(&self, limit: i64) -> Result<Vec<UsageRowView>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, UsageRowView>(
                "SELECT request_id, created_at, key_id, owner, endpoint, model_requested, model_served, provider,
                        upstream_key_id, status, error_type, stream, latency_ms, ttfb_ms, prompt_tokens,
                        completion_tokens, cost_nanos, usage_estimated, downgraded_from, client_ip, user_agent
                 FROM request_logs ORDER BY request_id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::day_of_ms;
    use crate::store::testing::on_both_backends;

    #[test]
    fn addresses_are_written_as_their_usual_text() {
        for text in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.4",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = text.parse().expect("an address");
            assert_eq!(ip_text(ip), text);
        }
    }

    on_both_backends!(
        batches_are_written_whole_and_retries_skip_stored_rows,
        every_field_is_read_back,
        totals_split_at_the_day_and_skip_refused_calls,
        totals_by_day_equal_the_log_and_fall_back_to_it_for_old_rows,
    );

    #[test]
    fn a_batch_is_cut_into_few_statements_covering_every_row() {
        for rows in [0, 1, 31, 255, 256, 257, 299, 2048, 2049] {
            let plan = statement_plan(rows);
            let mut next = 0;
            for &(size, start) in &plan {
                assert_eq!(start, next, "statements follow each other for {rows} rows");
                next += STATEMENT_ROWS[size];
            }
            assert_eq!(next, rows, "every row is written once for {rows} rows");
            assert!(
                plan.len() <= rows / 64 + 6,
                "{rows} rows took {} statements",
                plan.len()
            );
        }
        assert_eq!(statement_plan(299).len(), 8);
    }

    /// A row `n` ms after `base`, with an id that sorts by time as real ids do.
    pub(crate) fn row(base: i64, n: i64) -> UsageRow {
        let at = base + n;
        UsageRow {
            request_id: format!("req_{at:012x}{n:012x}").into(),
            created_at_ms: at,
            key_id: Some("key_a".into()),
            owner: Some("alice".into()),
            endpoint: "/v1/chat/completions".into(),
            model_requested: Some("mock-gpt".into()),
            model_served: Some("mock-gpt".into()),
            status: 200,
            latency_ms: 5,
            prompt_tokens: 10,
            completion_tokens: 2,
            cost_nanos: 1_000,
            ..UsageRow::default()
        }
    }

    async fn batches_are_written_whole_and_retries_skip_stored_rows(store: Store) {
        let base = 1_700_000_000_000;
        // Four 64-row statements and a remainder of smaller ones (4 × 64 + 32 + 8 + 2 + 1).
        let rows: Vec<UsageRow> = (0..299).map(|n| row(base, n)).collect();
        store.insert_usage(Arc::new(rows)).await.expect("insert");
        // A retried batch that overlaps: stored rows are skipped, new ones written.
        let retry: Vec<UsageRow> = (290..304).map(|n| row(base, n)).collect();
        store.insert_usage(Arc::new(retry)).await.expect("retry");
        store
            .insert_usage(Arc::default())
            .await
            .expect("empty batch");
        let stored = store.list_usage(1000).await.expect("list");
        assert_eq!(stored.len(), 304);
        assert_eq!(&*stored[0].request_id, &*row(base, 303).request_id);
        assert!(stored.windows(2).all(|w| w[0].request_id > w[1].request_id));
        assert_eq!(store.list_usage(3).await.expect("list").len(), 3);
    }

    async fn every_field_is_read_back(store: Store) {
        let r = UsageRow {
            provider: Some("local".into()),
            upstream_key_id: Some("up-1".into()),
            status: 502,
            error_type: Some("upstream_error".into()),
            stream: true,
            ttfb_ms: Some(3),
            usage_estimated: true,
            cache_hit: true,
            downgraded_from: Some("gpt-4o".into()),
            client_ip: Some("2001:db8::1".parse().expect("ip")),
            user_agent: Some(http::HeaderValue::from_static("openai-python/1.0")),
            ..row(1_700_000_000_000, 0)
        };
        store
            .insert_usage(Arc::new(vec![r.clone()]))
            .await
            .expect("insert");
        let got = store.list_usage(10).await.expect("list").remove(0);
        assert_eq!(
            (
                got.status,
                got.error_type.as_deref(),
                got.stream,
                got.usage_estimated
            ),
            (502, Some("upstream_error"), true, true)
        );
        assert_eq!((got.latency_ms, got.ttfb_ms), (5, Some(3)));
        assert_eq!(
            (got.prompt_tokens, got.completion_tokens, got.cost_nanos),
            (10, 2, 1_000)
        );
        assert_eq!(got.created_at, r.created_at_ms);
        assert_eq!(got.downgraded_from.as_deref(), Some("gpt-4o"));
        assert_eq!(got.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(got.user_agent.as_deref(), Some("openai-python/1.0"));
        assert_eq!(got.upstream_key_id.as_deref(), Some("up-1"));

        let plain = row(1_700_000_000_000, 1);
        store
            .insert_usage(Arc::new(vec![plain]))
            .await
            .expect("insert");
        let got = store.list_usage(1).await.expect("list").remove(0);
        assert!(!got.stream && !got.usage_estimated);
        assert_eq!(
            (got.ttfb_ms, got.client_ip, got.provider),
            (None, None, None)
        );
    }

    /// Calls around the UTC day that starts at `day`: key_a's (owner alice) yesterday
    /// and today, one refused today (no model served: no tokens, no cost, as the meter
    /// records a refusal; `usage_daily`'s sums rely on it), and key_b's (owner bob).
    fn calls_around(day: i64) -> Vec<UsageRow> {
        vec![
            row(day, -5_000_000), // yesterday, 22:36
            row(day, -1_000),     // yesterday
            row(day, -500),       // yesterday
            row(day, 0),          // today
            row(day, 10),         // today
            UsageRow {
                model_served: None,
                status: 429,
                prompt_tokens: 0,
                completion_tokens: 0,
                cost_nanos: 0,
                ..row(day, 20)
            },
            UsageRow {
                key_id: Some("key_b".into()),
                owner: Some("bob".into()),
                cost_nanos: 7,
                ..row(day, 30)
            },
        ]
    }

    async fn totals_split_at_the_day_and_skip_refused_calls(store: Store) {
        let day = 1_700_006_400_000;
        // From `day - 10_000` on: the first call (22:36 yesterday) is not counted.
        let rows = calls_around(day);
        store.insert_usage(Arc::new(rows)).await.expect("insert");
        let mut totals = store
            .usage_totals_since(day - 10_000, day)
            .await
            .expect("totals");
        totals.sort_by(|a, b| (&a.key_id, a.today).cmp(&(&b.key_id, b.today)));
        let expected = |key: &str, owner: &str, today, requests, cost| UsageTotals {
            key_id: Some(key.to_owned()),
            owner: Some(owner.to_owned()),
            today,
            requests,
            prompt_tokens: 10 * requests,
            completion_tokens: 2 * requests,
            cost_nanos: cost,
        };
        assert_eq!(
            totals,
            vec![
                expected("key_a", "alice", false, 2, 2_000),
                expected("key_a", "alice", true, 2, 2_000),
                expected("key_b", "bob", true, 1, 7),
            ]
        );
        assert!(store
            .usage_totals_since(day + 1_000, day)
            .await
            .expect("totals")
            .is_empty());
    }

    /// The month's totals read from `usage_daily` are those the log gives (refused
    /// calls not counted, other owners apart, the day split); a row from before
    /// migration 0008 (`admitted` unknown) sends the read back to the log.
    async fn totals_by_day_equal_the_log_and_fall_back_to_it_for_old_rows(store: Store) {
        let day = 1_700_006_400_000; // a UTC day's start
        let yesterday = day - 86_400_000;
        let mut rows = calls_around(day);
        rows.extend([
            row(day, -2 * 86_400_000), // the day before yesterday: outside the range
            UsageRow {
                key_id: None, // no client key: the global totals only
                owner: None,
                ..row(day, 40)
            },
        ]);
        store.insert_usage(Arc::new(rows)).await.expect("insert");
        let sorted = |mut t: Vec<UsageTotals>| {
            t.sort_by(|a, b| (&a.key_id, &a.owner, a.today).cmp(&(&b.key_id, &b.owner, b.today)));
            t
        };
        let from_log = sorted(
            store
                .usage_totals_since(yesterday, day)
                .await
                .expect("from the log"),
        );
        let (first, today) = (day_of_ms(yesterday), day_of_ms(day));
        let by_day = sorted(
            store
                .usage_totals_month(first, today)
                .await
                .expect("from usage_daily"),
        );
        assert_eq!(by_day, from_log);
        assert_eq!(by_day.len(), 4, "{by_day:?}");
        assert_eq!(
            (
                by_day[2].key_id.as_deref(),
                by_day[2].today,
                by_day[2].requests
            ),
            (Some("key_a"), true, 2),
            "the refused call is not counted: {by_day:?}"
        );

        // An old row: its count unknown, and (to tell the two reads apart) its tokens
        // changed. The log answers.
        with_pool!(store, pool => {
            sqlx::query(
                "UPDATE usage_daily SET admitted = -1, prompt_tokens = 999999 WHERE day = $1",
            )
            .bind(first.to_string())
            .execute(pool)
            .await
            .expect("update");
        });
        let fallback = sorted(
            store
                .usage_totals_month(first, today)
                .await
                .expect("from the log"),
        );
        assert_eq!(fallback, from_log);
    }
}
