//! Request log rows.

use sqlx::{QueryBuilder, Sqlite};

use super::{Store, StoreError};
use crate::usage::UsageRow;

/// Rows per multi-row INSERT. Every statement has this many rows (or one), so each
/// is prepared once and then served from sqlx's statement cache.
const ROWS_PER_STATEMENT: usize = 32;

impl Store {
    /// Writes a batch of usage rows in one transaction, many rows per statement; a
    /// row whose request id is already stored is skipped, so a batch can be retried.
    pub async fn insert_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut blocks = rows.chunks_exact(ROWS_PER_STATEMENT);
        for block in blocks.by_ref() {
            insert_statement(block).build().execute(&mut *tx).await?;
        }
        for row in blocks.remainder() {
            insert_statement(std::slice::from_ref(row))
                .build()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
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
        Ok(sqlx::query_as::<_, UsageTotals>(
            "SELECT key_id, owner, created_at >= ? AS today, COUNT(*) AS requests,
                    COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
                    COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
                    COALESCE(SUM(cost_nanos), 0) AS cost_nanos
             FROM request_logs
             WHERE request_id >= ? AND created_at >= ? AND model_served IS NOT NULL
             GROUP BY key_id, owner, today",
        )
        .bind(day_start_ms)
        .bind(first_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
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
        Ok(sqlx::query_as::<_, UsageRowView>(
            "SELECT request_id, created_at, key_id, owner, endpoint, model_requested, model_served, provider,
                    upstream_key_id, status, error_type, stream, latency_ms, ttfb_ms, prompt_tokens,
                    completion_tokens, cost_nanos, usage_estimated, downgraded_from, client_ip, user_agent
             FROM request_logs ORDER BY request_id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

fn insert_statement(rows: &[UsageRow]) -> QueryBuilder<'_, Sqlite> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO request_logs (request_id, created_at, key_id, owner, endpoint, model_requested, model_served,
            provider, upstream_key_id, status, error_type, stream, latency_ms, ttfb_ms, prompt_tokens,
            completion_tokens, usage_estimated, cost_nanos, cache_hit, downgraded_from, client_ip, user_agent) ",
    );
    insert.push_values(rows, |mut b, r| {
        b.push_bind(&*r.request_id)
            .push_bind(r.created_at_ms)
            .push_bind(r.key_id.as_deref())
            .push_bind(r.owner.as_deref())
            .push_bind(r.endpoint.as_ref())
            .push_bind(r.model_requested.as_deref())
            .push_bind(r.model_served.as_deref())
            .push_bind(r.provider.as_deref())
            .push_bind(r.upstream_key_id.as_deref())
            .push_bind(i64::from(r.status))
            .push_bind(r.error_type.as_deref())
            .push_bind(r.stream)
            .push_bind(r.latency_ms)
            .push_bind(r.ttfb_ms)
            .push_bind(r.prompt_tokens as i64)
            .push_bind(r.completion_tokens as i64)
            .push_bind(r.usage_estimated)
            .push_bind(r.cost_nanos)
            .push_bind(r.cache_hit)
            .push_bind(r.downgraded_from.as_deref())
            .push_bind(r.client_ip.map(|ip| ip.to_string()))
            .push_bind(r.user_agent.as_ref().and_then(|v| v.to_str().ok()));
    });
    insert.push(" ON CONFLICT (request_id) DO NOTHING");
    insert
}
