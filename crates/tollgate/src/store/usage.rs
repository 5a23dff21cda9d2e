//! Request log rows.

use super::{Store, StoreError};
use crate::usage::UsageRow;

impl Store {
    /// Writes a batch of usage rows in one transaction; a row whose request id is
    /// already stored is skipped, so a batch can be retried safely.
    pub async fn insert_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO request_logs (request_id, created_at, key_id, owner, endpoint, model_requested, model_served,
                    provider, upstream_key_id, status, error_type, stream, latency_ms, ttfb_ms, prompt_tokens,
                    completion_tokens, usage_estimated, cost_nanos, cache_hit, downgraded_from, client_ip, user_agent)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&*r.request_id)
            .bind(r.created_at_ms)
            .bind(r.key_id.as_deref())
            .bind(r.owner.as_deref())
            .bind(r.endpoint)
            .bind(r.model_requested.as_deref())
            .bind(r.model_served.as_deref())
            .bind(r.provider.as_deref())
            .bind(r.upstream_key_id.as_deref())
            .bind(i64::from(r.status))
            .bind(r.error_type)
            .bind(r.stream)
            .bind(r.latency_ms)
            .bind(r.ttfb_ms)
            .bind(r.prompt_tokens as i64)
            .bind(r.completion_tokens as i64)
            .bind(r.usage_estimated)
            .bind(r.cost_nanos)
            .bind(r.cache_hit)
            .bind(r.downgraded_from.as_deref())
            .bind(r.client_ip.as_deref())
            .bind(r.user_agent.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Number of stored request log rows.
    pub async fn count_usage(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM request_logs")
            .fetch_one(&self.pool)
            .await?)
    }
}
